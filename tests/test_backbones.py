"""The large-scale backbones: PaCo Table 3's ResNeXts, BBN's initialisation, Places-LT's frozen trunk."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from longtail.models import MODELS, create
from longtail.registry import ConfigError


def _parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("arch", "with_fc"), [
    ("resnext50_32x4d", 25_028_904),  # torchvision's and the ResNeXt paper's 25.0M
    ("resnext101_32x4d", 44_177_704),  # 44.2M, as timm's model of that name
])
def test_table3_resnexts_build_for_plain_and_moco_models(arch, with_fc):
    with torch.device("meta"):
        plain = create(arch, num_classes=1000)
        moco = create(f"moco_{arch}", num_classes=1000)
    fc = 2048 * 1000 + 1000
    assert _parameters(plain.backbone) == with_fc - fc
    assert _parameters(moco.backbone) == _parameters(moco.key_backbone) == with_fc - fc
    conv = plain.backbone.trunk[4][0].conv2  # layer1's grouped 3x3: 32 groups of width 4
    assert (conv.groups, conv.in_channels) == (32, 128)
    assert f"bbn_{arch}" in MODELS.names()


def test_resnext101_32x4d_has_no_pretrained_weights():
    with pytest.raises(ConfigError, match="no pretrained weights"):
        create("resnext101_32x4d", num_classes=3, backbone_options={"weights": "DEFAULT"})


def _std(conv: nn.Conv2d) -> float:
    return conv.weight.std().item()


def test_pytorch_default_init_is_bbns_and_reaches_the_branches():
    torch.manual_seed(0)
    bbn = create("bbn_resnet18", num_classes=4, backbone_options={"init": "pytorch"})
    default = create("bbn_resnet18", num_classes=4)
    # Kaiming-uniform with a = sqrt(5): std 1 / sqrt(3 fan_in); torchvision: sqrt(2 / fan_out).
    stem = bbn.trunk[0]
    assert _std(stem) == pytest.approx(1 / math.sqrt(3 * 3 * 49), rel=0.05)
    assert _std(default.trunk[0]) == pytest.approx(math.sqrt(2 / (64 * 49)), rel=0.05)
    for branch in (bbn.conventional, bbn.rebalancing):
        conv = branch.conv1  # 512 -> 512, 3x3
        assert _std(conv) == pytest.approx(1 / math.sqrt(3 * 512 * 9), rel=0.05)
    assert not torch.equal(bbn.conventional.conv1.weight, bbn.rebalancing.conv1.weight)
    with pytest.raises(ConfigError, match="unknown init 'xavier'"):
        create("resnet18", num_classes=4, backbone_options={"init": "xavier"})


def test_frozen_trunk_trains_only_the_last_blocks_convolutions():
    model = create("moco_resnet18", num_classes=5, backbone_options={"freeze_trunk_convs": True})
    backbone = model.backbone
    trunk_convs = [m for m in backbone.trunk.modules() if isinstance(m, nn.Conv2d)]
    assert trunk_convs and not any(m.weight.requires_grad for m in trunk_convs)
    assert all(p.requires_grad for p in backbone.last_block.parameters())
    norms = [m for m in backbone.trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.weight.requires_grad and m.bias.requires_grad for m in norms)
    assert model.classifier.weight.requires_grad and model.projector[0].weight.requires_grad
