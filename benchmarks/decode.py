"""JPEG decode + random-resized-crop(224) + flip: images/s on one CPU core, for each way to do it.

Every option draws its crop as torchvision's ``RandomResizedCrop`` does (scale 0.08-1, ratio
3/4-4/3, bilinear with antialiasing) and ends with a uint8 ``(3, 224, 224)`` tensor, so the
results are equivalent in distribution; only the decoding and resampling code differ:

    pil             PIL decodes the whole image; torchvision v2 crops and flips the PIL image
    pil_draft       PIL's ``draft()``: the JPEG decoder scales by 1/2, 1/4 or 1/8 while decoding
                    when the crop stays at least 224 pixels on both sides; one ``resize(box=)``
    torchvision_io  ``torchvision.io.decode_jpeg``, then v2 on the uint8 tensor
    torchcodec      longtail's ``read_image`` (TorchCodec's decoder), then v2 on the tensor
    longtail_*      the library's own per-image pipelines, decode included (normalised floats):
                    ``resized_crop_flip``, and PaCo's two ImageNet-LT views of one decoded image

The images are generated: smooth colour fields, shapes and texture, saved as JPEG (default
500x375 at quality 90, about ImageNet's typical size). One process, one thread, timed in CPU
seconds of this process (on a shared machine the wall clock also counts other processes' turns);
the options take turns in short rounds, and the median round of each is reported, with the
best beside it.

    OMP_NUM_THREADS=1 python benchmarks/decode.py [--size 500x375] [--seconds 3]

pillow-simd replaces Pillow, so measure it in a throwaway venv that sees this one's packages
after its own (the .pth line), never in the project's environment:

    python -m venv /tmp/simd && /tmp/simd/bin/pip install numpy pillow-simd
    echo "import site; site.addsitedir('$PWD/.venv/lib/python3.11/site-packages')" \
        > /tmp/simd/lib/python3.11/site-packages/zz_longtail.pth
    OMP_NUM_THREADS=1 /tmp/simd/bin/python benchmarks/decode.py --only pil pil_draft torchcodec
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image, ImageDraw, ImageFilter
from torchvision.transforms import RandomResizedCrop, v2
from torchvision.transforms.v2.functional import pil_to_tensor

from longtail.data import TRANSFORMS
from longtail.data.sources import IMAGENET_MEAN, IMAGENET_STD, read_image

CROP = 224
GPU_IMAGES_PER_S = 2500  # a ResNet-50 training in mixed precision on one modern GPU


def write_jpegs(folder: Path, count: int, width: int, height: int, quality: int) -> list[str]:
    """``count`` photo-like JPEGs: a smooth colour field, shapes, blur and fine texture."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    paths = []
    for index in range(count):
        waves = [np.sin(2 * np.pi * (x * rng.uniform(0.5, 3) + y * rng.uniform(0.5, 3) + rng.uniform()))
                 for _ in range(3)]
        field = (np.stack(waves, -1) * 0.5 + 0.5) * rng.uniform(80, 200, 3) + rng.uniform(0, 50, 3)
        image = Image.fromarray(field.clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(40):
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            r = int(rng.integers(4, max(width, height) // 5))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([x0 - r, y0 - r // 2, x0 + r, y0 + r // 2], fill=colour)
        image = image.filter(ImageFilter.GaussianBlur(0.8))
        texture = rng.normal(0, 9, (height, width, 1)) + rng.normal(0, 4, (height, width, 3))
        pixels = (np.asarray(image, np.float32) + texture).clip(0, 255).astype(np.uint8)
        path = folder / f"{index:03d}.jpg"
        Image.fromarray(pixels).save(path, quality=quality)
        paths.append(str(path))
    return paths


RRC = RandomResizedCrop(CROP, antialias=True)
V2_CROP_FLIP = v2.Compose([v2.RandomResizedCrop(CROP, antialias=True), v2.RandomHorizontalFlip()])


def pil(path: str) -> torch.Tensor:
    with Image.open(path) as image:
        return pil_to_tensor(V2_CROP_FLIP(image.convert("RGB")))


def pil_draft(path: str) -> torch.Tensor:
    with Image.open(path) as image:
        top, left, height, width = RRC.get_params(image, RRC.scale, RRC.ratio)  # header only
        reduce = 1
        while reduce < 8 and min(width, height) >= 2 * reduce * CROP:
            reduce *= 2
        full = image.size
        image.draft("RGB", (-(-full[0] // reduce), -(-full[1] // reduce)))
        sx, sy = image.size[0] / full[0], image.size[1] / full[1]
        box = (left * sx, top * sy, (left + width) * sx, (top + height) * sy)
        crop = image.convert("RGB").resize((CROP, CROP), Image.Resampling.BILINEAR, box=box)
    if torch.rand(()) < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pil_to_tensor(crop)


def torchvision_io(path: str) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    return V2_CROP_FLIP(decode_jpeg(read_file(path), mode=ImageReadMode.RGB))


def torchcodec(path: str) -> torch.Tensor:
    return V2_CROP_FLIP(read_image(path))


def _pipeline(*specs) -> Callable[[str], list[torch.Tensor]]:
    views = [TRANSFORMS.build(spec, mean=IMAGENET_MEAN, std=IMAGENET_STD, image_size=CROP).per_image
             for spec in specs]

    def run(path: str) -> list[torch.Tensor]:
        image = read_image(path)
        return [view(image) for view in views]

    return run


OPTIONS: dict[str, Callable[[], Callable[[str], object]]] = {
    "pil": lambda: pil,
    "pil_draft": lambda: pil_draft,
    "torchvision_io": lambda: torchvision_io,
    "torchcodec": lambda: torchcodec,
    "longtail_resized_crop_flip": lambda: _pipeline("resized_crop_flip"),
    "longtail_paco_views": lambda: _pipeline(
        {"name": "timm_randaugment"}, {"name": "simaugment", "min_scale": 0.08, "jitter": [0.4, 0.4, 0.4, 0.0],
                                       "jitter_p": 1.0}),
}


def measure(options: dict[str, Callable[[str], object]], paths: list[str], seconds: float,
            rounds: int) -> dict[str, list[float]]:
    """Images per CPU second of each option in each round; the options take turns."""
    rates: dict[str, list[float]] = {name: [] for name in options}
    for fn in options.values():  # warm up: first calls, lazy imports
        for path in paths[:4]:
            fn(path)
    for _ in range(rounds):
        for name, fn in options.items():
            done, started = 0, time.process_time()
            while time.process_time() - started < seconds / rounds:
                fn(paths[done % len(paths)])
                done += 1
            rates[name].append(done / (time.process_time() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per option, over all rounds")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--only", nargs="+", choices=list(OPTIONS), help="measure only these options")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        paths = write_jpegs(Path(folder), args.images, width, height, args.quality)
        kilobytes = np.mean([Path(p).stat().st_size for p in paths]) / 1024
        options = {name: OPTIONS[name]() for name in args.only or OPTIONS}
        rates = measure(options, paths, args.seconds, args.rounds)
    print(f"Pillow {PIL.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}; "
          f"one thread; {args.images} JPEGs of {width}x{height}, quality {args.quality}, "
          f"{kilobytes:.0f} KB on average; crop {CROP}")
    print(f"{'option':<28}{'img/s':>7}{'best':>7}{'ms/img':>8}{f'cores for {GPU_IMAGES_PER_S}/s':>19}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<28}{median:7.0f}{max(values):7.0f}{1000 / median:8.2f}{GPU_IMAGES_PER_S / median:19.1f}")


if __name__ == "__main__":
    main()
