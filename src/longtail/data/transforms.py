"""Named augmentation pipelines.

Each :class:`Pipeline` has a per-image form (torchvision v2 transforms on one decoded image, run
in DataLoader workers) and, where one exists, a batched form on uint8 tensors that runs in the
training process (:mod:`.batch_transforms`). The per-image forms take a uint8 ``(3, H, W)``
tensor (what :meth:`~.sources.ImageSet.load` gives) or a PIL image: crops and flips run on
tensors (faster than PIL's, ``benchmarks/decode.py``), and the pipelines whose later steps are
PIL operations (colour, blur, timm's RandAugment) turn the crop into a PIL image first. The
CIFAR pipelines have batched forms: the crop + flip costs ~20 µs an image instead of ~70 µs of
PIL work, and no worker processes compete with the model for the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from PIL import Image, ImageFilter
from torchvision.transforms import v2

from ..registry import ConfigError, Registry
from . import batch_transforms as batch
from .paco_autoaugment import PaCoAutoAugment, PILPaCoAutoAugment
from .sources import IMAGENET_MEAN

TRANSFORMS = Registry("transform")

PerImage = Callable[[object], torch.Tensor]
Batched = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class Pipeline:
    """``per_image(uint8 (3, H, W) tensor or PIL) -> (C, H, W)`` float;
    ``batched(uint8 (B, H, W, C), gen) -> (B, C, H, W)``."""

    per_image: PerImage
    batched: Batched | None = None


class PILGaussianBlur:
    """PIL's Gaussian blur with sigma (in pixels) uniform in ``sigma``, as the MoCo v2 and PaCo
    code blur; ~20x cheaper per image than torchvision's convolution on a tensor."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        self.sigma = sigma

    def __call__(self, image: Image.Image) -> Image.Image:
        radius = float(torch.empty(()).uniform_(*self.sigma))
        return image.filter(ImageFilter.GaussianBlur(radius=radius))


class OneImage:
    """A batched step on one ``(C, H, W)`` image, drawing from the global RNG (worker-seeded)."""

    def __init__(self, step: batch.Step) -> None:
        self.step = step

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.step(image[None], None)[0]


class FitSize:
    """Resize (short side) and centre-crop an image to ``size`` x ``size`` unless it is that
    already: the CIFAR-style pipelines expect one image size, which image files need not have."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.fit = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])

    def __call__(self, image: Image.Image | torch.Tensor) -> Image.Image | torch.Tensor:
        return image if v2.functional.get_size(image) == [self.size, self.size] else self.fit(image)


def _finish(mean, std) -> list:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


@TRANSFORMS.register("crop_flip")
def crop_flip(mean, std, image_size: int, padding: int | None = None, flip: bool = True) -> Pipeline:
    """The standard CIFAR augmentation: random crop (zero padding, default size/8) + flip."""
    padding = image_size // 8 if padding is None else padding
    steps = [FitSize(image_size), v2.RandomCrop(image_size, padding=padding)]
    steps += [v2.RandomHorizontalFlip()] if flip else []
    return Pipeline(v2.Compose(steps + _finish(mean, std)),
                    batch.BatchPipeline([batch.RandomCropFlip(padding, flip)], mean, std))


@TRANSFORMS.register("none")
def no_augmentation(mean, std, image_size: int) -> Pipeline:
    """Only normalisation (image files of another size are first fitted to ``image_size``)."""
    return Pipeline(v2.Compose([FitSize(image_size), *_finish(mean, std)]),
                    batch.BatchPipeline([], mean, std))


AutoAugmentPolicy = Literal["torchvision", "paco"]


@TRANSFORMS.register("autoaugment_cutout")
def autoaugment_cutout(mean, std, image_size: int, cutout: int = 16,
                       policy: AutoAugmentPolicy = "torchvision") -> Pipeline:
    """Crop + flip + AutoAugment (CIFAR-10 policy) + Cutout, PaCo's CIFAR query view.

    ``policy``: ``paco`` is the PaCo authors' own CIFAR policy (:mod:`.paco_autoaugment`: grey
    fill, rotation without a sign, bicubic shear, fractional translation, solarize on a 256
    scale); ``torchvision`` is torchvision's CIFAR-10 policy (black fill), the default so that
    configs recorded before the authors' policy existed rebuild what they ran.
    """
    if policy not in get_args(AutoAugmentPolicy):
        raise ConfigError(f"autoaugment_cutout: unknown policy {policy!r}; choose one of: "
                          f"{', '.join(get_args(AutoAugmentPolicy))}")
    if policy == "paco":
        per_image, batched = PILPaCoAutoAugment(), PaCoAutoAugment()
    else:
        per_image, batched = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10), batch.AutoAugment("cifar10")
    return Pipeline(v2.Compose([
        FitSize(image_size),
        v2.RandomCrop(image_size, padding=image_size // 8),
        v2.RandomHorizontalFlip(),
        v2.ToPILImage(),  # both policies' per-image forms are PIL operations
        per_image,
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        OneImage(batch.Cutout(cutout)),
        v2.Normalize(mean, std),
    ]), batch.BatchPipeline([batch.RandomCropFlip(image_size // 8), batched, batch.Cutout(cutout)], mean, std))


@TRANSFORMS.register("simaugment")
def simaugment(mean, std, image_size: int, min_scale: float = 0.2, blur: bool = True,
               jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1), jitter_p: float = 0.8) -> Pipeline:
    """SimCLR-style: resized crop, flip, colour jitter (brightness, contrast, saturation, hue)
    with probability ``jitter_p``, grayscale (p 0.2), blur (p 0.5). MoCo v2's jitter is the
    default; PaCo's large-scale key view is ``jitter: [0.4, 0.4, 0.4, 0.0], jitter_p: 1.0``."""
    steps = [
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToPILImage(),  # PIL's colour operations and blur are the fast ones
        v2.RandomApply([v2.ColorJitter(*jitter)], p=jitter_p),
        v2.RandomGrayscale(p=0.2),
    ]
    batched = [
        batch.RandomResizedCrop(image_size, scale=(min_scale, 1.0), flip=True),
        batch.ColorJitter(*jitter, p=jitter_p),
        batch.RandomGrayscale(p=0.2),
    ]
    if blur:
        steps.append(v2.RandomApply([PILGaussianBlur((0.1, 2.0))], p=0.5))
        batched.append(batch.GaussianBlur((0.1, 2.0), p=0.5))
    return Pipeline(v2.Compose(steps + _finish(mean, std)), batch.BatchPipeline(batched, mean, std))


@TRANSFORMS.register("randaugment")
def randaugment(mean, std, image_size: int, num_ops: int = 2, magnitude: int = 10,
                min_scale: float = 0.08) -> Pipeline:
    """Resized crop + flip + RandAugment (PaCo's ImageNet query view, strategy 3)."""
    return Pipeline(v2.Compose([
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToPILImage(),  # RandAugment on the PIL image, as it ran before images came as tensors
        v2.RandAugment(num_ops=num_ops, magnitude=magnitude),
        *_finish(mean, std),
    ]), batch.BatchPipeline([batch.RandomResizedCrop(image_size, (min_scale, 1.0), flip=True),
                             batch.RandAugment(num_ops, magnitude)], mean, std))


@TRANSFORMS.register("timm_randaugment")
def timm_randaugment(mean, std, image_size: int, policy: str = "rand-n2-m10-mstd0.5",
                     jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.0), min_scale: float = 0.08,
                     grayscale_blur: bool = False) -> Pipeline:
    """PaCo's large-scale query view, as the authors' ``randcls`` augmentation: resized crop,
    flip, colour jitter (always applied), then timm's RandAugment ``policy`` (by default two
    of its 15 operations, SolarizeAdd among them, each applied with p 0.5 at a magnitude drawn
    around 10 with std 0.5). timm's operations fill with the ImageNet mean and translate by up
    to 45% of the image, with the authors' hyper-parameters. ``grayscale_blur`` adds grayscale
    (p 0.2) and blur (p 0.5) before RandAugment (their ``randclsstack``). Per image only."""
    from timm.data.auto_augment import rand_augment_transform

    fill = tuple(min(255, round(255 * m)) for m in IMAGENET_MEAN)  # the authors' img_mean, any dataset
    hparams = {"translate_const": int(image_size * 0.45), "img_mean": fill}
    stack = [v2.RandomGrayscale(p=0.2), v2.RandomApply([PILGaussianBlur((0.1, 2.0))], p=0.5)]
    return Pipeline(v2.Compose([
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToPILImage(),  # timm's operations work on PIL images
        v2.ColorJitter(*jitter),
        *(stack if grayscale_blur else []),
        rand_augment_transform(policy, hparams),
        *_finish(mean, std),
    ]))


@TRANSFORMS.register("resized_crop_flip")
def resized_crop_flip(mean, std, image_size: int, min_scale: float = 0.08) -> Pipeline:
    """The standard ImageNet augmentation: random resized crop + flip."""
    return Pipeline(v2.Compose([
        v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        *_finish(mean, std),
    ]), batch.BatchPipeline([batch.RandomResizedCrop(image_size, (min_scale, 1.0), flip=True)], mean, std))


@TRANSFORMS.register("resize_center_crop")
def resize_center_crop(mean, std, image_size: int, resize: int | None = None) -> Pipeline:
    """Test-time for large images: resize the short side (default size * 8/7), centre crop."""
    return Pipeline(v2.Compose([
        v2.Resize(resize or round(image_size * 8 / 7), antialias=True),
        v2.CenterCrop(image_size),
        *_finish(mean, std),
    ]))
