"""PaCo (Cui et al. 2021): the PaCo loss on the query's centre logits and the MoCo contrast set."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..losses.contrastive import PaCoLoss
from .base import METHODS
from .contrastive import ContrastiveMethod


@METHODS.register("paco")
class PaCo(ContrastiveMethod):
    """Parametric contrastive learning; ``prior: false`` is the "†" variant (no rebalancing)."""

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 alpha: float = 0.05, temperature: float = 0.2, prior: bool = True,
                 sampler: Any = "uniform", query_transform: Any = "randaugment",
                 key_transform: Any = "simaugment") -> None:
        super().__init__(model_spec, num_classes, class_counts, sampler, query_transform,
                         key_transform)
        self.loss = PaCoLoss(class_counts, alpha, temperature, prior)

    def objective(self, logits: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor,
                  contrast_targets: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, targets, contrast, contrast_targets)
