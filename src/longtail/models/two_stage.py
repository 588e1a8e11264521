"""Stage 2 of decoupled training: the frozen features of a stage-1 run and a new classifier,
and the post-hoc corrections of a trained classifier (tau-normalisation, logit adjustment).

``model: {name: frozen_features, run: RUN_DIR}`` re-initialises the classifier (cRT);
``model: {name: lws, run: RUN_DIR}`` keeps the stage-1 classifier and learns one scale per
class (LWS). Either trains with any method, loss and sampler, e.g. the standard method with
``sampler: class_balanced``. The features are bit-identical to stage 1's: the backbone has
no trainable parameters and stays in eval mode, so batch-norm statistics never move.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from ..errors import ConfigError, NotFound
from ..losses.classification import log_prior
from . import MODELS, create
from .backbones import FeatureExtractor
from .classifier import ImageClassifier
from .heads import HEADS, PriorAdjusted, ScaledHead, tau_normalised


class FrozenFeatures(nn.Module):
    """A feature extractor that is never trained: eval mode always, no gradients."""

    def __init__(self, backbone: FeatureExtractor) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False).eval()
        self.out_features = backbone.out_features

    def train(self, mode: bool = True) -> FrozenFeatures:
        super().train(mode)
        self.backbone.eval()  # keep the stage-1 batch-norm statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.backbone(x)


def load_stage1(run: str | Path, num_classes: int) -> ImageClassifier:
    """The image classifier trained in run directory ``run`` (its last checkpoint)."""
    from ..engine.checkpoint import load_checkpoint, load_weights, trained_by  # the engine imports models

    checkpoint = Path(run) / "checkpoints" / "last.pt"
    if not checkpoint.exists():
        raise NotFound(f"no stage-1 checkpoint at {checkpoint}; train stage 1 first, or point "
                       "model.run at its run directory")
    state = load_checkpoint(checkpoint)
    spec = OmegaConf.to_container(OmegaConf.create(state["config"]).model, resolve=True)
    model = create(num_classes=num_classes, **spec)
    if not isinstance(model, ImageClassifier):
        raise ConfigError(f"stage 1 in {run} trained a {type(model).__name__}, not backbone + head; "
                          "stage 2 needs a plain classifier run such as resnet32")
    prefix = "model."
    load_weights(model, {key.removeprefix(prefix): value for key, value in state["method"].items()
                         if key.startswith(prefix)},
                 f"{checkpoint} ({trained_by(state['config'])})",
                 f"{spec.get('name')} with {num_classes} classes",
                 "Stage 2 needs a stage-1 run of the same dataset and classes")
    return model


@MODELS.register("frozen_features")
def frozen_features(num_classes: int, run: str, head: str | dict = "linear") -> ImageClassifier:
    """cRT: the frozen features of stage-1 run ``run`` and a freshly initialised ``head``."""
    features = FrozenFeatures(load_stage1(run, num_classes).backbone)
    return ImageClassifier(
        features, HEADS.build(head, in_features=features.out_features, num_classes=num_classes)
    )


@MODELS.register("lws")
def learnable_weight_scaling(num_classes: int, run: str) -> ImageClassifier:
    """LWS: the frozen features and frozen classifier of run ``run``, one learnt scale per class."""
    stage1 = load_stage1(run, num_classes)
    return ImageClassifier(FrozenFeatures(stage1.backbone), ScaledHead(stage1.head, num_classes))


def apply_posthoc(model: ImageClassifier, class_counts: np.ndarray, tau_norm: float | None = None,
                  logit_adjust: float | None = None) -> None:
    """Correct a trained classifier in place, without training.

    ``tau_norm``: divide each class weight of the linear head by its norm ** tau (Kang et al.);
    ``logit_adjust``: subtract ``tau * log pi`` from the logits (Menon et al.).
    """
    if not isinstance(model, ImageClassifier):
        kind = type(model).__name__
        raise ConfigError(f"post-hoc corrections need a backbone + head, not a {kind}")
    if tau_norm is not None:
        if not isinstance(model.head, nn.Linear):
            head = type(model.head).__name__
            raise ConfigError(f"tau-normalisation needs a linear head, not a {head}")
        model.head = tau_normalised(model.head, tau_norm)
    if logit_adjust is not None:
        prior = log_prior(class_counts).to(next(model.parameters()).device)
        model.head = PriorAdjusted(model.head, prior, logit_adjust)
