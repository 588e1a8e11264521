"""Models by name: ``longtail.models.create("resnet32", num_classes=100)``; trained ones from
``results/``: ``longtail.models.load_pretrained("cifar100_lt/paco_ir100")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..registry import Registry
from . import bbn, moco
from .backbones import BACKBONES, FeatureExtractor, build_backbone
from .bbn import BilateralBranchNetwork
from .classifier import ImageClassifier
from .heads import HEADS
from .moco import MoCo

MODELS = Registry("model")


def create(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a registered model, e.g. ``create("bbn_resnet32", num_classes=100)``."""
    return MODELS.build({"name": name, **options}, num_classes=num_classes)


def _classifier_factory(backbone: str) -> Callable[..., ImageClassifier]:
    def build(num_classes: int, head: str = "linear", backbone_options: dict | None = None) -> ImageClassifier:
        features = build_backbone(backbone, backbone_options)
        return ImageClassifier(
            features, HEADS.build(head, in_features=features.out_features, num_classes=num_classes)
        )

    build.__doc__ = f"{backbone} features followed by a classifier head."
    return build


for _backbone in BACKBONES.names():
    MODELS.register(_backbone)(_classifier_factory(_backbone))
bbn.register(MODELS)
moco.register(MODELS)
from . import two_stage  # noqa: E402,F401  (registers the stage-2 models)
from .pretrained import load_pretrained, pretrained_transform  # noqa: E402

__all__ = ["BACKBONES", "BilateralBranchNetwork", "HEADS", "MODELS", "FeatureExtractor", "ImageClassifier", "MoCo",
           "create", "load_pretrained", "pretrained_transform"]
