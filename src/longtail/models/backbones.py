"""Feature extractors: the CIFAR ResNet-32 and torchvision ResNets/ResNeXts, all split the same way.

Every backbone is ``trunk -> last_block -> global average pool``. BBN shares the trunk and
gives each branch its own copy of ``last_block``; everything else uses the backbone whole.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..registry import ConfigError, Registry

BACKBONES = Registry("backbone")


def build_backbone(name: str, options: dict | None = None) -> FeatureExtractor:
    """A registered backbone with its options, e.g. ``{"weights": "IMAGENET1K_V1"}``: the
    ``backbone`` option of every model built on one."""
    return BACKBONES.build({"name": name, **(options or {})})


class FeatureExtractor(nn.Module):
    """``trunk`` (feature map) -> ``last_block`` -> global average pool -> ``(B, out_features)``."""

    def __init__(
        self,
        trunk: nn.Module,
        last_block: nn.Module,
        out_features: int,
        init_block: Callable[[nn.Module], None],
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.last_block = last_block
        self.out_features = out_features
        self._init_block = init_block

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(feature_map, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.last_block(self.trunk(x)))

    def fresh_last_block(self) -> nn.Module:
        """A new, independently initialised copy of the last block (for BBN's branches)."""
        block = copy.deepcopy(self.last_block)
        self._init_block(block)
        return block


# --- ResNet-32 for CIFAR (He et al. 2016, option-A shortcuts) ------------------------------


class _ZeroPadShortcut(nn.Module):
    """Option-A shortcut: subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.extra = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.extra // 2
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, self.extra - pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        changes_shape = stride != 1 or in_planes != planes
        self.shortcut = _ZeroPadShortcut(planes - in_planes) if changes_shape else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal convolutions and linears, unit batch norm (the CIFAR ResNet init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def cifar_resnet(depth: int, widths: tuple[int, int, int] = (16, 32, 64)) -> FeatureExtractor:
    """CIFAR ResNet of ``depth = 6n + 2`` layers: a 3x3 stem and three stages of n blocks."""
    if (depth - 2) % 6:
        raise ConfigError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    layers: list[nn.Module] = [
        nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    in_planes = widths[0]
    for stage, planes in enumerate(widths):
        for i in range(n):
            layers.append(BasicBlock(in_planes, planes, 2 if stage > 0 and i == 0 else 1))
            in_planes = planes
    extractor = FeatureExtractor(nn.Sequential(*layers[:-1]), layers[-1], widths[-1], kaiming_init)
    kaiming_init(extractor)
    return extractor


@BACKBONES.register("resnet32")
def resnet32() -> FeatureExtractor:
    """ResNet-32 for 32x32 images: 16/32/64 channels, 5 blocks per stage, 64-d features."""
    return cifar_resnet(32)


@BACKBONES.register("resnet20")
def resnet20() -> FeatureExtractor:
    return cifar_resnet(20)


@BACKBONES.register("resnet56")
def resnet56() -> FeatureExtractor:
    return cifar_resnet(56)


# --- torchvision ResNets (ImageNet-LT, Places-LT, iNaturalist) ------------------------------


def torchvision_init(module: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming-normal (fan-out) convolutions, unit batch norm."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def pytorch_default_init(module: nn.Module) -> None:
    """Every layer's own ``reset_parameters()``: what a ResNet written without an init loop gets
    (BBN's ResNet-50: Kaiming-uniform with a = sqrt(5) convolutions, unit batch norm)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.BatchNorm2d):
            m.reset_parameters()


INITS = {"torchvision": torchvision_init, "pytorch": pytorch_default_init}

# Built from torchvision's ResNet class: (block, layers, groups, width per group). The PaCo
# authors' ResNeXt-101 32x4d (their models/resnet_imagenet.py) is this torchvision model with
# groups 32 and width 4, which torchvision ships no builder or weights for.
_ARCHITECTURES = {"resnext101_32x4d": (torchvision.models.resnet.Bottleneck, [3, 4, 23, 3], 32, 4)}


def _torchvision_net(arch: str, weights: str | None) -> nn.Module:
    if arch in _ARCHITECTURES:
        if weights is not None:
            raise ConfigError(f"backbone {arch} has no pretrained weights in torchvision; "
                              "leave backbone_options.weights unset (random initialisation)")
        block, layers, groups, width = _ARCHITECTURES[arch]
        return torchvision.models.ResNet(block, layers, groups=groups, width_per_group=width)
    try:
        return getattr(torchvision.models, arch)(weights=weights)
    except (ValueError, KeyError) as error:
        raise ConfigError(f"backbone {arch}: unknown weights {weights!r}; use a name of "
                          f"torchvision.models.get_model_weights({arch!r}), e.g. 'DEFAULT'") from error


TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                       "resnext101_32x4d", "resnext101_32x8d")


@BACKBONES.register_family("", TORCHVISION_RESNETS)
def torchvision_resnet(arch: str, weights: str | None = None, init: str = "torchvision",
                       freeze_trunk_convs: bool = False) -> FeatureExtractor:
    """A torchvision ResNet or ResNeXt without its fc layer; last block = layer4[-1].

    ``weights`` names torchvision pretrained weights (e.g. ``"IMAGENET1K_V1"``, ``"DEFAULT"``),
    downloaded into torchvision's cache on first use; ``None`` is a random initialisation,
    ``init``: ``torchvision`` (its Kaiming-normal fan-out) or ``pytorch`` (each layer's default,
    as BBN's ResNet-50). ``init`` also initialises the copies of the last block that BBN makes.
    ``freeze_trunk_convs`` leaves only the last block's convolutions trainable (batch norm
    stays trainable everywhere), as the PaCo authors fine-tune on Places-LT.
    """
    if init not in INITS:
        raise ConfigError(f"backbone {arch}: unknown init {init!r}; choose one of {', '.join(INITS)}")
    net = _torchvision_net(arch, weights)
    if weights is None and init != "torchvision":  # torchvision's constructor applied its own
        INITS[init](net)
    trunk = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
        net.layer4[:-1],
    )
    if freeze_trunk_convs:
        for m in trunk.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.requires_grad_(False)
    return FeatureExtractor(trunk, net.layer4[-1], net.fc.in_features, INITS[init])
