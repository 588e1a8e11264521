"""Augmentation pipelines: the batched crop + flip is a real random crop of the padded image,
and every named pipeline has its per-image and (for CIFAR) batched forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from longtail.data import TRANSFORMS
from longtail.data.batch_transforms import AutoAugment, BatchPipeline, Cutout, Normalize, RandomCropFlip
from longtail.data.paco_autoaugment import PaCoAutoAugment, PILPaCoAutoAugment
from longtail.data.transforms import OneImage
from longtail.registry import ConfigError

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def random_images(n=64, size=8, seed=0):
    return torch.randint(0, 256, (n, size, size, 3), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def test_normalize_matches_formula():
    images = random_images(2)
    out = BatchPipeline([], MEAN, STD)(images)
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    expected = (images.permute(0, 3, 1, 2).float() / 255 - mean) / std
    torch.testing.assert_close(out, expected)


def test_crop_flip_outputs_are_crops_of_the_padded_image():
    images, padding = random_images(), 2
    out = BatchPipeline([RandomCropFlip(padding)], MEAN, STD)(images, torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(images, (0, 0, padding, padding, padding, padding))
    plain = Normalize(MEAN, STD)(padded.permute(0, 3, 1, 2))
    flips, offsets = 0, set()
    for i in range(len(images)):
        matches = [(dy, dx, f) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                   for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(2) if f else c)(plain[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a crop of its padded original"
        flips += matches[0][2]
        offsets.add(matches[0][:2])
    assert 16 <= flips <= 48  # p = 0.5 over 64 images: a 4-sigma band
    assert len(offsets) > 10  # all 25 offsets are possible


def test_crop_flip_without_padding_or_flip_is_identity():
    images = random_images(4)
    out = BatchPipeline([RandomCropFlip(padding=0, flip=False)], MEAN, STD)(images, torch.Generator())
    torch.testing.assert_close(out, BatchPipeline([], MEAN, STD)(images))


def test_cutout_zeroes_one_square():
    torch.manual_seed(0)
    image = torch.ones(3, 32, 32)
    holes = [(OneImage(Cutout(16))(image) == 0).all(0).sum().item() for _ in range(50)]
    assert max(holes) == 256 and min(holes) >= 64  # a full 16x16 hole, or clipped at a border
    assert image.eq(1).all()  # the input is untouched


def test_per_image_pipelines_give_normalised_tensors():
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    paco = {"name": "autoaugment_cutout", "policy": "paco"}
    for name in ("crop_flip", "autoaugment_cutout", paco, "simaugment", "randaugment", "none"):
        pipeline = TRANSFORMS.build(name, mean=MEAN, std=STD, image_size=32)
        out = pipeline.per_image(picture)
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32, name
    for name in ("crop_flip", "autoaugment_cutout", paco, "simaugment", "randaugment", "resized_crop_flip", "none"):
        batched = TRANSFORMS.build(name, mean=MEAN, std=STD, image_size=32).batched
        out = batched(random_images(8, 32), torch.Generator().manual_seed(0))
        assert out.shape == (8, 3, 32, 32) and out.dtype == torch.float32, name
    assert TRANSFORMS.build("resize_center_crop", mean=MEAN, std=STD, image_size=32).batched is None


def test_autoaugment_policy_picks_the_authors_or_torchvisions_operations():
    def steps(spec):
        pipeline = TRANSFORMS.build(spec, mean=MEAN, std=STD, image_size=32)
        return [type(t) for t in pipeline.per_image.transforms], [type(s) for s in pipeline.batched.steps]

    per_image, batched = steps({"name": "autoaugment_cutout", "policy": "paco"})
    assert PILPaCoAutoAugment in per_image and PaCoAutoAugment in batched
    per_image, batched = steps("autoaugment_cutout")  # the default: torchvision's, as recorded runs used
    assert v2.AutoAugment in per_image and AutoAugment in batched and PaCoAutoAugment not in batched
    with pytest.raises(ConfigError, match="unknown policy 'pac'; choose one of: torchvision, paco"):
        steps({"name": "autoaugment_cutout", "policy": "pac"})
