"""PaCo Figure 2: the mean ℓ2 norm of each class's gradient in the last classifier layer,
classes sorted by their number of training images.

Reads ``classifier_grads.jsonl``, which a run writes when trained with
``train.log_classifier_grad_every=N`` (see :mod:`longtail.engine.classifier_grads`); each
class's value is the mean over the logged steps. The paper's point: under supervised
contrastive learning the norm falls steeply from head to tail, under PaCo it is flatter, so
the many/few ratio of the group means is reported as a scale-free summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.classifier_grads import GRAD_LOG
from ..errors import DataError, NotFound
from ..io import read_jsonl
from .outputs import markdown_table, plot_class_curves, write_analysis
from .plots import group_boundaries, tail_order
from .trained import TrainedRun, describe, load_runs


def mean_grad_norms(path: Path) -> tuple[np.ndarray, int]:
    """Per class, the mean over the logged steps of its gradient norm; and how many steps."""
    if not path.exists():
        raise NotFound(f"no {path}; train the run with train.log_classifier_grad_every=N to log it")
    records = [record["grad_norm"] for record in read_jsonl(path)]
    if not records:
        raise DataError(f"{path} is empty: the run logged no step yet")
    return np.mean(records, axis=0), len(records)


def grad_curves(runs: list[TrainedRun]) -> dict[str, dict]:
    """Each run's mean norms along the head-to-tail order, its group means and many/few ratio."""
    first = runs[0]
    counts = first.class_counts
    order = tail_order(counts)
    spans = group_boundaries({"train_counts": counts.tolist(), "many_threshold": first.config.data.many_threshold,
                              "few_threshold": first.config.data.few_threshold})
    curves = {}
    for run in runs:
        norms, steps = mean_grad_norms(run.path / GRAD_LOG)
        ordered = norms[order]
        groups = {group: float(ordered[start:stop].mean()) for group, start, stop in spans}
        ratio = groups["many"] / groups["few"] if groups.get("few") and "many" in groups else None
        curves[run.label] = {"steps_logged": steps, "grad_norm": ordered.tolist(), **groups, "many_over_few": ratio}
    return curves


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            data_root: str | None = None) -> list[Path]:
    """Write ``classifier_grad.{json,md,png}`` for ``runs`` (of one dataset, logged during training)."""
    trained = load_runs(runs, labels, data_root)
    curves = grad_curves(trained)
    table = ("Mean ℓ2 norm of each class's gradient in the last classifier layer, averaged over the "
             "classes of each group\n\n"
             + markdown_table(["run", "steps logged", "many", "medium", "few", "many / few"],
                              [[label, c["steps_logged"], *(f"{c[g]:.4g}" if g in c else None
                                                            for g in ("many", "medium", "few")),
                                None if c["many_over_few"] is None else f"{c['many_over_few']:.2f}"]
                               for label, c in curves.items()]))
    results = {**describe(trained), "curves": curves}
    counts = trained[0].class_counts
    window = 5 if len(counts) > 20 else 1  # smooth 100 or 1000 noisy classes, draw a few as they are
    figure = plot_class_curves({label: c["grad_norm"] for label, c in curves.items()}, counts,
                               "mean ℓ2 norm of the class's weight gradient", window)
    return write_analysis(output_dir, "classifier_grad", results, table, figure)
