"""ResNet-32 as the papers use it, and the model registry."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from longtail.models import MODELS, create
from longtail.registry import ConfigError


def test_resnet32_structure():
    model = create("resnet32", num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 32  # 1 stem + 3 stages x 5 blocks x 2 convs + fc
    assert [c.out_channels for c in convs[::10]] == [16, 16, 32, 64]
    # option-A shortcuts add no parameters: the classic 0.46M for CIFAR-10
    assert sum(p.numel() for p in model.parameters()) == 464_154
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.features(torch.randn(2, 3, 32, 32)).shape == (2, 64)


def test_shortcut_pads_channels_with_zeros():
    model = create("resnet32", num_classes=10)
    block = model.backbone.trunk[3 + 5]  # first block of stage 2: 16 -> 32 channels, stride 2
    x = torch.randn(1, 16, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (1, 32, 4, 4)
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])


def test_last_block_is_split_from_trunk():
    backbone = create("resnet32", num_classes=10).backbone
    assert len(backbone.trunk) == 3 + 14  # stem + 14 of the 15 blocks
    fresh = backbone.fresh_last_block()
    assert not torch.equal(fresh.conv1.weight, backbone.last_block.conv1.weight)


def test_torchvision_backbone_builds():
    model = create("resnet18", num_classes=7)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    assert model.backbone.out_features == 512


@pytest.mark.parametrize("name", ["resnet18", "bbn_resnet18", "moco_resnet18"])
def test_pretrained_weights_reach_torchvision(name, monkeypatch):
    """Every model family passes ``backbone_options`` on; no download here: torchvision's
    constructor is replaced by one that records the weights and loads a known state."""
    reference = torchvision.models.resnet18(weights=None)
    requested = []

    def pretrained_resnet18(weights=None):
        requested.append(weights)
        net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2])
        net.load_state_dict(reference.state_dict())
        return net

    monkeypatch.setattr(torchvision.models, "resnet18", pretrained_resnet18)
    model = create(name, num_classes=5, backbone_options={"weights": "IMAGENET1K_V1"})
    assert requested == ["IMAGENET1K_V1"]
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert torch.equal(first_conv.weight, reference.conv1.weight)


@pytest.mark.parametrize(("name", "message"), [
    ("resnet18", "unknown weights 'NOPE'"),  # not a torchvision weights name
    ("resnet32", "has no option 'weights'"),  # CIFAR ResNets have no pretrained weights
])
def test_bad_weights_get_a_clear_error(name, message):
    with pytest.raises(ConfigError, match=message):
        create(name, num_classes=5, backbone_options={"weights": "NOPE"})


def test_unknown_model_lists_choices():
    with pytest.raises(ConfigError, match="resnet32"):
        create("resnet33", num_classes=10)
    with pytest.raises(ConfigError, match="valid options: head"):
        create("resnet32", num_classes=10, depth=3)
    assert "bbn_resnet32" in MODELS.names()
