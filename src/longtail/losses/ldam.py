"""LDAM: label-distribution-aware margins (Cao et al. 2019), for a cosine (normalised) head."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .registry import LOSSES
from .reweighting import WeightedLoss


def ldam_margins(class_counts: np.ndarray, max_margin: float) -> torch.Tensor:
    """Margins proportional to ``n_i ** -1/4``, the largest (rarest class) ``max_margin``."""
    margins = torch.as_tensor(np.asarray(class_counts), dtype=torch.float64).clamp(min=1) ** -0.25
    return (margins * max_margin / margins.max()).float()


@LOSSES.register("ldam")
class LDAMLoss(WeightedLoss):
    """Cross-entropy on ``scale * (z - margin_y * onehot(y))``, ``z`` the head's cosines."""

    def __init__(self, class_counts: np.ndarray, max_margin: float = 0.5, scale: float = 30.0,
                 weights: Any = "none", reduction: str = "weighted_mean") -> None:
        super().__init__(class_counts, weights, reduction)
        self.scale = scale
        self.register_buffer("margins", ldam_margins(class_counts, max_margin), persistent=False)

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        margin = F.one_hot(targets, logits.shape[1]) * self.margins[targets, None]
        return F.cross_entropy(self.scale * (logits - margin), targets, reduction="none")
