"""SupCon (Khosla et al. 2020), stage 1: the representation alone, learnt with a MoCo queue.

Stage 2 trains a classifier on this run's frozen features:
``model: {name: frozen_features, run: SUPCON_RUN}`` with the standard method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..losses.contrastive import SupConLoss
from .base import METHODS
from .contrastive import ContrastiveMethod


@METHODS.register("supcon")
class SupCon(ContrastiveMethod):
    """The supervised contrastive loss alone; the classifier is frozen (no gradient reaches it)."""

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 temperature: float = 0.1, sampler: Any = "uniform",
                 query_transform: Any = "simaugment", key_transform: Any = "simaugment") -> None:
        super().__init__(model_spec, num_classes, class_counts, sampler, query_transform,
                         key_transform)
        self.model.classifier.requires_grad_(False)  # DDP rejects parameters that get no gradient
        self.loss = SupConLoss(temperature)

    def objective(self, logits: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor,
                  contrast_targets: torch.Tensor) -> torch.Tensor:
        return self.loss(targets, contrast, contrast_targets)
