"""The plain image classifier: a backbone's pooled features followed by a head."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import FeatureExtractor


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
