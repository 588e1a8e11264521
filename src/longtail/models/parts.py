"""Where the parts sit in each kind of model: the last classifier layer, the pooled
representation it reads (what stage 2 freezes and analyses look at), and the parameters
inference uses."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .bbn import BRANCHES, BilateralBranchNetwork, BranchFeatures
from .classifier import ImageClassifier
from .moco import MoCo

FEATURES = ("all", *BRANCHES)  # the representations feature_network() knows


def classifier_head(model: nn.Module) -> nn.Module:
    """The module from pooled features to logits: a classifier's head, BBN's and MoCo's classifier."""
    if isinstance(model, ImageClassifier):
        return model.head
    if isinstance(model, BilateralBranchNetwork | MoCo):
        return model.classifier
    raise ConfigError(f"no classifier head is known for a {type(model).__name__}")


def feature_network(model: nn.Module, features: str = "all") -> nn.Module:
    """The part of ``model`` that maps images to a pooled representation, with ``out_features``
    (sharing ``model``'s parameters). ``all``: what its classifier reads (the query backbone of
    MoCo, ``[f_c ; f_r]`` of BBN); ``conventional`` / ``rebalancing``: one BBN branch's features."""
    if features not in FEATURES:
        raise ConfigError(f"unknown features {features!r}; choose one of: {', '.join(FEATURES)}")
    if isinstance(model, BilateralBranchNetwork):
        return BranchFeatures(model, BRANCHES if features == "all" else (features,))
    if features != "all":
        raise ConfigError(f"features {features!r} is a branch of BBN, but this is a {type(model).__name__} with "
                          "one representation: use features: all")
    if isinstance(model, ImageClassifier | MoCo):
        return model.backbone
    raise ConfigError(f"no pooled representation is known for a {type(model).__name__}")


def classifier_layer(model: nn.Module) -> nn.Module:
    """The last layer, from pooled features to logits; its ``weight`` has one row per class."""
    layer = classifier_head(model)
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
