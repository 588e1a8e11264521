"""The PaCo authors' CIFAR AutoAugment policy (``CIFAR10Policy`` in ``PaCo/LT/autoaug.py``, copied
from DeepVoltaire/AutoAugment), in a per-image form (PIL, for DataLoader workers) and a batched
form (uint8 tensors, per-image parameters from the stream's generator).

It has the 25 sub-policies, probabilities and magnitude bins of torchvision's CIFAR-10 policy,
but its operations differ from torchvision's:

- geometric operations fill grey (128, 128, 128), not black;
- rotation turns by +angle only (torchvision draws a sign);
- shear resamples bicubically (PIL's cubic convolution, a = -1; torchvision: nearest);
- translation moves by ``m * 150/331 * size`` pixels with PIL's nearest-neighbour sampling of
  the fractional offset (torchvision truncates the offset to whole pixels first);
- solarize inverts pixels at or above thresholds spaced on 256..0 (torchvision: 255..0).

Colour, contrast, brightness and sharpness (factor ``1 +- m``, PIL's ``ImageEnhance``),
posterize (bits 8..4), autocontrast, equalize and invert are the same as torchvision's. Each image
draws a sub-policy, whether each of its two operations applies (``rand < p``, as the authors
write) and a sign for the operations the authors give one (``SIGNED``).

The batched operations reproduce PIL's arithmetic (its fixed-point nearest-neighbour affine
map, its bicubic taps and edge clamping, its blend in float32, its integer luma), so the two
forms agree image by image; the tests pin each operation against PIL.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms.v2 import functional as TF

GREY = 128
GREY_RGB = (GREY, GREY, GREY)

# The authors' table: per sub-policy, two (operation, probability, magnitude bin).
SUB_POLICIES = (
    (("invert", 0.1, 7), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translateX", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shearY", 0.5, 8), ("translateY", 0.7, 9)),
    (("autocontrast", 0.5, 8), ("equalize", 0.9, 2)),
    (("shearY", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 5), ("equalize", 0.5, 1)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translateX", 0.5, 8)),
    (("equalize", 0.3, 7), ("autocontrast", 0.4, 8)),
    (("translateY", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 3)),
    (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
    (("equalize", 0.2, 8), ("equalize", 0.6, 4)),
    (("color", 0.9, 9), ("equalize", 0.6, 6)),
    (("autocontrast", 0.8, 4), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, 3)),
    (("translateY", 0.9, 9), ("translateY", 0.7, 9)),
    (("autocontrast", 0.9, 2), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 8), ("invert", 0.1, 3)),
    (("translateY", 0.7, 9), ("autocontrast", 0.9, 1)),
)

# The authors' magnitude per bin (NumPy's linspace, as theirs, so the values match to the bit);
# translation is a fraction of the image size, enhancement factors are 1 + sign * magnitude.
_ENHANCE = np.linspace(0.0, 0.9, 10)
MAGNITUDES = {
    "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10),
    "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10),
    "color": _ENHANCE, "contrast": _ENHANCE, "sharpness": _ENHANCE, "brightness": _ENHANCE,
    "posterize": np.round(np.linspace(8, 4, 10), 0),
    "solarize": np.linspace(256, 0, 10),
    "autocontrast": np.zeros(10), "equalize": np.zeros(10), "invert": np.zeros(10),
}
SIGNED = frozenset({"shearY", "translateX", "translateY", "color", "contrast", "sharpness", "brightness"})
OPERATIONS = sorted(MAGNITUDES)


def _stage_table(stage: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sub-policy: operation index, unsigned magnitude and probability of one stage."""
    entries = [sub[stage] for sub in SUB_POLICIES]
    return (torch.tensor([OPERATIONS.index(name) for name, _, _ in entries]),
            torch.tensor([float(MAGNITUDES[name][b]) for name, _, b in entries], dtype=torch.float64),
            torch.tensor([p for _, p, _ in entries], dtype=torch.float64))


_TABLES = [_stage_table(stage) for stage in range(2)]
_SIGNED = torch.tensor([name in SIGNED for name in OPERATIONS])


def sample(n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images' draws: operation index ``(n, 2)`` (-1: not applied) and the signed
    magnitude ``(n, 2)`` float64 of each stage."""
    policy = torch.randint(len(SUB_POLICIES), (n,), generator=generator)
    draws = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    signs = torch.randint(2, (n, 2), generator=generator) * 2 - 1
    operations, magnitudes = [], []
    for stage, (operation, magnitude, probability) in enumerate(_TABLES):
        chosen = operation[policy]
        applied = draws[:, stage] < probability[policy]
        operations.append(chosen.masked_fill(~applied, -1))
        magnitudes.append(magnitude[policy] * torch.where(_SIGNED[chosen], signs[:, stage], 1))
    return torch.stack(operations, 1), torch.stack(magnitudes, 1)


# --- per image: the authors' PIL calls (rotation with PIL's own fill, the same pixels as their
# RGBA composite) ---------------------------------------------------------------------------

def _pil_affine(image: Image.Image, matrix: tuple, resample=Image.Resampling.NEAREST) -> Image.Image:
    return image.transform(image.size, Image.Transform.AFFINE, matrix, resample, fillcolor=GREY_RGB)


PIL_OPERATIONS: dict[str, Callable[[Image.Image, float], Image.Image]] = {
    "shearY": lambda im, m: _pil_affine(im, (1, 0, 0, m, 1, 0), Image.Resampling.BICUBIC),
    "translateX": lambda im, m: _pil_affine(im, (1, 0, m * im.size[0], 0, 1, 0)),
    "translateY": lambda im, m: _pil_affine(im, (1, 0, 0, 0, 1, m * im.size[1])),
    "rotate": lambda im, m: im.rotate(m, fillcolor=GREY_RGB),
    "color": lambda im, m: ImageEnhance.Color(im).enhance(1 + m),
    "contrast": lambda im, m: ImageEnhance.Contrast(im).enhance(1 + m),
    "sharpness": lambda im, m: ImageEnhance.Sharpness(im).enhance(1 + m),
    "brightness": lambda im, m: ImageEnhance.Brightness(im).enhance(1 + m),
    "posterize": lambda im, m: ImageOps.posterize(im, int(m)),
    "solarize": lambda im, m: ImageOps.solarize(im, m),
    "autocontrast": lambda im, m: ImageOps.autocontrast(im),
    "equalize": lambda im, m: ImageOps.equalize(im),
    "invert": lambda im, m: ImageOps.invert(im),
}


class PILPaCoAutoAugment:
    """The policy on one PIL image, drawing from the global RNG (worker-seeded)."""

    def __call__(self, image: Image.Image) -> Image.Image:
        operations, magnitudes = sample(1)
        return self.apply(image, operations[0].tolist(), magnitudes[0].tolist())

    @staticmethod
    def apply(image: Image.Image, operations: list[int], magnitudes: list[float]) -> Image.Image:
        """The drawn operations (indices into ``OPERATIONS``, -1: none) in order."""
        for operation, magnitude in zip(operations, magnitudes):
            if operation >= 0:
                image = PIL_OPERATIONS[OPERATIONS[operation]](image, magnitude)
        return image


# --- batched: uint8 (k, C, H, W) and one magnitude per image -------------------------------

def _gather(images: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``images[i, :, rows[i], columns[i]]`` for in-range indices broadcast to ``(k, H, W)``."""
    k, c, h, w = images.shape
    index = (rows * w + columns).expand(k, h, w).reshape(k, 1, h * w).expand(k, c, -1)
    return images.reshape(k, c, h * w).gather(2, index).view(k, c, h, w)


def _nearest(images: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour sampling at integer source pixels (broadcast to ``(k, H, W)``), grey
    outside the image."""
    h, w = images.shape[-2:]
    inside = (rows >= 0) & (rows < h) & (columns >= 0) & (columns < w)
    out = _gather(images, rows.clamp(0, h - 1), columns.clamp(0, w - 1))
    return out.masked_fill_(~inside.expand(len(images), h, w)[:, None], GREY)


def _grid(images: torch.Tensor, dtype: torch.dtype = torch.long) -> tuple[torch.Tensor, torch.Tensor]:
    """Output pixel rows ``(1, H, 1)`` and columns ``(1, 1, W)``."""
    h, w = images.shape[-2:]
    return torch.arange(h, dtype=dtype).view(1, h, 1), torch.arange(w, dtype=dtype).view(1, 1, w)


def _translate(images: torch.Tensor, fractions: torch.Tensor, axis: int) -> torch.Tensor:
    """PIL's scaling path of ``transform(AFFINE, ...)``: output pixel x reads source pixel
    ``floor(x + 0.5 + offset)``, ``offset = fraction * size`` (a shift by the offset rounded
    half down, where torchvision truncates it)."""
    rows, columns = _grid(images)
    offsets = torch.floor(0.5 + fractions * images.shape[axis]).long().view(-1, 1, 1)
    if axis == -1:
        return _nearest(images, rows, columns + offsets)
    return _nearest(images, rows + offsets, columns)


def _fixed_point_rotation(angle: float, width: int, height: int) -> list[int]:
    """PIL's ``rotate(angle)`` matrix (output -> source, about the centre) in the 16.16
    fixed point of its nearest-neighbour affine path, with the pixel-centre offset folded in."""
    radians = -math.radians(angle % 360.0)
    a, b = round(math.cos(radians), 15), round(math.sin(radians), 15)
    d, e = round(-math.sin(radians), 15), round(math.cos(radians), 15)
    cx, cy = width / 2, height / 2
    c = a * -cx + b * -cy + 0.0 + cx
    f = d * -cx + e * -cy + 0.0 + cy

    def fix(value: float) -> int:
        return math.floor(value * 65536.0 + 0.5)

    return [fix(a), fix(b), fix(c + a * 0.5 + b * 0.5), fix(d), fix(e), fix(f + d * 0.5 + e * 0.5)]


def _rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """PIL's ``rotate(angle, fillcolor=grey)`` (nearest), for angles that are not multiples of
    90 degrees (PIL transposes those; the table's only angle is 6.67)."""
    h, w = images.shape[-2:]
    m = torch.tensor([_fixed_point_rotation(a, w, h) for a in angles.tolist()]).view(-1, 6, 1, 1)
    y, x = _grid(images)
    columns = (m[:, 2] + y * m[:, 1] + x * m[:, 0]) >> 16
    rows = (m[:, 5] + y * m[:, 4] + x * m[:, 3]) >> 16
    return _nearest(images, rows, columns)


def _shear_y(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """PIL's ``transform(AFFINE, (1, 0, 0, m, 1, 0), BICUBIC)``: output (x, y) samples the source
    column x at ``y + m (x + 0.5)`` with PIL's cubic convolution (a = -1) over rows clamped to
    the image, in float64 as PIL, truncated; grey where the sample lies outside the image."""
    k, c, h, w = images.shape
    y, x = _grid(images, torch.float64)
    source = factors.view(-1, 1, 1) * (x + 0.5) + (y + 0.5) + 0.0  # PIL's a3 x + a4 y + a5
    inside = (source >= 0) & (source < h)
    source = source - 0.5
    top = source.floor()
    d = (source - top)[:, None]
    # The four taps (rows top-1 .. top+2) in one gather; PIL's polynomial coefficients of integer
    # pixels are integers, exact in int32, so only the Horner steps need float64.
    rows = (top.long()[:, None] + torch.arange(-1, 3).view(1, 4, 1, 1)).clamp_(0, h - 1)
    index = (rows * w + x.long()).view(k, 1, 4 * h * w).expand(k, c, -1)
    v1, v2, v3, v4 = images.reshape(k, c, h * w).int().gather(2, index).view(k, c, 4, h, w).unbind(2)
    p2, p3, p4 = v3 - v1, 2 * (v1 - v2) + v3 - v4, v2 - v1 + v4 - v3
    value = v2 + d * (p2 + d * (p3 + d * p4))
    out = value.clamp_(0, 255).to(torch.uint8)  # truncation, as PIL's (UINT8) cast
    return out.masked_fill_(~inside[:, None], GREY)


def _luma(images: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``, ``(k, 1, H, W)`` int32."""
    weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32).view(1, 3, 1, 1)
    return ((images.int() * weights).sum(1, keepdim=True) + 0x8000) >> 16


def _blend(degenerate: torch.Tensor, images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """PIL's ``Image.blend(degenerate, image, factor)``: ``in1 + factor * (in2 - in1)`` in
    float32 (two roundings, as its C loop), clipped and truncated."""
    base = degenerate.float()
    scaled = factors.float().view(-1, 1, 1, 1) * (images.float() - base)
    return (base + scaled).clamp_(0, 255).to(torch.uint8)


def _contrast_degenerate(images: torch.Tensor) -> torch.Tensor:
    """The mean luma rounded half up, ``int(mean + 0.5)`` with PIL's exact integer histogram."""
    luma = _luma(images)
    pixels = luma[0].numel()
    return (2 * luma.sum((1, 2, 3), keepdim=True) + pixels) // (2 * pixels)


def _smooth(images: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (3x3, centre 5, others 1, / 13, rounded); border pixels unchanged.
    The exact value S / 13 + 0.5 is never within 1/26 of an integer, so PIL's float32 sum
    rounds as the integer form here does."""
    pixels = images.short()
    rows = pixels[..., :-2, :] + pixels[..., 1:-1, :] + pixels[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    out = pixels.clone()
    out[..., 1:-1, 1:-1] = (2 * (box + 4 * pixels[..., 1:-1, 1:-1]) + 13) // 26
    return out


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    """PIL's ``autocontrast``: per channel ``int(x * scale + offset)`` with ``scale = 255 /
    (hi - lo)``, ``offset = -lo * scale`` in float64; a constant channel is left as it is."""
    low = images.amin((-2, -1), keepdim=True).double()
    high = images.amax((-2, -1), keepdim=True).double()
    # A true division: ``255.0 / tensor`` would multiply by a rounded reciprocal.
    scale = torch.full_like(low, 255.0) / (high - low).clamp_min(1)
    stretched = (images.double() * scale + -low * scale).clamp_(0, 255)
    return torch.where(high > low, stretched, images.double()).to(torch.uint8)


def _posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    masks = (255 - ((1 << (8 - bits.long())) - 1)).to(torch.uint8)
    return images & masks.view(-1, 1, 1, 1)


BATCH_OPERATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "shearY": _shear_y,
    "translateX": lambda im, m: _translate(im, m, -1),
    "translateY": lambda im, m: _translate(im, m, -2),
    "rotate": _rotate,
    "color": lambda im, m: _blend(_luma(im), im, 1 + m),
    "contrast": lambda im, m: _blend(_contrast_degenerate(im), im, 1 + m),
    "sharpness": lambda im, m: _blend(_smooth(im), im, 1 + m),
    "brightness": lambda im, m: _blend(im.new_zeros(()), im, 1 + m),
    "posterize": _posterize,
    "solarize": lambda im, m: torch.where(im < m.view(-1, 1, 1, 1), im, 255 - im),
    "autocontrast": lambda im, m: _autocontrast(im),
    "equalize": lambda im, m: TF.equalize(im),  # torchvision's equals PIL's (tests pin it)
    "invert": lambda im, m: 255 - im,
}


class PaCoAutoAugment:
    """The policy on a uint8 batch ``(B, C, H, W)``: every image draws its sub-policy, coins and
    signs from ``generator``; per stage, the images that drew an operation go through it together
    with their own magnitudes."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(images, *sample(len(images), generator))

    @staticmethod
    def apply(images: torch.Tensor, operations: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        """The drawn ``(B, 2)`` operations (-1: none) with their ``(B, 2)`` magnitudes."""
        images = images.clone(memory_format=torch.contiguous_format)
        for stage in range(2):
            for operation in operations[:, stage].unique().tolist():
                if operation >= 0:
                    chosen = (operations[:, stage] == operation).nonzero().squeeze(1)
                    images[chosen] = BATCH_OPERATIONS[OPERATIONS[operation]](
                        images[chosen], magnitudes[chosen, stage])
        return images
