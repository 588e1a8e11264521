"""Per-class loss weights, possibly changing with the epoch, and the losses that use them.

A weight schedule is built by name from ``CLASS_WEIGHTS`` (``weights: inverse_frequency``,
``weights: {name: effective_number, beta: 0.9999}``) and maps a 0-based epoch to one weight
per class. ``deferred`` switches from one schedule to another at a given epoch: deferred
re-weighting (DRW, Cao et al. 2019). Weights are scaled to average 1 over the classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry

CLASS_WEIGHTS = Registry("class weights")


def _counts(class_counts: np.ndarray | torch.Tensor) -> torch.Tensor:
    # absent classes count as one image so that their weight stays finite
    return torch.as_tensor(np.asarray(class_counts), dtype=torch.float64).clamp(min=1)


def _mean_one(weights: torch.Tensor) -> torch.Tensor:
    return (weights * len(weights) / weights.sum()).float()


class WeightSchedule:
    """Per-class weights as a function of the 0-based epoch."""

    def __call__(self, epoch: int) -> torch.Tensor:
        raise NotImplementedError


class ConstantWeights(WeightSchedule):
    """The same weights every epoch."""

    def __init__(self, weights: torch.Tensor) -> None:
        self.weights = _mean_one(weights)

    def __call__(self, epoch: int) -> torch.Tensor:
        return self.weights


@CLASS_WEIGHTS.register("none")
def uniform(class_counts: np.ndarray) -> ConstantWeights:
    """Weight 1 for every class (no re-weighting)."""
    return ConstantWeights(torch.ones_like(_counts(class_counts)))


@CLASS_WEIGHTS.register("inverse_frequency")
def inverse_frequency(class_counts: np.ndarray) -> ConstantWeights:
    """RW: weight of class i proportional to 1 / n_i."""
    return ConstantWeights(1.0 / _counts(class_counts))


@CLASS_WEIGHTS.register("effective_number")
def effective_number(class_counts: np.ndarray, beta: float = 0.9999) -> ConstantWeights:
    """Class-balanced weights (Cui et al. 2019): ``(1 - beta) / (1 - beta ** n_i)``.

    ``beta = 0`` weighs every class equally; ``beta -> 1`` tends to inverse frequency.
    """
    if not 0 <= beta < 1:
        raise ConfigError(f"effective_number needs 0 <= beta < 1, got {beta}")
    counts = _counts(class_counts)
    return ConstantWeights((1 - beta) / (1 - torch.pow(beta, counts)))


@CLASS_WEIGHTS.register("deferred")
class DeferredWeights(WeightSchedule):
    """``before`` until 0-based epoch ``switch_epoch``, ``after`` from then on (DRW)."""

    def __init__(self, class_counts: np.ndarray, after: Any, switch_epoch: int,
                 before: Any = "none") -> None:
        self.before = CLASS_WEIGHTS.build(before, class_counts=class_counts)
        self.after = CLASS_WEIGHTS.build(after, class_counts=class_counts)
        self.switch_epoch = switch_epoch

    def __call__(self, epoch: int) -> torch.Tensor:
        return (self.after if epoch >= self.switch_epoch else self.before)(epoch)


REDUCTIONS = ("weighted_mean", "mean")


class WeightedLoss(nn.Module):
    """Base class: a per-sample loss combined with per-class weights that follow a schedule.

    ``reduction="weighted_mean"`` gives ``sum(w_y * l) / sum(w_y)`` (PyTorch's
    ``cross_entropy(weight=...)``, used by LDAM-DRW); ``"mean"`` gives ``sum(w_y * l) / B``
    (the class-balanced loss of Cui et al.). Subclasses implement :meth:`per_sample`.
    """

    def __init__(self, class_counts: np.ndarray, weights: Any = "none",
                 reduction: str = "weighted_mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"unknown reduction {reduction!r}; choose {' or '.join(REDUCTIONS)}")
        self.schedule: WeightSchedule = CLASS_WEIGHTS.build(weights, class_counts=class_counts)
        self.reduction = reduction
        # not persistent: the weights are a function of the epoch, set again by set_epoch
        self.register_buffer("weight", self.schedule(0), persistent=False)

    def set_epoch(self, epoch: int) -> None:
        """Use the weights of 0-based ``epoch`` (the method's ``set_epoch`` calls it)."""
        self.weight = self.schedule(epoch).to(self.weight.device)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weights = self.weight[targets]
        total = (weights * self.per_sample(logits.float(), targets)).sum()
        return total / (weights.sum() if self.reduction == "weighted_mean" else len(targets))
