"""What PaCo, SupCon and the multi-task baseline share: a MoCo model trained on two views.

Each step draws one stream whose two views come from ``query_transform`` and ``key_transform``
(the sampler is any registered sampler), runs the MoCo contrast step, enqueues every rank's keys
and hands the centre logits and the contrast set to the subclass's :meth:`objective`. Inference
is the argmax of the plain linear classifier on the query backbone (no prior term).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.streams import Batch
from ..errors import ConfigError
from ..gather import gather_cat
from ..models import MoCo, create
from .base import Method, StepOutput, StreamSpec


class ContrastiveMethod(Method):
    """A MoCo model trained on (query view, key view) pairs; subclasses give the loss."""

    model: MoCo

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 sampler: Any, query_transform: Any, key_transform: Any) -> None:
        super().__init__(class_counts)
        self.model = create(num_classes=num_classes, **model_spec)
        if not isinstance(self.model, MoCo):
            raise ConfigError(f"method {type(self).__name__} needs a MoCo model such as "
                              f"moco_resnet32, got model {model_spec.get('name')!r}")
        self.sampler = sampler
        self.query_transform, self.key_transform = query_transform, key_transform

    def streams(self) -> dict[str, StreamSpec]:
        return {"main": StreamSpec(self.sampler, [self.query_transform, self.key_transform])}

    def forward(self, batches: dict[str, Batch]) -> StepOutput:
        batch = batches["main"]
        query_images, key_images = batch.views
        step = self.model.contrast_step(query_images, key_images, batch.targets)
        # Every rank enqueues the keys of all ranks, so the queues stay identical.
        self.model.enqueue(gather_cat(step.keys), gather_cat(batch.targets))
        return StepOutput(
            self.objective(step.logits, batch.targets, step.contrast, step.contrast_targets))

    def objective(self, logits: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor,
                  contrast_targets: torch.Tensor) -> torch.Tensor:
        """The step's loss from the centre logits and the contrast set (see ``ContrastStep``)."""
        raise NotImplementedError
