"""The bilateral-branch network of BBN (Zhou et al., CVPR 2020).

Both branches share the backbone's trunk (one set of parameters) and each has its own copy
of the backbone's last residual block. The classifier acts on ``[2α·f_c ; 2(1−α)·f_r]``,
Eq. (1) of the paper written as the authors' code does, so α = 0.5 at inference gives the
plain concatenation ``[f_c ; f_r]``.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import BACKBONES, FeatureExtractor, build_backbone
from .registry import MODELS

BRANCHES = ("conventional", "rebalancing")


class BilateralBranchNetwork(nn.Module):
    def __init__(self, backbone: FeatureExtractor, num_classes: int) -> None:
        super().__init__()
        self.trunk = backbone.trunk
        self.conventional = backbone.last_block
        self.rebalancing = backbone.fresh_last_block()
        self._pool = backbone.pool
        self.feature_dim = backbone.out_features
        self.classifier = nn.Linear(2 * backbone.out_features, num_classes)

    def branch_features(self, images: torch.Tensor, branch: str) -> torch.Tensor:
        """Pooled features of one branch: trunk -> that branch's block -> pool."""
        if branch not in BRANCHES:
            raise ValueError(f"unknown branch {branch!r}; choose one of {', '.join(BRANCHES)}")
        return self._pool(getattr(self, branch)(self.trunk(images)))

    def mix(self, conventional: torch.Tensor, rebalancing: torch.Tensor, alpha: float) -> torch.Tensor:
        """Logits of ``[2α·f_c ; 2(1−α)·f_r]``."""
        return self.classifier(torch.cat([2 * alpha * conventional, 2 * (1 - alpha) * rebalancing], 1))

    def forward(self, images: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
        """Both branches on the same images; α = 1 (0) scores the conventional (re-balancing) branch alone."""
        features = self.trunk(images)
        return self.mix(self._pool(self.conventional(features)), self._pool(self.rebalancing(features)), alpha)


class BranchFeatures(nn.Module):
    """BBN's pooled representation: one branch's (trunk -> its block -> pool), or ``[f_c ; f_r]``
    for both, the features its classifier reads at inference (α = 0.5). Shares the network's
    parameters; the classifier is not part of it."""

    def __init__(self, network: BilateralBranchNetwork, branches: tuple[str, ...] = BRANCHES) -> None:
        super().__init__()
        unknown = [branch for branch in branches if branch not in BRANCHES]
        if unknown or not branches:
            raise ValueError(f"unknown branches {unknown}; choose from {', '.join(BRANCHES)}")
        self.trunk = network.trunk
        self.blocks = nn.ModuleDict({branch: getattr(network, branch) for branch in branches})
        self._pool = network._pool
        self.out_features = network.feature_dim * len(branches)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        shared = self.trunk(images)
        return torch.cat([self._pool(block(shared)) for block in self.blocks.values()], 1)


@MODELS.register_family("bbn_", BACKBONES)
def bbn(backbone: str, num_classes: int, backbone_options: dict | None = None) -> BilateralBranchNetwork:
    """``bbn_<backbone>``: shared trunk, two copies of the backbone's last block, one classifier."""
    return BilateralBranchNetwork(build_backbone(backbone, backbone_options), num_classes)
