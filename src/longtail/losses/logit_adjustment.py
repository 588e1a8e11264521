"""Logit-adjusted loss (Menon et al. 2021): cross-entropy on ``logits + tau * log pi``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .classification import log_prior
from .registry import LOSSES
from .reweighting import WeightedLoss


@LOSSES.register("logit_adjusted")
class LogitAdjustedLoss(WeightedLoss):
    """``tau = 0`` is cross-entropy; ``tau = 1`` is Balanced Softmax's training loss."""

    def __init__(self, class_counts: np.ndarray, tau: float = 1.0, weights: Any = "none",
                 reduction: str = "weighted_mean") -> None:
        super().__init__(class_counts, weights, reduction)
        self.register_buffer("offset", tau * log_prior(class_counts), persistent=False)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.offset, targets, reduction="none")
