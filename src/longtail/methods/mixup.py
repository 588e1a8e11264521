"""Mixup (Zhang et al. 2018) and Manifold Mixup (Verma et al. 2019) on the standard recipe.

Every step mixes each sample with a partner, ``h = lam * h_a + (1 - lam) * h_b`` with
``lam ~ Beta(alpha, alpha)``, at a depth drawn uniformly from ``layers``, and the loss is
``lam * loss(z, y_a) + (1 - lam) * loss(z, y_b)``. A depth counts the children of the
backbone's trunk run before mixing: ``[0]`` mixes images (Mixup); for ResNet-32
``[0, 8, 13]`` is the input, the end of stage 1 and the end of stage 2 (Manifold Mixup).
Partners are the same batch in a random order, or, with ``partner_sampler``, a second batch
drawn by that sampler: BBN Table 1's "Manifold Mixup (two samplers)" uses ``reversed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.streams import Batch
from ..errors import ConfigError
from ..models import ImageClassifier
from .base import METHODS, StepOutput, StreamSpec
from .standard import Standard


def forward_from(model: ImageClassifier, hidden: torch.Tensor, depth: int) -> torch.Tensor:
    """Logits from the output of the first ``depth`` trunk children (0: from the images)."""
    features = model.backbone
    return model.head(features.pool(features.last_block(features.trunk[depth:](hidden))))


@METHODS.register("mixup")
class Mixup(Standard):
    """The standard recipe on mixed samples; see the module docstring for the options."""

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 loss: Any = "ce", sampler: Any = "uniform", transform: Any = "crop_flip",
                 alpha: float = 1.0, layers: Sequence[int] = (0,),
                 partner_sampler: Any = None) -> None:
        super().__init__(model_spec, num_classes, class_counts, loss, sampler, transform)
        depth = len(self.model.backbone.trunk)
        if not layers or any(not 0 <= k <= depth for k in layers):
            raise ConfigError(f"mixup layers must lie in 0..{depth} for this backbone, got {layers}")
        self.beta = torch.distributions.Beta(alpha, alpha)
        self.layers = list(layers)
        self.partner_sampler = partner_sampler

    def streams(self) -> dict[str, StreamSpec]:
        streams = super().streams()
        if self.partner_sampler is not None:
            streams["partner"] = StreamSpec(self.partner_sampler, [self.transform])
        return streams

    def forward(self, batches: dict[str, Batch]) -> StepOutput:
        main = batches["main"]
        # the global RNG is reseeded from (seed, epoch) by the engine, so resuming is exact
        lam = float(self.beta.sample())
        depth = self.layers[int(torch.randint(len(self.layers), ()))]
        prefix = self.model.backbone.trunk[:depth]
        if "partner" in batches:
            partner = batches["partner"]
            hidden = prefix(torch.cat([main.images, partner.images]))  # one batch-norm pass
            hidden_a, hidden_b = hidden.split([len(main.targets), len(partner.targets)])
            targets_b = partner.targets
        else:
            order = torch.randperm(len(main.targets), device=main.targets.device)
            hidden_a = prefix(main.images)
            hidden_b, targets_b = hidden_a[order], main.targets[order]
        logits = forward_from(self.model, lam * hidden_a + (1 - lam) * hidden_b, depth)
        loss = lam * self.loss(logits, main.targets) + (1 - lam) * self.loss(logits, targets_b)
        return StepOutput(loss)
