"""Named augmentation pipelines.

Each :class:`Pipeline` has a per-image form (torchvision transforms on a PIL image, run in
DataLoader workers) and, where one exists, a batched form on uint8 tensors that runs in the
training process. The standard CIFAR augmentation (random crop with zero padding + horizontal
flip) has the batched form: it costs ~20 µs an image instead of ~70 µs of PIL work, and needs
no worker processes competing with the model for the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image, ImageFilter
from torchvision.transforms import v2

from ..registry import Registry

TRANSFORMS = Registry("transform")

PerImage = Callable[[object], torch.Tensor]
Batched = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class Pipeline:
    """``per_image(PIL) -> (C, H, W)`` float; ``batched(uint8 (B, H, W, C), gen) -> (B, C, H, W)``."""

    per_image: PerImage
    batched: Batched | None = None


class Normalize:
    """uint8 NHWC batch -> normalised float NCHW (channels_last memory, no copy of layout)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.scale = 1.0 / (255.0 * torch.tensor(std))
        self.shift = -torch.tensor(mean) / torch.tensor(std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return (images.float() * self.scale + self.shift).permute(0, 3, 1, 2)


class BatchRandomCropFlip:
    """Random crop after zero padding, and a horizontal flip with p 0.5, for a whole batch.

    One gather does both: every output pixel reads its source row and column, and a flip
    just reverses the columns read.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], padding: int, flip: bool = True):
        self.padding = padding
        self.flip = flip
        self.normalize = Normalize(mean, std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, h, w, _ = images.shape
        p = self.padding
        padded = torch.nn.functional.pad(images, (0, 0, p, p, p, p))
        top = torch.randint(0, 2 * p + 1, (b, 1), generator=generator)
        left = torch.randint(0, 2 * p + 1, (b, 1), generator=generator)
        rows = top + torch.arange(h)
        columns = torch.arange(w).expand(b, w)
        if self.flip:
            flipped = torch.rand(b, 1, generator=generator) < 0.5
            columns = torch.where(flipped, columns.flip(1), columns)
        columns = left + columns
        crops = padded[torch.arange(b)[:, None, None], rows[:, :, None], columns[:, None, :]]
        return self.normalize(crops)


class Cutout:
    """Zero one ``length`` x ``length`` square (clipped at the border) at a uniform centre."""

    def __init__(self, length: int = 16) -> None:
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _, h, w = image.shape
        y, x = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half = self.length // 2
        image = image.clone()
        image[:, max(0, y - half) : min(h, y + half), max(0, x - half) : min(w, x + half)] = 0
        return image


class GaussianBlur:
    """PIL's Gaussian blur with sigma (in pixels) uniform in ``sigma``, as the MoCo v2 and PaCo
    code blur; ~20x cheaper per image than torchvision's convolution on a tensor."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.sigma = sigma

    def __call__(self, image: Image.Image) -> Image.Image:
        radius = float(torch.empty(()).uniform_(*self.sigma))
        return image.filter(ImageFilter.GaussianBlur(radius=radius))


def _finish(mean, std) -> list:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


@TRANSFORMS.register("crop_flip")
def crop_flip(mean, std, image_size: int, padding: int | None = None, flip: bool = True) -> Pipeline:
    """The standard CIFAR augmentation: random crop (zero padding, default size/8) + flip."""
    padding = image_size // 8 if padding is None else padding
    steps = [v2.RandomCrop(image_size, padding=padding)]
    steps += [v2.RandomHorizontalFlip()] if flip else []
    return Pipeline(v2.Compose(steps + _finish(mean, std)), BatchRandomCropFlip(mean, std, padding, flip))


@TRANSFORMS.register("none")
def no_augmentation(mean, std) -> Pipeline:
    """Only normalisation (CIFAR-sized test images)."""
    return Pipeline(v2.Compose(_finish(mean, std)), Normalize(mean, std))


@TRANSFORMS.register("autoaugment_cutout")
def autoaugment_cutout(mean, std, image_size: int, cutout: int = 16) -> Pipeline:
    """Crop + flip + AutoAugment (CIFAR-10 policy) + Cutout, PaCo's CIFAR query view."""
    return Pipeline(v2.Compose([
        v2.RandomCrop(image_size, padding=image_size // 8),
        v2.RandomHorizontalFlip(),
        v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10),
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        Cutout(cutout),
        v2.Normalize(mean, std),
    ]))


@TRANSFORMS.register("simaugment")
def simaugment(mean, std, image_size: int, min_scale: float = 0.2, blur: bool = True) -> Pipeline:
    """SimCLR-style: resized crop, flip, colour jitter (p 0.8), grayscale (p 0.2), blur (p 0.5)."""
    steps = [
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if blur:
        steps.append(v2.RandomApply([GaussianBlur((0.1, 2.0))], p=0.5))
    return Pipeline(v2.Compose(steps + _finish(mean, std)))


@TRANSFORMS.register("randaugment")
def randaugment(mean, std, image_size: int, num_ops: int = 2, magnitude: int = 10,
                min_scale: float = 0.08) -> Pipeline:
    """Resized crop + flip + RandAugment (PaCo's ImageNet query view, strategy 3)."""
    return Pipeline(v2.Compose([
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandAugment(num_ops=num_ops, magnitude=magnitude),
        *_finish(mean, std),
    ]))


@TRANSFORMS.register("resized_crop_flip")
def resized_crop_flip(mean, std, image_size: int, min_scale: float = 0.08) -> Pipeline:
    """The standard ImageNet augmentation: random resized crop + flip."""
    return Pipeline(v2.Compose([
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        *_finish(mean, std),
    ]))


@TRANSFORMS.register("resize_center_crop")
def resize_center_crop(mean, std, image_size: int, resize: int | None = None) -> Pipeline:
    """Test-time for large images: resize the short side (default size * 8/7), centre crop."""
    return Pipeline(v2.Compose([
        v2.Resize(resize or round(image_size * 8 / 7), antialias=True),
        v2.CenterCrop(image_size),
        *_finish(mean, std),
    ]))
