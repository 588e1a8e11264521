"""Beyond the papers: how well each run's confidence matches its accuracy, overall and in the
many/medium/few groups, and how often an image of a rarer class is taken for a head class.

The ECE is the engine's (15 equal-width confidence bins); a group's ECE is computed over the
test images whose true class is in that group. The group confusion is row-normalised: the
percentage of a group's test images predicted as a class of each group (the diagonal
includes the correct predictions, the "as many-shot" column of the medium and few rows is
where a tail image went to the head).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.longtail import shot_groups
from ..engine.metrics import GROUPS, expected_calibration_error, reliability_bins
from .outputs import markdown_table, pyplot, write_analysis
from .trained import TrainedRun, describe, device_for, load_runs, logits_on_test_set


def reliability(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> dict:
    """The reliability diagram's bins and the ECE (percent) of these predictions."""
    counts, accuracy, confidence = reliability_bins(probabilities, targets, bins)
    return {"ece": 100 * expected_calibration_error(probabilities, targets, bins), "count": counts.tolist(),
            "accuracy": (100 * accuracy).tolist(), "confidence": (100 * confidence).tolist()}


def group_confusion(predicted: torch.Tensor, targets: torch.Tensor, groups: np.ndarray) -> dict[str, dict]:
    """``rates[true group][predicted group]``: percent of the true group's test images whose
    prediction is a class of the predicted group (``None`` for a group without test images)."""
    true_group, predicted_group = groups[targets.numpy()], groups[predicted.numpy()]
    rates = {}
    for group in GROUPS:
        members = true_group == group
        rates[group] = {other: float(100 * (predicted_group[members] == other).mean()) if members.any() else None
                        for other in GROUPS}
    return rates


def calibration_report(logits: torch.Tensor, targets: torch.Tensor, train_counts: np.ndarray,
                       many_threshold: int, few_threshold: int, bins: int = 15) -> dict:
    """Reliability and ECE overall and per group, and the group confusion, of one run's test logits."""
    probabilities = logits.float().softmax(1)
    groups = shot_groups(train_counts, many_threshold, few_threshold)
    image_groups = groups[targets.numpy()]
    report = {"top1": float(100 * (probabilities.argmax(1) == targets).double().mean()),
              "overall": reliability(probabilities, targets, bins)}
    for group in GROUPS:
        members = torch.from_numpy(image_groups == group)
        report[group] = reliability(probabilities[members], targets[members], bins) if members.any() else None
    report["group_confusion"] = group_confusion(probabilities.argmax(1), targets, groups)
    return report


def plot_calibration(reports: dict[str, dict], bins: int):
    """Top: a reliability diagram per run; bottom: ECE by group, and tail images taken for head classes."""
    plt = pyplot()
    columns = max(len(reports), 2)
    fig = plt.figure(figsize=(3.2 * columns, 6.4))
    grid = fig.add_gridspec(2, 2 * columns)
    centres = (np.arange(bins) + 0.5) * 100 / bins
    for i, (label, report) in enumerate(reports.items()):
        ax = fig.add_subplot(grid[0, 2 * i:2 * i + 2])
        overall = report["overall"]
        filled = np.asarray(overall["count"]) > 0
        accuracy, confidence = np.asarray(overall["accuracy"])[filled], np.asarray(overall["confidence"])[filled]
        ax.bar(centres[filled], accuracy, width=100 / bins, edgecolor="k", linewidth=0.5, label="accuracy")
        ax.bar(centres[filled], np.abs(confidence - accuracy), bottom=np.minimum(confidence, accuracy),
               width=100 / bins, fill=False, hatch="//", edgecolor="tab:red", linewidth=0.5,
               label="gap to mean confidence")
        ax.plot([0, 100], [0, 100], color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_title(f"{label}: ECE {overall['ece']:.2f}", fontsize=9)
        ax.set_xlabel("confidence (%)")
        if i == 0:
            ax.set_ylabel("accuracy (%)")
            ax.legend(fontsize=7, loc="upper left")
    half = columns
    ece, head = fig.add_subplot(grid[1, :half]), fig.add_subplot(grid[1, half:])
    width = 0.8 / len(reports)
    names = ["overall", *GROUPS]
    for i, (label, report) in enumerate(reports.items()):
        offset = (i - (len(reports) - 1) / 2) * width
        values = [report[name]["ece"] if report[name] else np.nan for name in names]
        ece.bar(np.arange(len(names)) + offset, values, width, label=label)
        taken = [report["group_confusion"][group]["many"] for group in ("medium", "few")]
        head.bar(np.arange(2) + offset, [np.nan if v is None else v for v in taken], width, label=label)
    ece.set_xticks(range(len(names)), names)
    ece.set_ylabel(f"ECE (%, {bins} bins)")
    ece.legend(fontsize=7)
    head.set_xticks(range(2), ["medium-shot", "few-shot"])
    head.set_xlabel("test images of the group")
    head.set_ylim(0, max(5.0, 1.15 * np.nanmax([0.0, *head.dataLim.intervaly])))
    head.set_ylabel("predicted as a many-shot class (%)")
    fig.tight_layout()
    return fig


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            data_root: str | None = None, device: str = "auto", bins: int = 15) -> list[Path]:
    """Write ``calibration.{json,md,png}`` for ``runs`` (run directories of one dataset)."""
    trained: list[TrainedRun] = load_runs(runs, labels, data_root)
    chosen = device_for(device)
    reports = {}
    for run in trained:
        logits, targets = logits_on_test_set(run.experiment, chosen)
        reports[run.label] = {**run.summary(), **calibration_report(
            logits, targets, run.class_counts, run.config.data.many_threshold, run.config.data.few_threshold, bins)}
    rows = []
    for label, report in reports.items():
        confusion = report["group_confusion"]
        rows.append([label, report["top1"], *(report[name]["ece"] if report[name] else None
                                              for name in ("overall", *GROUPS)),
                     confusion["medium"]["many"], confusion["few"]["many"]])
    table = (f"Calibration (ECE, %, {bins} confidence bins) and tail images predicted as a many-shot class (%)\n\n"
             + markdown_table(["run", "top-1", "ECE", "ECE many", "ECE medium", "ECE few",
                               "medium → many", "few → many"], rows))
    results = {**describe(trained), "bins": bins, "runs": reports}
    return write_analysis(output_dir, "calibration", results, table, plot_calibration(reports, bins))
