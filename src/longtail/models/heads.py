"""Classifier heads on pooled features: linear and cosine (normalised), plus the post-hoc
re-scalings of decoupled training (tau-normalisation, learnable weight scaling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry

HEADS = Registry("head")


@HEADS.register("linear")
class LinearHead(nn.Linear):
    """A plain linear classifier with bias."""

    def __init__(self, in_features: int, num_classes: int, bias: bool = True) -> None:
        super().__init__(in_features, num_classes, bias=bias)


@HEADS.register("cosine")
class CosineHead(nn.Module):
    """Logits are cosines between normalised features and normalised class weights (LDAM).

    The loss applies the scale ``s``; the head returns raw cosines in [-1, 1].
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.uniform_(self.weight, -1, 1)
        self.weight.data.renorm_(2, 0, 1e-5).mul_(1e5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).t()
