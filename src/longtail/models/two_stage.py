"""Stage 2 of decoupled training: the frozen features of a trained network and a classifier
trained on them, and the post-hoc corrections of a trained classifier (tau-normalisation, logit
adjustment).

One model entry does every stage 2, whatever trained stage 1::

    model: {name: frozen_features, run: STAGE1, features: all, head: linear}

``run`` is a run directory (its ``checkpoints/last.pt``), a checkpoint file, or a results folder
(``results/DATASET/NAME``, its shipped weights). ``features`` picks the representation:
``all`` is what the stage-1 classifier reads (a classifier's backbone, MoCo's query backbone for
SupCon's linear probe, ``[f_c ; f_r]`` for BBN); ``conventional`` or ``rebalancing`` is one BBN
branch (trunk + that branch's block: BBN-CB and BBN-RB of BBN's Table 5). ``head`` is a new head
(``linear``, ``cosine``: cRT) or ``lws``, the stage-1 classifier kept with one learnt scale per
class (LWS). Any method, loss and sampler trains it, e.g. the standard method with
``sampler: class_balanced``. The features are bit-identical to stage 1's: they have no trainable
parameters and stay in eval mode, so batch-norm statistics never move.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from ..checkpoints import checkpoint_file, load_checkpoint, load_weights, model_weights, trained_by
from ..errors import CheckpointError, ConfigError, NotFound
from ..losses.classification import log_prior
from .classifier import ImageClassifier
from .heads import HEADS, PriorAdjusted, tau_normalised
from .parts import classifier_head, feature_network
from .pretrained import build_model, is_results_folder, load_pretrained, recorded_num_classes
from .registry import MODELS


class FrozenFeatures(nn.Module):
    """A feature network that is never trained: eval mode always, no gradients."""

    def __init__(self, backbone: nn.Module) -> None:
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


def load_trained(run: str | Path, num_classes: int) -> nn.Module:
    """The network trained in ``run`` with its weights, on the CPU: a run directory (its last
    checkpoint), a checkpoint file, or a results folder (its checksum-verified weights; a MoCo
    model there is its query backbone and classifier)."""
    path = Path(run).expanduser()
    if is_results_folder(path):
        recorded = recorded_num_classes(path)
        if recorded != num_classes:
            raise CheckpointError(f"{path} was trained on {recorded} classes, but this data has {num_classes}; "
                                  "stage 2 needs a stage-1 run of the same dataset and classes")
        return load_pretrained(path)
    checkpoint = checkpoint_file(path)
    if not checkpoint.exists():
        raise NotFound(f"no stage-1 checkpoint at {checkpoint}; train stage 1 first, or point model.run at its "
                       "run directory, a checkpoint file or a results folder")
    state = load_checkpoint(checkpoint)
    spec = OmegaConf.to_container(OmegaConf.create(state["config"]).model, resolve=True)
    model = build_model(spec, num_classes)
    load_weights(model, model_weights(state), f"{checkpoint} ({trained_by(state['config'])})",
                 f"{spec.get('name')} with {num_classes} classes",
                 "Stage 2 needs a stage-1 run of the same dataset and classes")
    return model


@MODELS.register("frozen_features")
def frozen_features(num_classes: int, run: str, features: str = "all", head: str | dict = "linear") -> ImageClassifier:
    """Stage 2: the frozen ``features`` of the network trained in ``run`` and ``head`` on them
    (see the module docstring for the choices)."""
    trained = load_trained(run, num_classes)
    extractor = FrozenFeatures(feature_network(trained, features))
    # lws keeps the stage-1 classifier, which reads all features, not one BBN branch's
    trained_head = classifier_head(trained) if features == "all" else None
    return ImageClassifier(extractor, HEADS.build(head, in_features=extractor.out_features, num_classes=num_classes,
                                                  trained_head=trained_head))


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

