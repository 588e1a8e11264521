"""The one place that reads torchvision's private AutoAugment internals.

The batched AutoAugment and RandAugment (:mod:`.batch_transforms`) run torchvision's own
operation table and operations on groups of images, so that they cannot drift from the
per-image transforms. torchvision keeps those private: ``_AUGMENTATION_SPACE``, ``_policies``,
``_apply_image_or_video_transform`` and ``_fill`` of ``v2.AutoAugment`` / ``v2.RandAugment``,
unchanged over the releases ``pyproject.toml`` allows (0.29, which CI tests; 0.19 passed by hand).
Should a release move them, building a batched AutoAugment or RandAugment fails here, before
training, with a message naming the version and the fix, instead of an ``AttributeError``
inside a training step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torchvision
from torchvision.transforms import v2

from ..errors import UserError

SUPPORTED = "torchvision>=0.19,<0.30"
_APPLY_PARAMETERS = ["image", "transform_id", "magnitude", "interpolation", "fill"]


class UnsupportedTorchvision(UserError, RuntimeError):
    """The installed torchvision lacks the internals the batched AutoAugment family uses."""


def _check(transform: v2.AutoAugment | v2.RandAugment, needed: tuple[str, ...]) -> None:
    kind = type(transform).__name__
    missing = [name for name in needed if not hasattr(transform, name)]
    if not missing and list(inspect.signature(transform._apply_image_or_video_transform).parameters) \
            != _APPLY_PARAMETERS:
        missing = [f"_apply_image_or_video_transform({', '.join(_APPLY_PARAMETERS)})"]
    if missing:
        raise UnsupportedTorchvision(
            f"torchvision {torchvision.__version__}: v2.{kind} has no {', '.join(missing)}, which "
            f"longtail's batched {kind} needs; install a supported version (pip install "
            f"'{SUPPORTED}'), or use a per-image pipeline (data in DataLoader workers)")


class TorchvisionOperations:
    """The operation table and operations of a ``v2.AutoAugment`` or ``v2.RandAugment``."""

    def __init__(self, transform: v2.AutoAugment | v2.RandAugment) -> None:
        needed = ("_AUGMENTATION_SPACE", "_apply_image_or_video_transform", "_fill", "interpolation")
        _check(transform, needed + (("_policies",) if isinstance(transform, v2.AutoAugment) else ()))
        self._transform = transform
        self._space: dict[str, tuple[Callable, bool]] = transform._AUGMENTATION_SPACE

    def names(self) -> list[str]:
        """The operations' names, in torchvision's order."""
        return list(self._space)

    def policies(self) -> list[tuple[tuple[str, float, int | None], ...]]:
        """AutoAugment's sub-policies: per sub-policy, ``(name, probability, magnitude bin)`` pairs."""
        return self._transform._policies

    def signed(self, name: str) -> bool:
        """Whether the operation draws a random sign for its magnitude."""
        return self._space[name][1]

    def magnitude(self, name: str, bins: int, magnitude_bin: int | None, height: int, width: int) -> float:
        """The magnitude of bin ``magnitude_bin`` of ``bins`` (0 for operations without one)."""
        values = self._space[name][0](bins, height, width)
        return 0.0 if values is None else float(values[magnitude_bin])

    def apply(self, images: torch.Tensor, name: str, magnitude: float) -> torch.Tensor:
        """One operation on a batch, with the transform's interpolation and fill."""
        transform = self._transform
        return transform._apply_image_or_video_transform(
            images, name, magnitude, interpolation=transform.interpolation, fill=transform._fill)
