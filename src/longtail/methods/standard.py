"""The standard recipe: one model, one sampler, one loss (cross-entropy and its relatives)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.streams import Batch
from ..losses import LOSSES
from ..models import create
from .base import METHODS, Method, StepOutput, StreamSpec


@METHODS.register("standard")
class Standard(Method):
    """Train ``model`` with ``loss`` on batches drawn by ``sampler``."""

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 loss: Any = "ce", sampler: Any = "uniform", transform: Any = "crop_flip") -> None:
        super().__init__(class_counts)
        self.model = create(num_classes=num_classes, **model_spec)
        self.loss = LOSSES.build(loss, class_counts=class_counts)
        self.sampler, self.transform = sampler, transform

    def streams(self) -> dict[str, StreamSpec]:
        return {"main": StreamSpec(self.sampler, [self.transform])}

    def forward(self, batches: dict[str, Batch]) -> StepOutput:
        batch = batches["main"]
        return StepOutput(self.loss(self.model(batch.images), batch.targets))
