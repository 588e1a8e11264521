"""Evaluation figures against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longtail.engine.metrics import classification_report, expected_calibration_error


def test_report_on_a_hand_made_case():
    # 3 classes: class 0 many-shot, 1 medium, 2 few (train counts 150, 50, 5)
    logits = torch.tensor([
        [5.0, 1.0, 0.0],  # y 0, correct
        [0.0, 4.0, 3.0],  # y 0, predicted 1 (top-2 has 0? no: 1, 2)
        [0.0, 3.0, 1.0],  # y 1, correct
        [2.0, 0.0, 1.0],  # y 2, predicted 0; top-2 has 2
    ])
    targets = torch.tensor([0, 0, 1, 2])
    report = classification_report(logits, targets, np.array([150, 50, 5]))
    assert report["top1"] == pytest.approx(50.0)
    assert report["top1_error"] == pytest.approx(50.0)
    assert report["top5"] == pytest.approx(100.0)  # only 3 classes: top-5 covers all
    assert report["per_class"] == pytest.approx([50.0, 100.0, 0.0])
    assert (report["many"], report["medium"], report["few"]) == pytest.approx((50.0, 100.0, 0.0))
    assert report["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert report["many_classes"] == report["medium_classes"] == report["few_classes"] == 1
    assert report["train_counts"] == [150, 50, 5]
    assert (report["many_threshold"], report["few_threshold"]) == (100, 20)


def test_empty_group_is_none():
    report = classification_report(torch.eye(2), torch.tensor([0, 1]), np.array([500, 400]))
    assert report["many"] == 100.0 and report["medium"] is None and report["few"] is None


def test_ece_by_hand():
    # confidences 0.9 (correct), 0.6 (wrong), 0.55 (correct) -> bins 0.8-0.867.. etc. (15 bins)
    probabilities = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55]])
    targets = torch.tensor([0, 1, 1])
    # 0.9 alone in its bin: |1 - 0.9|; 0.6 and 0.55 share bin (0.5333, 0.6]: |0.5 - 0.575|
    expected = (1 / 3) * 0.1 + (2 / 3) * abs(0.5 - 0.575)
    assert expected_calibration_error(probabilities, targets) == pytest.approx(expected)
