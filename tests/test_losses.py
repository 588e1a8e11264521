"""Every loss against a hand computation (plain Python math), and its special cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from longtail.losses import CLASS_WEIGHTS, LOSSES
from longtail.registry import ConfigError

COUNTS = np.array([100, 30, 10, 2])
LOGITS = [[2.0, 0.5, -1.0, 0.1], [0.3, 1.2, 0.0, -0.5], [-0.2, 0.4, 0.9, 0.0],
          [1.0, -1.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0]]
TARGETS = [0, 1, 2, 3, 1]


def loss_of(spec, logits=LOGITS, targets=TARGETS, epoch: int | None = None) -> float:
    loss = LOSSES.build(spec, class_counts=COUNTS)
    if epoch is not None:
        loss.set_epoch(epoch)
    return float(loss(torch.tensor(logits), torch.tensor(targets)))


def log_softmax(row: list[float], target: int) -> float:
    return row[target] - math.log(sum(math.exp(z) for z in row))


def mean_one(weights: list[float]) -> list[float]:
    return [w * len(weights) / sum(weights) for w in weights]


def weighted(per_sample: list[float], class_weights: list[float], reduction: str) -> float:
    w = [class_weights[t] for t in TARGETS]
    total = sum(wi * li for wi, li in zip(w, per_sample, strict=True))
    return total / (sum(w) if reduction == "weighted_mean" else len(w))


HAND_CE = [-log_softmax(row, t) for row, t in zip(LOGITS, TARGETS, strict=True)]
INVERSE = mean_one([1 / n for n in COUNTS])
EFFECTIVE = mean_one([(1 - 0.99) / (1 - 0.99**n) for n in COUNTS])


def test_cross_entropy_matches_hand():
    assert loss_of("ce") == pytest.approx(sum(HAND_CE) / len(HAND_CE), rel=1e-6)


def test_reweighting_by_inverse_frequency_matches_hand():
    expected = weighted(HAND_CE, INVERSE, "weighted_mean")
    spec = {"name": "ce", "weights": "inverse_frequency"}
    assert loss_of(spec) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("reduction", ["weighted_mean", "mean"])
def test_class_balanced_focal_matches_hand(reduction):
    gamma = 2.0
    focal = [(1 - math.exp(-nll)) ** gamma * nll for nll in HAND_CE]
    spec = {"name": "focal", "gamma": gamma, "reduction": reduction,
            "weights": {"name": "effective_number", "beta": 0.99}}
    assert loss_of(spec) == pytest.approx(weighted(focal, EFFECTIVE, reduction), rel=1e-6)


def test_ldam_matches_hand():
    raw = [n**-0.25 for n in COUNTS]
    margins = [0.5 * m / max(raw) for m in raw]
    hand = []
    for row, t in zip(LOGITS, TARGETS, strict=True):
        shifted = [z - (margins[t] if j == t else 0.0) for j, z in enumerate(row)]
        hand.append(-log_softmax([30 * z for z in shifted], t))
    assert loss_of("ldam") == pytest.approx(sum(hand) / len(hand), rel=1e-6)
    assert margins[-1] == pytest.approx(0.5)  # the rarest class gets the largest margin


def test_logit_adjusted_matches_hand():
    tau = 0.7
    prior = [n / COUNTS.sum() for n in COUNTS]
    hand = [-log_softmax([z + tau * math.log(p) for z, p in zip(row, prior, strict=True)], t)
            for row, t in zip(LOGITS, TARGETS, strict=True)]
    assert loss_of({"name": "logit_adjusted", "tau": tau}) == pytest.approx(sum(hand) / 5, rel=1e-6)


def reference_ce(scale: float = 1.0) -> float:
    return float(F.cross_entropy(scale * torch.tensor(LOGITS), torch.tensor(TARGETS)))


@pytest.mark.parametrize("spec", [
    {"name": "focal", "gamma": 0.0},
    {"name": "focal", "gamma": 0.0, "weights": {"name": "effective_number", "beta": 0.0}},
    {"name": "ce", "weights": {"name": "effective_number", "beta": 0.0}},
    {"name": "logit_adjusted", "tau": 0.0},
], ids=["focal-gamma0", "cb-focal-beta0-gamma0", "cb-ce-beta0", "logit-adjusted-tau0"])
def test_special_cases_are_cross_entropy(spec):
    assert loss_of(spec) == pytest.approx(reference_ce(), rel=1e-6)


def test_ldam_without_margin_is_scaled_cross_entropy():
    spec = {"name": "ldam", "max_margin": 0.0, "scale": 30.0}
    assert loss_of(spec) == pytest.approx(reference_ce(30.0), rel=1e-6)


def test_logit_adjusted_tau1_is_balanced_softmax():
    assert loss_of({"name": "logit_adjusted", "tau": 1.0}) == pytest.approx(
        loss_of("balanced_softmax"), rel=1e-6)


def test_effective_number_tends_to_inverse_frequency():
    weights = CLASS_WEIGHTS.build({"name": "effective_number", "beta": 1 - 1e-9},
                                  class_counts=COUNTS)(0)
    assert weights.tolist() == pytest.approx(INVERSE, rel=1e-4)


def test_deferred_reweighting_switches_exactly_at_its_epoch():
    spec = {"name": "ce", "weights": {"name": "deferred", "switch_epoch": 3,
                                      "after": "inverse_frequency"}}
    plain = sum(HAND_CE) / len(HAND_CE)
    reweighted = weighted(HAND_CE, INVERSE, "weighted_mean")
    assert [loss_of(spec, epoch=e) for e in range(5)] == pytest.approx(
        [plain, plain, plain, reweighted, reweighted], rel=1e-6)


def test_loss_gradients_flow_to_logits():
    logits = torch.tensor(LOGITS, requires_grad=True)
    LOSSES.build("ldam", class_counts=COUNTS)(logits, torch.tensor(TARGETS)).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_a_misspelt_option_names_the_valid_ones():
    with pytest.raises(ConfigError, match="gamma"):
        LOSSES.build({"name": "focal", "gama": 2.0}, class_counts=COUNTS)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction"):
        LOSSES.build({"name": "ce", "reduction": "sum"}, class_counts=COUNTS)


def test_the_standard_method_advances_deferred_weights_each_epoch():
    from longtail.methods import METHODS

    loss = {"name": "ce", "weights": {"name": "deferred", "switch_epoch": 2,
                                      "after": "inverse_frequency"}}
    method = METHODS.build({"name": "standard", "loss": loss}, model_spec={"name": "resnet20"},
                           num_classes=4, class_counts=COUNTS, epochs=4)
    seen = []
    for epoch in range(4):
        method.set_epoch(epoch)
        seen.append(method.loss.weight.tolist())
    assert seen[:2] == [[1.0] * 4] * 2
    assert seen[2] == seen[3] == pytest.approx(INVERSE, rel=1e-6)
