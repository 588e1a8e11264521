"""The multi-task baseline of PaCo's Tables 7 and 8: a classification loss plus a fixed-weight
SupCon term, the combination PaCo's adaptive weighting is compared with."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..losses import LOSSES
from ..losses.contrastive import SupConLoss
from .base import METHODS
from .contrastive import ContrastiveMethod


@METHODS.register("multitask")
class MultiTask(ContrastiveMethod):
    """``loss(logits, y) + weight * SupCon``."""

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 loss: Any = "ce", weight: float = 0.05, temperature: float = 0.2,
                 sampler: Any = "uniform", query_transform: Any = "randaugment",
                 key_transform: Any = "simaugment") -> None:
        super().__init__(model_spec, num_classes, class_counts, sampler, query_transform,
                         key_transform)
        self.classification = LOSSES.build(loss, class_counts=class_counts)
        self.contrastive = SupConLoss(temperature)
        self.weight = weight

    def objective(self, logits: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor,
                  contrast_targets: torch.Tensor) -> torch.Tensor:
        return (self.classification(logits, targets)
                + self.weight * self.contrastive(targets, contrast, contrast_targets))
