"""Figures comparing finished runs: per-class accuracy along the tail, and many/medium/few.

Both read ``eval.json`` reports (``longtail eval`` writes them), which carry each class's test
accuracy and training-image count, so a figure needs no dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.longtail import shot_groups
from ..engine.metrics import GROUPS
from ..errors import DataError, NotFound, UserError


def load_report(target: Path) -> dict:
    """The ``eval.json`` of a run directory, or a report file itself."""
    path = target / "eval.json" if target.is_dir() else target
    if not path.exists():
        raise NotFound(f"no report at {path}; run `longtail eval {target}` first")
    refresh = "run `longtail eval` on its run directory again to rewrite it"
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a JSON report ({error}); {refresh}") from None
    if not isinstance(report, dict) or "per_class" not in report:
        raise DataError(f"{path} is not an eval report (no per_class accuracies); {refresh}")
    if "train_counts" not in report:
        raise DataError(f"{path} has no train_counts (written by an older longtail); {refresh}")
    return report


def tail_order(train_counts: list[int]) -> np.ndarray:
    """Class indices from the most to the fewest training images (ties by class index)."""
    return np.argsort(-np.asarray(train_counts), kind="stable")


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred mean over ``window`` neighbours, the window shrinking at both ends."""
    half = window // 2
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    lows = np.clip(np.arange(len(values)) - half, 0, len(values))
    highs = np.clip(np.arange(len(values)) + half + 1, 0, len(values))
    return (cumulative[highs] - cumulative[lows]) / (highs - lows)


def group_boundaries(report: dict) -> list[tuple[str, int, int]]:
    """``(group, first rank, last rank + 1)`` of many/medium/few along the tail order."""
    counts = np.asarray(report["train_counts"])[tail_order(report["train_counts"])]
    groups = shot_groups(counts, report["many_threshold"], report["few_threshold"])
    spans = []
    for group in GROUPS:
        ranks = np.flatnonzero(groups == group)
        if len(ranks):
            spans.append((group, int(ranks[0]), int(ranks[-1]) + 1))
    return spans


def plot_comparison(reports: dict[str, dict], path: Path, title: str = "", window: int = 5) -> None:
    """Left: each run's per-class accuracy (moving average) along the tail, over the training
    counts; right: overall, many, medium and few accuracy per run (a group without classes, such as
    few-shot on CIFAR-10-LT, is left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close()
    if path.suffix.lstrip(".").lower() not in formats:
        raise UserError(f"cannot write a figure as {path.name!r}; end the name with one of "
                        f"{', '.join('.' + f for f in sorted(formats))} (e.g. .png, .pdf or .svg)")
    if not path.parent.is_dir():
        raise NotFound(f"no folder {path.parent} to write {path.name} into; create it first")
    first = next(iter(reports.values()))
    order = tail_order(first["train_counts"])
    fig, (tail, groups) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.6, 1]})
    counts = tail.twinx()
    counts.bar(range(len(order)), np.asarray(first["train_counts"])[order], color="0.85", width=1.0)
    counts.set_yscale("log")
    counts.set_ylabel("training images")
    tail.set_zorder(counts.get_zorder() + 1)
    tail.patch.set_visible(False)
    for label, report in reports.items():
        if report["train_counts"] != first["train_counts"]:
            raise DataError(f"run {label!r} was trained on other class counts than "
                             f"{next(iter(reports))!r}; compare runs of one dataset")
        accuracy = np.asarray(report["per_class"])[order]
        tail.plot(moving_average(accuracy, window), label=f"{label} ({report['top1']:.2f}%)")
    spans = group_boundaries(first)
    for group, start, stop in spans:
        tail.axvline(start - 0.5, color="0.5", linestyle=":", linewidth=0.8)
        tail.text((start + stop - 1) / 2, 101, group, ha="center", va="bottom", fontsize=9)
    tail.set_xlim(-0.5, len(order) - 0.5)
    tail.set_ylim(0, 100)
    tail.set_xlabel("class, most to fewest training images")
    tail.set_ylabel("test accuracy (%)" if window == 1 else f"test accuracy (%), mean of {window} neighbours")
    tail.legend(fontsize=8, loc="lower left")

    shown = [group for group, _, _ in spans]
    names = ["top1", *shown]
    width = 0.8 / len(reports)
    for i, (label, report) in enumerate(reports.items()):
        values = [report[name] if report[name] is not None else np.nan for name in names]
        bars = groups.bar(np.arange(len(names)) + (i - (len(reports) - 1) / 2) * width, values, width,
                          label=label)
        groups.bar_label(bars, fmt="%.1f", fontsize=7, rotation=90, padding=2)
    groups.set_xticks(range(len(names)), ["overall", *shown])
    groups.set_ylabel("top-1 accuracy (%)")
    groups.set_ylim(0, 100)
    # Above the axes, so that it never hides a bar or its label.
    groups.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(reports), 4),
                  frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
