"""Batched augmentation steps against torchvision's functions, applied image by image with the
parameters each image drew, and against hand-computed statistics."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

from longtail.data.batch_transforms import (
    AutoAugment,
    ColorJitter,
    Cutout,
    GaussianBlur,
    RandAugment,
    RandomGrayscale,
    RandomResizedCrop,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
)
from longtail.data.torchvision_internals import UnsupportedTorchvision


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uint8_images(n: int = 32, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=generator(seed), dtype=torch.uint8)


def float_images(n: int = 32, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=generator(seed))


@pytest.mark.parametrize(("batched", "reference"), [
    (adjust_brightness, TF.adjust_brightness),
    (adjust_contrast, TF.adjust_contrast),
    (adjust_saturation, TF.adjust_saturation),
])
def test_colour_adjustments_match_torchvision_per_image(batched, reference):
    images, factors = float_images(8), torch.linspace(0.6, 1.4, 8)
    out = batched(images, factors)
    for i in range(8):
        torch.testing.assert_close(out[i], reference(images[i], float(factors[i])), atol=1e-5, rtol=0)


def test_hue_rotation_matches_torchvision_per_image():
    images = float_images(8)
    images[0] = 0.5  # grey: no hue to rotate
    images[1, :, :4] = 0  # black pixels
    shifts = torch.linspace(-0.1, 0.1, 8)
    out = adjust_hue(images, shifts)
    for i in range(8):
        torch.testing.assert_close(out[i], TF.adjust_hue(images[i], float(shifts[i])), atol=1e-5, rtol=0)


def test_color_jitter_applies_each_image_factors_in_its_own_order():
    jitter, images = ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), float_images(64)
    applied, factors, order = jitter.sample(64, generator(3))
    out = jitter(images, generator(3))
    reference = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for i in range(64):
        expected = images[i]
        for op in order[i].tolist() if applied[i] else []:
            expected = reference[op](expected, float(factors[i, op]))
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)
    assert 40 <= int(applied.sum()) <= 62  # p 0.8 of 64: mean 51.2, sd 3.2
    assert (factors[:, :3] >= 0.6).all() and (factors[:, :3] <= 1.4).all() and factors[:, 3].abs().max() <= 0.1


def test_gaussian_blur_matches_torchvision_kernel_and_borders():
    blur, images = GaussianBlur((0.1, 2.0)), float_images(6)
    sigmas = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 0.7])
    out = blur.blur(images, sigmas)
    for i in range(6):
        expected = TF.gaussian_blur(images[i], [13, 13], [float(sigmas[i])] * 2)
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)


def test_gaussian_blur_blurs_about_half_the_images():
    images = float_images(400)
    out = GaussianBlur((0.1, 2.0), p=0.5)(images, generator(1))
    changed = (out - images).abs().flatten(1).amax(1) > 1e-6
    assert 160 <= int(changed.sum()) <= 240  # mean 200, sd 10


def test_resized_crop_boxes_follow_torchvision_ranges():
    crop = RandomResizedCrop(32, scale=(0.2, 1.0))
    boxes = crop.boxes(5000, 32, 32, generator(0))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 32).all() and (boxes[:, 3] <= 32).all()
    # Rounding each side moves the area and aspect slightly off the drawn values.
    assert (w * h >= 0.2 * 1024 * 0.85).all()
    assert ((w / h).log().abs() <= math.log(4 / 3) + 0.1).all()
    # A square 32x32 image: a try fails only when a side exceeds 32; the mean drawn scale is 0.6.
    assert 0.5 < float((w * h).mean() / 1024) < 0.65


def test_resized_crop_fallback_is_a_centre_crop():
    boxes = RandomResizedCrop(8, scale=(5.0, 6.0)).boxes(4, 20, 40, generator(0))  # no try can fit
    assert boxes.tolist() == [[6.0, 0.0, 33.0, 20.0]] * 4  # width round(20 * 4/3) = 27, left (40 - 27) // 2


@pytest.mark.parametrize("size", [32, 64])  # up-scaling crops, and down-scaling (anti-aliased)
def test_resized_crop_resamples_like_torchvision(size):
    crop, images = RandomResizedCrop(32, scale=(0.2, 1.0)), float_images(16, size)
    boxes = crop.boxes(16, size, size, generator(5))
    out = crop(images, generator(5))
    for i, (left, top, right, bottom) in enumerate(boxes.int().tolist()):
        expected = TF.resized_crop(images[i], top, left, bottom - top, right - left, [32, 32],
                                   interpolation=InterpolationMode.BILINEAR, antialias=True)
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)


def test_resized_crop_flips_about_half_the_crops():
    images = float_images(200)
    plain = RandomResizedCrop(32, scale=(0.2, 1.0))(images, generator(6))
    out = RandomResizedCrop(32, scale=(0.2, 1.0), flip=True)(images, generator(6))
    flipped = (out - plain).abs().flatten(1).amax(1) > 1e-6
    torch.testing.assert_close(out[flipped], plain[flipped].flip(-1))
    assert 70 <= int(flipped.sum()) <= 130  # mean 100, sd 7.1


def test_full_box_crop_is_the_identity():
    images = uint8_images(4)
    out = RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(1.0, 1.0))(images, generator(0))
    torch.testing.assert_close(out, images.float() / 255)


def test_grayscale_equalises_channels_of_about_p_of_the_images():
    images = float_images(500)
    out = RandomGrayscale(p=0.2)(images, generator(2))
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert 70 <= int(grey.sum()) <= 130  # mean 100, sd 8.9
    torch.testing.assert_close(out[grey][:, 0], TF.rgb_to_grayscale(images[grey])[:, 0])
    torch.testing.assert_close(out[~grey], images[~grey])


def test_cutout_zeroes_one_clipped_square_per_image():
    images = torch.full((3000, 1, 32, 32), 7, dtype=torch.uint8)
    holes = Cutout(16)(images, generator(0)) == 0
    rows, columns = holes.any(3).sum((1, 2)), holes.any(2).sum((1, 2))
    assert torch.equal(holes.sum((1, 2, 3)), rows * columns)  # one rectangle per image
    assert rows.min() >= 8 and rows.max() == 16
    # Clipped side of a 16-square at a uniform centre in 0..31: (92 + 16*16 + 100) / 32 = 14,
    # independently per axis, so the mean area is 196 (sd of the mean here about 0.9).
    assert abs(float(holes.sum((1, 2, 3)).float().mean()) - 196) < 4


def test_autoaugment_matches_torchvision_operations_image_by_image():
    augment, images = AutoAugment("cifar10"), uint8_images(200)
    policy, applied, negated = augment.sample(200, generator(4))
    out = augment(images, generator(4))
    for i in range(200):
        expected = images[i : i + 1]
        for stage in range(2):
            if applied[i, stage]:
                name, _, magnitude_index = augment.policies[policy[i]][stage]
                expected = augment.operation(expected, name, magnitude_index, bool(negated[i, stage]))
        assert torch.equal(out[i], expected[0]), i
    # Sub-policy 0 of the CIFAR-10 policy is (Invert p 0.1, Contrast p 0.2): an inversion alone
    # is 255 - x.
    inverted = ((policy == 0) & applied[:, 0] & ~applied[:, 1]).nonzero().flatten()
    for i in inverted.tolist():
        assert torch.equal(out[i], 255 - images[i])


def test_autoaugment_draws_sub_policies_and_operations_at_their_rates():
    augment = AutoAugment("cifar10")
    policy, applied, _ = augment.sample(25000, generator(0))
    counts = torch.bincount(policy, minlength=25).float()
    chi2 = float(((counts - 1000) ** 2 / 1000).sum())
    assert chi2 < 52.6  # 24 degrees of freedom, p = 0.001
    probabilities = torch.tensor([[op[1] for op in sub] for sub in augment.policies])
    expected = probabilities.mean(0)
    assert (applied.float().mean(0) - expected).abs().max() < 0.01  # sd about 0.003


def test_randaugment_matches_torchvision_operations_image_by_image():
    augment, images = RandAugment(num_ops=2, magnitude=10), uint8_images(200)
    drawn, negated = augment.draw(200, generator(7))
    out = augment(images, generator(7))
    for i in range(200):
        expected = images[i : i + 1]
        for stage in range(2):
            name, magnitude_bin = augment.operations[stage][drawn[i, stage]]
            expected = augment.operation(expected, name, magnitude_bin, bool(negated[i, stage]))
        assert torch.equal(out[i], expected[0]), i
    identity = [i for i in range(200) if all(augment.operations[0][drawn[i, s]][0] == "Identity" for s in range(2))]
    assert all(torch.equal(out[i], images[i]) for i in identity)


def test_randaugment_draws_operations_uniformly():
    augment = RandAugment(num_ops=2)
    drawn, negated = augment.draw(14000, generator(0))
    counts = torch.bincount(drawn.flatten(), minlength=14).float()
    assert float(((counts - 2000) ** 2 / 2000).sum()) < 34.5  # 13 degrees of freedom, p = 0.001
    assert abs(float(negated.float().mean()) - 0.5) < 0.02


def test_a_torchvision_without_the_internals_fails_when_the_step_is_built(monkeypatch):
    monkeypatch.delattr(v2.AutoAugment, "_AUGMENTATION_SPACE")
    with pytest.raises(UnsupportedTorchvision, match=r"v2.AutoAugment has no _AUGMENTATION_SPACE.*pip install"):
        AutoAugment("cifar10")
    monkeypatch.setattr(v2.RandAugment, "_apply_image_or_video_transform", lambda self, image, name: image)
    with pytest.raises(UnsupportedTorchvision, match=r"v2.RandAugment has no _apply_image_or_video_transform\("):
        RandAugment()
