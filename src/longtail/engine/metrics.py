"""Evaluation metrics for long-tailed classification, computed from logits and labels."""

from __future__ import annotations

import numpy as np
import torch

from ..data.longtail import shot_groups

GROUPS = ("many", "medium", "few")
DENSE_CONFUSION_CLASSES = 1000  # beyond this, reports list the confusion as [true, predicted, count]


def reliability_bins(probabilities: torch.Tensor, targets: torch.Tensor,
                     bins: int = 15) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per equal-width confidence bin ``(low, high]``: the number of predictions, their accuracy
    and their mean confidence (both 0 in an empty bin)."""
    confidence, predicted = probabilities.max(1)
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)[1:-1].to(confidence.dtype)
    index = torch.bucketize(confidence, edges)
    counts = torch.bincount(index, minlength=bins)
    correct = torch.bincount(index, weights=(predicted == targets).double(), minlength=bins)
    confidences = torch.bincount(index, weights=confidence.double(), minlength=bins)
    return counts, correct / counts.clamp(min=1), confidences / counts.clamp(min=1)


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """ECE: confidence-weighted gap between accuracy and confidence over equal-width bins."""
    counts, accuracy, confidence = reliability_bins(probabilities, targets, bins)
    return float((counts / counts.sum() * (accuracy - confidence).abs()).sum())


def classification_report(logits: torch.Tensor, targets: torch.Tensor, train_counts: np.ndarray,
                          many_threshold: int = 100, few_threshold: int = 20) -> dict:
    """Top-1/top-5, many/medium/few, per-class accuracy, confusion and ECE (percent).

    Each group's figure is the mean of its classes' accuracies; a group with no classes is
    reported as ``None``. The confusion is the full matrix (``confusion[true][predicted]``) up
    to ``DENSE_CONFUSION_CLASSES`` classes, else ``confusion_pairs``: ``[true, predicted,
    count]`` for every pair that occurs.
    """
    logits, targets = logits.float(), targets.long()
    num_classes = logits.shape[1]
    predicted = logits.argmax(1)
    top5 = logits.topk(min(5, num_classes), 1).indices.eq(targets[:, None]).any(1)
    # (true, predicted) pairs that occur, with their counts: never a dense C x C matrix, which
    # for iNaturalist 2018's 8,142 classes would be 66 million entries.
    pairs, pair_counts = torch.unique(targets * num_classes + predicted, return_counts=True)
    correct = torch.bincount(targets[predicted == targets], minlength=num_classes)
    per_class = correct.double() / torch.bincount(targets, minlength=num_classes).clamp(min=1).double()
    groups = shot_groups(train_counts, many_threshold, few_threshold)
    report = {
        "top1": 100 * (predicted == targets).double().mean().item(),
        "top5": 100 * top5.double().mean().item(),
    }
    report["top1_error"] = 100 - report["top1"]
    for group in GROUPS:
        members = torch.from_numpy(groups == group)
        report[group] = 100 * per_class[members].mean().item() if members.any() else None
        report[f"{group}_classes"] = int(members.sum())
    report["ece"] = 100 * expected_calibration_error(logits.softmax(1), targets)
    report["num_test"] = len(targets)
    report["per_class"] = (100 * per_class).tolist()
    report["train_counts"] = [int(n) for n in train_counts]
    report["many_threshold"], report["few_threshold"] = many_threshold, few_threshold
    if num_classes <= DENSE_CONFUSION_CLASSES:
        confusion = torch.zeros(num_classes * num_classes, dtype=torch.long)
        confusion[pairs] = pair_counts
        report["confusion"] = confusion.view(num_classes, num_classes).tolist()
    else:
        report["confusion_pairs"] = torch.stack([pairs // num_classes, pairs % num_classes, pair_counts], 1).tolist()
    return report


def format_report(report: dict, title: str = "") -> str:
    """A small text table of the headline figures."""
    def cell(value):
        return "  -  " if value is None else f"{value:5.2f}"

    lines = [title] if title else []
    lines.append(f"{'top-1':>7} {'top-5':>7} {'many':>7} {'medium':>7} {'few':>7} {'ECE':>7}")
    lines.append("  ".join(f"{cell(report[k]):>5}" for k in ("top1", "top5", "many", "medium", "few", "ece")))
    lines.append(f"classes: many {report['many_classes']}, medium {report['medium_classes']}, "
                 f"few {report['few_classes']}; {report['num_test']} test images")
    return "\n".join(lines)
