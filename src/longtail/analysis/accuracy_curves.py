"""The test accuracy a run logged during training, epoch by epoch (``train.eval_every``).

What a final-epoch figure is worth: how far it lies from the mean of the last epochs (the noise
of the figure) and from the best epoch. The best epoch is chosen on the test set, so it is
never a result; it is shown because papers whose code keeps the best checkpoint (BBN's does)
report that figure, and the gap tells how much of a difference to a paper that choice explains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, NotFound
from ..io import read_jsonl
from .outputs import markdown_table, pyplot, write_analysis
from .trained import run_labels

GROUPS = ("top1", "many", "medium", "few")


def read_metrics(run_dir: Path) -> list[dict]:
    """Every epoch's line of ``run_dir/metrics.jsonl``, in order."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        raise NotFound(f"{run_dir} has no metrics.jsonl; give a run directory or a results/ folder")
    return read_jsonl(path)


def logged_accuracy(epochs: list[dict]) -> dict[str, list]:
    """The epochs that were evaluated and their test figures (``None`` where a group is empty)."""
    evaluated = [epoch for epoch in epochs if epoch.get("test_top1") is not None]
    return {"epoch": [epoch["epoch"] for epoch in evaluated],
            **{group: [epoch.get(f"test_{group}") for epoch in evaluated] for group in GROUPS}}


def summarize(curve: dict[str, list], last: int = 10) -> dict:
    """Final-epoch top-1 against the mean and std of the last ``last`` evaluated epochs, and the
    best epoch (the figure a test-set-selected checkpoint would report)."""
    top1 = np.asarray(curve["top1"], dtype=float)
    if not len(top1):
        raise ConfigError("the run logged no test accuracy; train with train.eval_every=N to log it")
    tail = top1[-last:]
    best = int(np.argmax(top1))
    return {"final_epoch": curve["epoch"][-1], "final_top1": float(top1[-1]),
            "last_epochs": len(tail), "last_mean": float(tail.mean()), "last_std": float(tail.std()),
            "best_epoch": curve["epoch"][best], "best_top1": float(top1[best]),
            "best_minus_final": float(top1[best] - top1[-1])}


def plot_curves(curves: dict[str, dict], paper: float | None = None):
    """Top-1 per epoch, one line per run; a dotted line at the paper's figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, curve in curves.items():
        ax.plot(curve["epoch"], curve["top1"], linewidth=0.9, label=label)
    if paper is not None:
        ax.axhline(paper, color="0.4", linestyle=":", label=f"paper {paper:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            last: int = 10, paper: float | None = None) -> list[Path]:
    """Write ``accuracy_curves.{json,md,png}`` for ``runs`` (run directories or recorded results folders)."""
    if last < 1:
        raise ConfigError(f"--last must be at least 1, got {last}")
    targets = [Path(run) for run in runs]
    curves = {label: logged_accuracy(read_metrics(target))
              for label, target in zip(run_labels(targets, labels), targets)}
    summaries = {label: summarize(curve, last) for label, curve in curves.items()}
    table = (f"Test top-1 (%) of the final epoch, the mean ± std of the last {last} evaluated epochs, and the best "
             "epoch (chosen on the test set, so never a result)\n\n"
             + markdown_table(["run", "final", f"last {last}", "best (epoch)", "best − final"],
                              [[label, s["final_top1"], f"{s['last_mean']:.2f} ± {s['last_std']:.2f}",
                                f"{s['best_top1']:.2f} ({s['best_epoch']})", s["best_minus_final"]]
                               for label, s in summaries.items()]))
    results = {"paper": paper, "summaries": summaries, "curves": curves}
    return write_analysis(output_dir, "accuracy_curves", results, table, plot_curves(curves, paper))
