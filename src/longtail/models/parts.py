"""Where the parts that analyses look at sit in each kind of model: the last classifier layer,
the pooled representation it reads, and the parameters inference uses."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .bbn import BilateralBranchNetwork
from .classifier import ImageClassifier
from .moco import MoCo


def classifier_layer(model: nn.Module) -> nn.Module:
    """The last layer, from pooled features to logits; its ``weight`` has one row per class."""
    layer = model.head if isinstance(model, ImageClassifier) else getattr(model, "classifier", None)
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ConfigError(f"a {type(model).__name__} whose head is a {type(layer).__name__} has no "
                         "classifier weight matrix (one row per class) to analyse")
    return layer


def representations(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The pooled features the classifier reads (``"all"``); for BBN also each branch's half
    (at inference α = 0.5, so the classifier reads ``[f_c ; f_r]``)."""
    if isinstance(model, BilateralBranchNetwork):
        conventional = model.branch_features(images, "conventional")
        rebalancing = model.branch_features(images, "rebalancing")
        return {"all": torch.cat([conventional, rebalancing], 1), "conventional": conventional,
                "rebalancing": rebalancing}
    if isinstance(model, (ImageClassifier, MoCo)):
        return {"all": model.backbone(images)}
    raise ConfigError(f"no pooled representation is known for a {type(model).__name__}")


def inference_parameter_count(model: nn.Module) -> int:
    """Parameters that predicting uses: MoCo's key encoder and projection heads do not count."""
    modules = [model.backbone, model.classifier] if isinstance(model, MoCo) else [model]
    return sum(p.numel() for module in modules for p in module.parameters())
