"""The plain image classifier: a backbone's pooled features followed by a head."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import BACKBONES, FeatureExtractor, build_backbone
from .heads import HEADS
from .registry import MODELS


class ImageClassifier(nn.Module):
    """``head(backbone(x))``; ``features`` and ``head`` are separate for decoupled training."""

    def __init__(self, backbone: FeatureExtractor, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


@MODELS.register_family("", BACKBONES)
def classifier(backbone: str, num_classes: int, head: str | dict = "linear",
               backbone_options: dict | None = None) -> ImageClassifier:
    """The model named after a backbone (``resnet32``): its features followed by a ``head``."""
    features = build_backbone(backbone, backbone_options)
    return ImageClassifier(features, HEADS.build(head, in_features=features.out_features, num_classes=num_classes,
                                                 trained_head=None))
