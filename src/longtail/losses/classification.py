"""Cross-entropy and its prior-corrected variants."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .registry import LOSSES
from .reweighting import WeightedLoss


def log_prior(class_counts: np.ndarray | torch.Tensor) -> torch.Tensor:
    """log pi, the log of the training class frequencies."""
    counts = torch.as_tensor(np.asarray(class_counts), dtype=torch.float32)
    return torch.log(counts / counts.sum())


@LOSSES.register("ce")
class CrossEntropy(WeightedLoss):
    """Softmax cross-entropy; ``weights: inverse_frequency`` is re-weighting (RW), a
    ``deferred`` schedule is deferred re-weighting (DRW)."""

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, reduction="none")


@LOSSES.register("balanced_softmax")
class BalancedSoftmax(nn.Module):
    """Balanced Softmax (Ren et al. 2020): cross-entropy on ``logits + log pi``."""

    def __init__(self, class_counts: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("log_prior", log_prior(class_counts))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float() + self.log_prior, targets)
