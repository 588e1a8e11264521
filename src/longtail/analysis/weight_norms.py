"""BBN Figure 4: the ℓ2 norm of each class's weight vector in the last classifier layer,
classes from head to tail, each curve's standard deviation σ (over the classes) in the legend.

A BBN classifier reads ``[f_c ; f_r]``, so its weight splits into W_c (the columns acting on
the conventional branch's half, "BBN-CB"), W_r (the re-balancing half, "BBN-RB") and the
whole row ("BBN-ALL", whose squared norm is the sum of the other two's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models import BilateralBranchNetwork
from ..models.parts import classifier_layer
from .outputs import markdown_table, plot_class_curves, write_analysis
from .plots import tail_order
from .trained import TrainedRun, describe, load_runs


def classifier_norms(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """Per-class weight norms, in class order: ``{"W": ...}``, or W_c, W_r and ALL for BBN."""
    weight = classifier_layer(model).weight.detach().float().cpu()
    if isinstance(model, BilateralBranchNetwork):
        half = model.feature_dim
        parts = {"W_c": weight[:, :half], "W_r": weight[:, half:], "ALL": weight}
    else:
        parts = {"W": weight}
    return {name: part.norm(dim=1).numpy() for name, part in parts.items()}


def curve_name(run: str, part: str) -> str:
    return run if part == "W" else f"{run} {part}"


def norm_curves(runs: list[TrainedRun]) -> dict[str, dict]:
    """Every run's curves, each along the head-to-tail order, with its σ (population std)."""
    order = tail_order(runs[0].class_counts)
    curves = {}
    for run in runs:
        for part, norms in classifier_norms(run.model).items():
            curves[curve_name(run.label, part)] = {"run": run.label, "part": part,
                                                   "norms": norms[order].tolist(), "std": float(norms.std())}
    return curves


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            data_root: str | None = None) -> list[Path]:
    """Write ``weight_norms.{json,md,png}`` for ``runs`` (run directories of one dataset)."""
    trained = load_runs(runs, labels, data_root)
    counts = trained[0].class_counts
    curves = norm_curves(trained)
    table = ("ℓ2 norm of the classifier weights per class, head to tail; σ is their standard deviation\n\n"
             + markdown_table(["curve", "σ", "head class", "tail class", "mean"],
                              [[name, f"{c['std']:.4f}", f"{c['norms'][0]:.4f}", f"{c['norms'][-1]:.4f}",
                                f"{np.mean(c['norms']):.4f}"] for name, c in curves.items()]))
    results = {**describe(trained), "curves": curves}
    figure = plot_class_curves({f"{name} (σ={c['std']:.3f})": c["norms"] for name, c in curves.items()}, counts,
                               "ℓ2 norm of the class's classifier weights")
    return write_analysis(output_dir, "weight_norms", results, table, figure)
