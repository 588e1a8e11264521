"""Batched augmentation: per-image random parameters, applied to a whole batch at once.

Per-image PIL pipelines cost 70-600 µs an image in worker processes that compete with the model
for the CPU. The steps here run in the training process on a batch tensor ``(B, C, H, W)``,
uint8 or float in [0, 1]. Each step draws the parameters of every image from one generator (so
a stream replays exactly from its seed) and applies them vectorised; where torchvision only has
a one-parameter-per-call function (AutoAugment's operations), the images that share parameters
go through it together. The distributions are those of the torchvision transforms named in each
docstring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .torchvision_internals import TorchvisionOperations

Step = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.empty(n).uniform_(low, high, generator=generator)


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255) if images.dtype == torch.uint8 else images


def _float_copy(images: torch.Tensor) -> torch.Tensor:
    """A float copy in [0, 1] that a step may write in place (one copy, not two, from uint8)."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images.clone()


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


class Normalize:
    """Batch (uint8 or float in [0, 1]) -> normalised float, channel by channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        scale = 1.0 / (255.0 * self.std) if images.dtype == torch.uint8 else 1.0 / self.std
        return images.float() * scale - self.mean / self.std


class BatchPipeline:
    """uint8 ``(B, H, W, C)`` images -> normalised float ``(B, C, H, W)`` through batched steps.

    The result keeps the input's channels-last memory layout (no copy to NCHW order).
    """

    def __init__(self, steps: Sequence[Step], mean: Sequence[float], std: Sequence[float]) -> None:
        self.steps = list(steps)
        self.normalize = Normalize(mean, std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        images = images.permute(0, 3, 1, 2)
        for step in self.steps:
            images = step(images, generator)
        return self.normalize(images)


class RandomCropFlip:
    """``RandomCrop(size, padding)`` with zero padding, then ``RandomHorizontalFlip()``.

    One gather does both: every output pixel reads its source row and column, and a flip just
    reverses the columns read.
    """

    def __init__(self, padding: int, flip: bool = True) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = images.shape
        p = self.padding
        padded = F.pad(images, (p, p, p, p))
        top = torch.randint(0, 2 * p + 1, (b, 1), generator=generator)
        left = torch.randint(0, 2 * p + 1, (b, 1), generator=generator)
        rows = top + torch.arange(h)
        columns = torch.arange(w).expand(b, w)
        if self.flip:
            flipped = torch.rand(b, 1, generator=generator) < 0.5
            columns = torch.where(flipped, columns.flip(1), columns)
        columns = left + columns
        # Advanced indices around a slice put the indexed dims first: (B, H, W, C).
        crops = padded[torch.arange(b)[:, None, None], :, rows[:, :, None], columns[:, None, :]]
        return crops.permute(0, 3, 1, 2)


class RandomResizedCrop:
    """``RandomResizedCrop(size, scale, ratio)`` (then ``RandomHorizontalFlip()`` if ``flip``):
    torchvision's box sampling (10 tries, then a centre crop) and its bilinear resampling with
    anti-aliasing, written as two matrix products per image, ``rows @ image @ columns^T``.
    """

    def __init__(self, size: int, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = False, tries: int = 10) -> None:
        self.size, self.scale, self.ratio, self.flip, self.tries = size, scale, ratio, flip, tries

    def boxes(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n, 4)`` integer boxes ``(left, top, right, bottom)``, one per image."""
        area = torch.empty(n, self.tries).uniform_(*self.scale, generator=generator) * (height * width)
        log_ratio = torch.empty(n, self.tries).uniform_(
            math.log(self.ratio[0]), math.log(self.ratio[1]), generator=generator)
        aspect = log_ratio.exp()
        w = (area * aspect).sqrt().round()
        h = (area / aspect).sqrt().round()
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = fits.int().argmax(1, keepdim=True)  # the first try that fits
        w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
        top = (torch.rand(n, generator=generator) * (height - h + 1)).floor()
        left = (torch.rand(n, generator=generator) * (width - w + 1)).floor()
        # No try fits: a centre crop with the aspect ratio clamped into range.
        fallback_w, fallback_h = width, height
        if width / height < self.ratio[0]:
            fallback_h = round(width / self.ratio[0])
        elif width / height > self.ratio[1]:
            fallback_w = round(height * self.ratio[1])
        missed = ~fits.any(1)
        w, h = w.masked_fill(missed, fallback_w), h.masked_fill(missed, fallback_h)
        top = top.masked_fill(missed, (height - fallback_h) // 2)
        left = left.masked_fill(missed, (width - fallback_w) // 2)
        return torch.stack([left, top, left + w, top + h], 1)

    def resampling(self, start: torch.Tensor, length: torch.Tensor, pixels: int) -> torch.Tensor:
        """``(n, size, pixels)`` weights of the resize of span ``[start, start + length)`` of
        each image to ``size``: a triangle filter widened by the downscale factor (torchvision's
        antialiased bilinear; plain bilinear with edge clamping when upscaling)."""
        factor = (length / self.size)[:, None, None]
        centre = start[:, None, None] + (torch.arange(self.size)[:, None] + 0.5) * factor
        pixel = torch.arange(pixels)
        offset = (pixel + 0.5 - centre) / factor.clamp_min(1)
        inside = (pixel >= start[:, None, None]) & (pixel < (start + length)[:, None, None])
        weights = (1 - offset.abs()).clamp_min_(0) * inside
        return weights / weights.sum(2, keepdim=True)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, _, height, width = images.shape
        left, top, right, bottom = self.boxes(n, height, width, generator).unbind(1)
        rows = self.resampling(top, bottom - top, height)
        columns = self.resampling(left, right - left, width)
        if self.flip:
            flipped = torch.rand(n, generator=generator) < 0.5
            columns = torch.where(_per_image(flipped)[:, 0], columns.flip(1), columns)
        return rows[:, None] @ _as_float(images) @ columns[:, None].transpose(-1, -2)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    return TF.rgb_to_grayscale(images, num_output_channels=1)


def _blend(images: torch.Tensor, other: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    ratio = _per_image(factors)
    return (images * ratio + other * (1 - ratio)).clamp_(0, 1)


def adjust_brightness(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(images, torch.zeros_like(images), factors)


def adjust_contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(images, _grayscale(images).mean((1, 2, 3), keepdim=True), factors)


def adjust_saturation(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return _blend(images, _grayscale(images), factors)


def adjust_hue(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of image i by ``shifts[i]`` turns, through HSV as torchvision does."""
    value, brightest = images.max(1, keepdim=True)  # ties go to the first channel, as there
    chroma = value - images.amin(1, keepdim=True)
    r, g, b = images.unbind(1)
    # Hue in sixths: (g - b) / chroma off red, 2 + (b - r) / chroma off green, 4 + ... off blue.
    differences = torch.stack([g - b, b - r, r - g], 1).gather(1, brightest)
    hue = differences.div_(chroma).add_(2 * brightest).masked_fill_(chroma == 0, 0)
    hue += _per_image(6 * shifts)
    # Back to RGB: channel n is v - v s max(0, min(k, 4 - k, 1)), k = (n + 6 h) mod 6, and
    # v s is the chroma.
    k = (torch.tensor([5.0, 3.0, 1.0]).view(1, 3, 1, 1) + hue).remainder_(6)
    ramp = torch.minimum(k, 4 - k).clamp_(0, 1)
    return value - chroma * ramp


class ColorJitter:
    """``RandomApply([ColorJitter(brightness, contrast, saturation, hue)], p)``: each image draws
    its four factors and its own order of the four adjustments."""

    def __init__(self, brightness: float, contrast: float, saturation: float, hue: float,
                 p: float = 1.0) -> None:
        self.ranges = [(1 - brightness, 1 + brightness), (1 - contrast, 1 + contrast),
                       (1 - saturation, 1 + saturation), (-hue, hue)]
        self.adjustments = [adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue]
        self.p = p

    def sample(self, n: int, generator: torch.Generator | None = None):
        """Whether each image is jittered, its ``(n, 4)`` factors and ``(n, 4)`` order."""
        applied = torch.rand(n, generator=generator) < self.p
        factors = torch.stack([_uniform(n, *r, generator) for r in self.ranges], 1)
        order = torch.rand(n, 4, generator=generator).argsort(1)
        return applied, factors, order

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        applied, factors, order = self.sample(len(images), generator)
        images = _float_copy(images)
        for position in range(4):
            for op, adjust in enumerate(self.adjustments):
                chosen = (applied & (order[:, position] == op)).nonzero().squeeze(1)
                if len(chosen):
                    images[chosen] = adjust(images[chosen], factors[chosen, op])
        return images


class RandomGrayscale:
    """``RandomGrayscale(p)``: the luma, repeated over the three channels."""

    def __init__(self, p: float = 0.1) -> None:
        self.p = p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        chosen = (torch.rand(len(images), generator=generator) < self.p).nonzero().squeeze(1)
        images = _float_copy(images)
        images[chosen] = _grayscale(images[chosen]).expand(-1, 3, -1, -1)
        return images


class GaussianBlur:
    """``RandomApply([GaussianBlur(kernel, sigma)], p)`` with sigma uniform per image; the kernel
    spans +-3 of the largest sigma, with reflected borders as in torchvision."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5) -> None:
        self.sigma, self.p = sigma, p
        self.radius = math.ceil(3 * sigma[1])

    def kernels(self, sigmas: torch.Tensor) -> torch.Tensor:
        """``(n, 2 r + 1)`` normalised 1-d Gaussians."""
        x = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        weights = torch.exp(-0.5 * (x / sigmas[:, None]) ** 2)
        return weights / weights.sum(1, keepdim=True)

    def matrices(self, kernels: torch.Tensor, size: int) -> torch.Tensor:
        """``(n, size, size)``: row ``a`` holds the kernel's weights on the pixels that output
        pixel ``a`` reads, borders reflected (pixel -1 is pixel 1)."""
        taps = kernels.shape[1]
        source = torch.arange(size)[:, None] + torch.arange(taps) - self.radius
        source = source.abs()
        source = torch.where(source > size - 1, 2 * (size - 1) - source, source)
        matrices = torch.zeros(len(kernels), size, size)
        return matrices.scatter_add_(2, source.expand(len(kernels), size, taps),
                                     kernels[:, None, :].expand(len(kernels), size, taps))

    def blur(self, images: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
        """Image i blurred with sigma ``sigmas[i]``: the separable filter as two matrix products
        (far faster than a grouped convolution on small images)."""
        _, _, h, w = images.shape
        kernels = self.kernels(sigmas)
        vertical, horizontal = self.matrices(kernels, h)[:, None], self.matrices(kernels, w)[:, None]
        return vertical @ images @ horizontal.transpose(-1, -2)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n = len(images)
        applied = torch.rand(n, generator=generator) < self.p
        sigmas = _uniform(n, *self.sigma, generator)
        images = _float_copy(images)
        chosen = applied.nonzero().squeeze(1)
        if len(chosen):
            images[chosen] = self.blur(images[chosen], sigmas[chosen])
        return images


class Cutout:
    """Zero one ``length`` x ``length`` square (clipped at the border) at a uniform centre, per
    image (DeVries and Taylor 2017; no torchvision transform does this)."""

    def __init__(self, length: int = 16) -> None:
        self.length = length

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = images.shape
        half = self.length // 2
        y = torch.randint(h, (b, 1), generator=generator)
        x = torch.randint(w, (b, 1), generator=generator)
        rows = (torch.arange(h) >= y - half) & (torch.arange(h) < y + half)
        columns = (torch.arange(w) >= x - half) & (torch.arange(w) < x + half)
        return images.masked_fill(rows[:, None, :, None] & columns[:, None, None, :], 0)


class _GroupedOperations:
    """Augmentations made of stages of torchvision's AutoAugment-family operations: every image
    draws, per stage, an operation (or none) and a sign for signed magnitudes; the images that
    drew the same operation and sign go through torchvision's operation together.

    The operation tables and the operations are those of a torchvision transform, read through
    :class:`.TorchvisionOperations` (``reference``), so the per-image and batched paths cannot
    drift apart; the tests pin them against torchvision image by image.
    """

    reference: TorchvisionOperations
    bins: int  # magnitude bins of the operation table
    operations: list[list[tuple[str, int | None]]]  # per stage: (name, magnitude bin) pairs

    def draw(self, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n, stages)`` indices into each stage's ``operations`` (-1: none) and signs."""
        raise NotImplementedError

    def operation(self, images: torch.Tensor, name: str, magnitude_bin: int | None,
                  negated: bool) -> torch.Tensor:
        """One operation on a batch, through torchvision."""
        magnitude = self.reference.magnitude(name, self.bins, magnitude_bin, *images.shape[-2:])
        if self.reference.signed(name) and negated:
            magnitude = -magnitude
        return self.reference.apply(images, name, magnitude)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        drawn, negated = self.draw(len(images), generator)
        images = images.clone(memory_format=torch.contiguous_format)
        for stage, operations in enumerate(self.operations):
            for index, (name, magnitude_bin) in enumerate(operations):
                signed = self.reference.signed(name)
                for sign in (False, True) if signed else (False,):
                    chosen = drawn[:, stage] == index
                    if signed:
                        chosen &= negated[:, stage] == sign
                    chosen = chosen.nonzero().squeeze(1)
                    if len(chosen):
                        images[chosen] = self.operation(images[chosen], name, magnitude_bin, sign)
        return images


class AutoAugment(_GroupedOperations):
    """torchvision's ``AutoAugment(policy)``: each image draws a sub-policy, whether each of its
    two operations applies, and signs. Sub-policies share operations, so a stage has fewer
    groups than sub-policies."""

    bins = 10

    def __init__(self, policy: str = "cifar10") -> None:
        self.reference = TorchvisionOperations(v2.AutoAugment(v2.AutoAugmentPolicy(policy)))
        self.policies = self.reference.policies()
        self.operations = [sorted({sub[stage][::2] for sub in self.policies}, key=str) for stage in range(2)]
        self.operation_of = [torch.tensor([ops.index(sub[stage][::2]) for sub in self.policies])
                             for stage, ops in enumerate(self.operations)]

    def sample(self, n: int, generator: torch.Generator | None = None):
        """Each image's sub-policy ``(n,)``, and per operation ``(n, 2)``: applied, negated."""
        policy = torch.randint(len(self.policies), (n,), generator=generator)
        probability = torch.tensor([[op[1] for op in sub] for sub in self.policies])[policy]
        applied = torch.rand(n, 2, generator=generator) <= probability
        negated = torch.rand(n, 2, generator=generator) <= 0.5
        return policy, applied, negated

    def draw(self, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        policy, applied, negated = self.sample(n, generator)
        drawn = torch.stack([of[policy] for of in self.operation_of], 1)
        return drawn.masked_fill(~applied, -1), negated


class RandAugment(_GroupedOperations):
    """torchvision's ``RandAugment(num_ops, magnitude)``: each image draws ``num_ops``
    operations uniformly (with replacement) and signs; the magnitude is fixed."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, bins: int = 31) -> None:
        self.reference = TorchvisionOperations(
            v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=bins))
        self.bins = bins
        self.operations = [[(name, magnitude) for name in self.reference.names()]] * num_ops

    def draw(self, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        stages = len(self.operations)
        drawn = torch.randint(len(self.operations[0]), (n, stages), generator=generator)
        return drawn, torch.rand(n, stages, generator=generator) <= 0.5
