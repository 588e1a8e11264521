"""Classifier heads on pooled features: linear and cosine (normalised), plus the post-hoc
re-scalings of decoupled training (tau-normalisation, learnable weight scaling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registry import Registry

# A head maps pooled features to logits. Builders pass in_features, num_classes and trained_head
# (the classifier of a trained network in stage 2, else None) to the heads that name them.
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
        # in fp32 even under autocast: LDAM scales cosines by 30, which would magnify bf16 rounding
        with torch.autocast(features.device.type, enabled=False):
            return F.normalize(features.float(), dim=1) @ F.normalize(self.weight, dim=1).t()


# --- decoupled training (Kang et al. 2020) and post-hoc corrections ---------------------------


class ScaledHead(nn.Module):
    """Learnable weight scaling (LWS): a frozen classifier's logits times a learnt class scale."""

    def __init__(self, head: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.head = head.requires_grad_(False)
        self.scales = nn.Parameter(torch.ones(num_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) * self.scales


@HEADS.register("lws")
def learnable_weight_scaling(num_classes: int, trained_head: nn.Module | None) -> ScaledHead:
    """LWS (stage 2 only): the trained network's classifier, frozen, with a learnt scale per class."""
    if trained_head is None:
        raise ConfigError("head lws scales the classifier of a trained network, which reads all its features: "
                          "use it in stage 2 with features: all, model: {name: frozen_features, run: STAGE1_RUN, "
                          "head: lws}")
    return ScaledHead(trained_head, num_classes)


def tau_normalised(head: nn.Linear, tau: float) -> LinearHead:
    """A copy of ``head`` with each class weight divided by its norm to the power ``tau``.

    ``tau = 0`` leaves the head unchanged, ``tau = 1`` gives every class a unit weight vector;
    the bias is kept.
    """
    normalised = LinearHead(head.in_features, head.out_features, bias=head.bias is not None)
    with torch.no_grad():
        norms = head.weight.norm(dim=1, keepdim=True)
        normalised.weight.copy_(head.weight / norms.pow(tau))
        if head.bias is not None:
            normalised.bias.copy_(head.bias)
    return normalised.to(head.weight.device)


class PriorAdjusted(nn.Module):
    """Post-hoc logit adjustment (Menon et al. 2021): ``head(x) - tau * log pi``."""

    def __init__(self, head: nn.Module, log_prior: torch.Tensor, tau: float) -> None:
        super().__init__()
        self.head = head
        self.register_buffer("offset", tau * log_prior, persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) - self.offset
