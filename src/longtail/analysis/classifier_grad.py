"""PaCo Figure 2: the mean ℓ2 norm of each class's gradient in the last classifier layer,
classes sorted by their number of training images.

Reads ``classifier_grads.jsonl``, which a run writes when trained with
``train.log_classifier_grad_every=N`` (see :mod:`longtail.engine.classifier_grads`); each
class's value is the mean over the logged steps. The paper's point: under supervised
contrastive learning the norm falls steeply from head to tail, under PaCo it is flatter, so
the many/few ratio of the group means is reported as a scale-free summary. The paper does not
say at which point of training it measured, so the ratio is also reported for each phase of the
learning-rate schedule and drawn epoch by epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.classifier_grads import GRAD_LOG
from ..engine.schedules import schedule_phases
from ..errors import DataError, NotFound
from ..io import read_jsonl
from .outputs import markdown_table, plot_class_curves, pyplot, write_analysis
from .plots import group_boundaries, moving_average, tail_order
from .trained import TrainedRun, describe, load_runs


def logged_grad_norms(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 1-based epoch of each logged step and its per-class gradient norms (steps x classes)."""
    if not path.exists():
        raise NotFound(f"no {path}; train the run with train.log_classifier_grad_every=N to log it")
    records = read_jsonl(path)
    if not records:
        raise DataError(f"{path} is empty: the run logged no step yet")
    return np.array([record["epoch"] for record in records]), np.array([record["grad_norm"] for record in records])


def group_means(ordered: np.ndarray, spans: list[tuple[str, int, int]]) -> dict[str, float | None]:
    """The mean of the head-to-tail ordered values over each group's classes, and many / few."""
    groups = {group: float(ordered[start:stop].mean()) for group, start, stop in spans}
    ratio = groups["many"] / groups["few"] if groups.get("few") and "many" in groups else None
    return {**groups, "many_over_few": ratio}


def run_phases(run: TrainedRun) -> list[tuple[str, int, int]]:
    """The phases of ``run``'s lr schedule (see :func:`~longtail.engine.schedules.schedule_phases`)."""
    schedule = run.config.schedule
    return schedule_phases(schedule.name, run.config.train.epochs, schedule.warmup_epochs,
                           list(schedule.milestones), schedule.gamma)


def grad_curves(runs: list[TrainedRun]) -> dict[str, dict]:
    """Each run's mean norms along the head-to-tail order, its group means and many/few ratio:
    over all logged steps, in each phase of its lr schedule, and epoch by epoch."""
    first = runs[0]
    counts = first.class_counts
    order = tail_order(counts)
    spans = group_boundaries({"train_counts": counts.tolist(), "many_threshold": first.config.data.many_threshold,
                              "few_threshold": first.config.data.few_threshold})
    curves = {}
    for run in runs:
        epochs, norms = logged_grad_norms(run.path / GRAD_LOG)
        norms = norms[:, order]
        phases = []
        for label, first_epoch, last_epoch in run_phases(run):
            steps = (epochs >= first_epoch) & (epochs <= last_epoch)
            if steps.any():
                phases.append({"phase": label, "epochs": [first_epoch, last_epoch], "steps_logged": int(steps.sum()),
                               **group_means(norms[steps].mean(axis=0), spans)})
        by_epoch = {int(epoch): group_means(norms[epochs == epoch].mean(axis=0), spans)["many_over_few"]
                    for epoch in np.unique(epochs)}
        whole_run = norms.mean(axis=0)
        curves[run.label] = {"steps_logged": len(epochs), "grad_norm": whole_run.tolist(),
                             **group_means(whole_run, spans), "phases": phases,
                             "many_over_few_by_epoch": by_epoch}
    return curves


def _row(c: dict) -> list:
    return [c["steps_logged"], *(f"{c[g]:.4g}" if g in c else None for g in ("many", "medium", "few")),
            None if c["many_over_few"] is None else f"{c['many_over_few']:.2f}"]


def plot_grad_curves(curves: dict[str, dict], counts: np.ndarray, window: int, boundaries: list[int]):
    """Left, the per-class norms head to tail; right, the many/few ratio epoch by epoch with the
    schedule's phase boundaries dotted."""
    plt = pyplot()
    fig, (by_class, by_epoch) = plt.subplots(1, 2, figsize=(11, 3.8))
    plot_class_curves({label: c["grad_norm"] for label, c in curves.items()}, counts,
                      "mean ℓ2 norm of the class's weight gradient", window, ax=by_class)
    for label, c in curves.items():
        ratios = c["many_over_few_by_epoch"]
        if None in ratios.values():  # the run's dataset has no many- or few-shot class
            continue
        smooth = max(1, len(ratios) // 40) * 2 + 1  # one or two logged steps an epoch are noisy
        line, = by_epoch.plot(list(ratios), list(ratios.values()), alpha=0.25, linewidth=0.7)
        by_epoch.plot(list(ratios), moving_average(np.array(list(ratios.values())), smooth),
                      color=line.get_color(), label=f"{label} (mean of {smooth} epochs)")
    for boundary in boundaries:
        by_epoch.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=0.8)
    by_epoch.set_xlabel("epoch (dotted: the lr schedule's phases)")
    by_epoch.set_ylabel("many-shot / few-shot mean gradient norm")
    by_epoch.legend(fontsize=7)
    fig.tight_layout()
    return fig


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            data_root: str | None = None) -> list[Path]:
    """Write ``classifier_grad.{json,md,png}`` for ``runs`` (of one dataset, logged during training)."""
    trained = load_runs(runs, labels, data_root)
    curves = grad_curves(trained)
    header = ["steps logged", "many", "medium", "few", "many / few"]
    table = ("Mean ℓ2 norm of each class's gradient in the last classifier layer, averaged over the "
             "classes of each group\n\n"
             + markdown_table(["run", *header], [[label, *_row(c)] for label, c in curves.items()])
             + "\nThe same, in each phase of the learning-rate schedule\n\n"
             + markdown_table(["run", "phase", "epochs", *header],
                              [[label, phase["phase"], "{}–{}".format(*phase["epochs"]), *_row(phase)]
                               for label, c in curves.items() for phase in c["phases"]]))
    results = {**describe(trained), "curves": curves}
    counts = trained[0].class_counts
    window = 5 if len(counts) > 20 else 1  # smooth 100 or 1000 noisy classes, draw a few as they are
    boundaries = sorted({last for run in trained for _, _, last in run_phases(run)[:-1]})
    figure = plot_grad_curves(curves, counts, window, boundaries)
    return write_analysis(output_dir, "classifier_grad", results, table, figure)
