"""Focal loss (Lin et al. 2017), softmax form; with ``weights: effective_number`` it is CB-Focal."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .registry import LOSSES
from .reweighting import WeightedLoss


@LOSSES.register("focal")
class FocalLoss(WeightedLoss):
    """``-(1 - p_y) ** gamma * log p_y`` per sample; ``gamma = 0`` is cross-entropy.

    ``p_y`` is the model's probability even with class weights (the LDAM authors' code
    derives it from the weighted loss instead, which changes the focusing for weighted classes).
    """

    def __init__(self, class_counts: np.ndarray, gamma: float = 1.0, weights: Any = "none",
                 reduction: str = "weighted_mean") -> None:
        super().__init__(class_counts, weights, reduction)
        self.gamma = gamma

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(logits, targets, reduction="none")
        return (1 - torch.exp(-nll)) ** self.gamma * nll
