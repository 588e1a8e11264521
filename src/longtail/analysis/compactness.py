"""BBN Figure 6 (supplementary B): intra-class compactness of the learned representation.

For every class, the pooled representations of its training images (un-augmented: the test
transform), each scaled to unit ℓ2 norm, are averaged into a centroid; the class's score is
the mean ℓ2 distance of its representations to that centroid (the less, the more compact).
BBN reports re-balancing (RW, RS) to loosen the head classes most. A BBN run contributes its
whole representation ``[f_c ; f_r]`` and each branch's half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models.parts import representations
from .outputs import label_class_axis, markdown_table, pyplot, write_analysis
from .plots import group_boundaries, tail_order
from .trained import TrainedRun, describe, device_for, load_runs


def intra_class_distances(features: torch.Tensor, targets: torch.Tensor, num_classes: int) -> np.ndarray:
    """Per class: mean ℓ2 distance of the unit-normalised features to their centroid (NaN for
    a class without images)."""
    unit = F.normalize(features.double(), dim=1)
    counts = torch.bincount(targets, minlength=num_classes).double()
    centroids = torch.zeros(num_classes, unit.shape[1], dtype=torch.float64).index_add_(0, targets, unit)
    centroids /= counts.clamp(min=1)[:, None]
    distances = (unit - centroids[targets]).norm(dim=1)
    mean = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, targets, distances) / counts.clamp(min=1)
    return torch.where(counts > 0, mean, torch.nan).numpy()


@torch.no_grad()
def training_representations(run: TrainedRun, device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every training image's representations (see :func:`~longtail.models.parts.representations`)
    in fp32 on the CPU, and the labels."""
    model = run.model.to(device).eval()
    parts: dict[str, list[torch.Tensor]] = {}
    targets = []
    try:
        for batch in run.experiment.unaugmented_stream(run.experiment.train):
            for name, features in representations(model, batch.images.to(device)).items():
                parts.setdefault(name, []).append(features.float().cpu())
            targets.append(batch.targets)
    finally:
        model.cpu()
    return {name: torch.cat(chunks) for name, chunks in parts.items()}, torch.cat(targets)


def curve_name(run: str, part: str) -> str:
    return run if part == "all" else f"{run} ({part})"


def plot_compactness(curves: dict[str, dict], counts: np.ndarray, spans: list[tuple[str, int, int]]):
    """Bars per class, head to tail, one colour per curve; many/medium/few spans marked."""
    plt = pyplot()
    order = tail_order(counts)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(order) * len(curves)), 3.8))
    width = 0.8 / len(curves)
    for i, (name, curve) in enumerate(curves.items()):
        ax.bar(np.arange(len(order)) + (i - (len(curves) - 1) / 2) * width, curve["distances"], width, label=name)
    top = max(np.nanmax(curve["distances"]) for curve in curves.values())
    ends = {0: "head", len(spans) - 1: "tail"} if len(spans) > 1 else {}
    for i, (group, start, stop) in enumerate(spans):
        ax.axvline(start - 0.5, color="0.5", linestyle=":", linewidth=0.8)
        ax.text((start + stop - 1) / 2, 1.04 * top, f"{group} ({ends[i]})" if i in ends else group,
                ha="center", va="bottom", fontsize=8)
    label_class_axis(ax, counts)
    ax.set_ylim(0, 1.15 * top)
    ax.set_ylabel("mean distance to the class centroid")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(curves), 4), frameon=False)
    fig.tight_layout()
    return fig


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            data_root: str | None = None, device: str = "auto") -> list[Path]:
    """Write ``compactness.{json,md,png}`` for ``runs`` (run directories of one dataset)."""
    trained = load_runs(runs, labels, data_root)
    chosen = device_for(device)
    counts = trained[0].class_counts
    order = tail_order(counts)
    thresholds = {"many_threshold": trained[0].config.data.many_threshold,
                  "few_threshold": trained[0].config.data.few_threshold}
    spans = group_boundaries({"train_counts": counts.tolist(), **thresholds})
    curves = {}
    for run in trained:
        features, targets = training_representations(run, chosen)
        for part, values in features.items():
            distances = intra_class_distances(values, targets, len(counts))[order]
            curves[curve_name(run.label, part)] = {
                "run": run.label, "part": part, "distances": distances.tolist(),
                **{group: float(np.mean(distances[start:stop])) for group, start, stop in spans}}
    table = ("Intra-class compactness: mean distance of unit-normalised training representations to their "
             "class centroid (lower is more compact), averaged over each group's classes\n\n"
             + markdown_table(["representation", *(group for group, _, _ in spans), "all classes"],
                              [[name, *(f"{value:.3f}" for value in (*(curve[group] for group, _, _ in spans),
                                                                      np.mean(curve["distances"])))]
                               for name, curve in curves.items()]))
    results = {**describe(trained), "curves": curves}
    return write_analysis(output_dir, "compactness", results, table, plot_compactness(curves, counts, spans))
