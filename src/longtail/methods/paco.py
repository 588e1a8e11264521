"""PaCo and its contrastive baselines, all in the MoCo framework, and the linear probe.

``paco``       PaCo loss on the query's centre logits and the contrast set (Cui et al. 2021)
``supcon``     SupCon representation learning; the classifier stays untrained (stage 1)
``multitask``  a classification loss + ``weight`` x SupCon (Tables 7 and 8 of the paper)
``linear_probe``  stage 2: a fresh linear classifier on the frozen backbone of a stage-1 run

The contrastive methods draw one stream whose two views come from ``query_transform`` and
``key_transform``; the sampler is any registered sampler. Inference is the argmax of the plain
linear classifier on the query backbone (no prior term).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.streams import Batch
from ..engine.checkpoint import load_checkpoint, load_weights, trained_by
from ..errors import NotFound
from ..gather import gather_cat
from ..losses import LOSSES
from ..losses.contrastive import PaCoLoss, SupConLoss
from ..models import MoCo, create
from ..registry import ConfigError
from . import METHODS
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


@METHODS.register("supcon")
class SupCon(ContrastiveMethod):
    """Stage 1 of SupCon: the representation alone. The classifier is frozen (no gradient
    reaches it), so train a ``linear_probe`` on this run afterwards."""

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


@METHODS.register("multitask")
class MultiTask(ContrastiveMethod):
    """``loss(logits, y) + weight * SupCon``: the fixed-weight combination PaCo is compared with."""

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


def _backbone_state(run: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The query backbone's weights from a run directory (or a checkpoint file), and where
    they come from."""
    path = Path(run).expanduser()
    checkpoint = path / "checkpoints" / "last.pt" if path.is_dir() else path
    if not checkpoint.exists():
        raise NotFound(f"linear_probe: no stage-1 checkpoint at {checkpoint}; train "
                       "the representation first and set method.checkpoint to its run")
    prefix = "model.backbone."
    state = load_checkpoint(checkpoint)
    backbone = {key[len(prefix):]: value for key, value in state["method"].items()
                if key.startswith(prefix)}
    if not backbone:
        raise ConfigError(f"{checkpoint} holds no {prefix}* weights to probe")
    return backbone, f"{checkpoint} ({trained_by(state['config'])})"


@METHODS.register("linear_probe")
class LinearProbe(Method):
    """A fresh linear classifier on the frozen backbone of a stage-1 run (SupCon's stage 2).

    ``model`` names the plain classifier on the same backbone (e.g. ``resnet32``). The backbone
    keeps its batch-norm statistics (eval mode) and gets no gradient.
    """

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray,
                 checkpoint: str, loss: Any = "ce", sampler: Any = "uniform",
                 transform: Any = "crop_flip") -> None:
        super().__init__(class_counts)
        self.model = create(num_classes=num_classes, **model_spec)
        load_weights(self.model.backbone, *_backbone_state(checkpoint),
                     f"the backbone of model {model_spec.get('name')}",
                     "Set method.checkpoint to a run whose model has this backbone")
        self.model.backbone.requires_grad_(False)
        self.loss = LOSSES.build(loss, class_counts=class_counts)
        self.sampler, self.transform = sampler, transform

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.model.backbone.eval()
        return self

    def streams(self) -> dict[str, StreamSpec]:
        return {"main": StreamSpec(self.sampler, [self.transform])}

    def forward(self, batches: dict[str, Batch]) -> StepOutput:
        batch = batches["main"]
        with torch.no_grad():
            features = self.model.backbone(batch.images)
        return StepOutput(self.loss(self.model.head(features), batch.targets))
