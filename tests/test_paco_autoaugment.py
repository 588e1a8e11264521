"""The PaCo authors' CIFAR AutoAugment policy: the batched operations equal the per-image PIL
ones image by image, the policy table is torchvision's CIFAR-10 table, and the ways it differs
from torchvision's (grey fill, no rotation sign, fractional translation, 256-scale solarize)
hold on hand-computed cases.

Every operation, the bicubic shear included, is compared for exact equality: the batched form
does PIL's arithmetic in PIL's order (float64 for the affine maps and the cubic taps, float32
for the blends, integers for luma, smoothing and the rotation's fixed point).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from longtail.data import paco_autoaugment as paco
from longtail.data.batch_transforms import AutoAugment

TORCHVISION_NAMES = {"shearY": "ShearY", "translateX": "TranslateX", "translateY": "TranslateY",
                     "rotate": "Rotate", "color": "Color", "contrast": "Contrast", "sharpness": "Sharpness",
                     "brightness": "Brightness", "posterize": "Posterize", "solarize": "Solarize",
                     "autocontrast": "AutoContrast", "equalize": "Equalize", "invert": "Invert"}


def sample_images(height: int = 32, width: int = 32, seed: int = 0) -> torch.Tensor:
    """48 uint8 images ``(48, 3, H, W)``: full-range noise, low-contrast noise on a gradient,
    smooth gradients, and images with a constant channel (or wholly constant)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (48, 3, height, width), generator=g)
    ramp = torch.arange(height).view(-1, 1) * 3 + torch.arange(width) * 2
    images = noise.clone()
    images[16:32] = noise[16:32] // 5 + 60 + ramp
    images[32:40] = (ramp * torch.tensor([1, 2, 3]).view(3, 1, 1)) % 256
    images[40:48, 0] = 200
    images[44:48] = 90
    return images.clamp(0, 255).to(torch.uint8)


def pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def policy_magnitudes(name: str) -> list[float]:
    """Every magnitude the policy gives the operation, both signs where it draws one."""
    values = sorted({float(paco.MAGNITUDES[n][b]) for sub in paco.SUB_POLICIES for n, _, b in sub if n == name})
    return values + ([-v for v in values] if name in paco.SIGNED else [])


@pytest.mark.parametrize("size", [(32, 32), (24, 40)], ids=["square", "wide"])
@pytest.mark.parametrize("name", paco.OPERATIONS)
def test_batched_operation_equals_pil_image_by_image(name, size):
    images = sample_images(*size)
    for magnitude in policy_magnitudes(name):
        out = paco.BATCH_OPERATIONS[name](images, torch.full((len(images),), magnitude, dtype=torch.float64))
        for i, image in enumerate(images):
            expected = tensor(paco.PIL_OPERATIONS[name](pil(image), magnitude))
            assert torch.equal(out[i], expected), (name, magnitude, i)


def test_batched_policy_equals_per_image_policy_image_by_image():
    images = torch.cat([sample_images(seed=s) for s in range(8)])  # 384 images
    operations, magnitudes = paco.sample(len(images), torch.Generator().manual_seed(3))
    out = paco.PaCoAutoAugment()(images, torch.Generator().manual_seed(3))
    for i, image in enumerate(images):
        expected = paco.PILPaCoAutoAugment.apply(pil(image), operations[i].tolist(), magnitudes[i].tolist())
        assert torch.equal(out[i], tensor(expected)), i
    assert (out != images).flatten(1).any(1).float().mean() > 0.5  # most images changed


def test_per_image_policy_draws_from_the_global_generator():
    picture = pil(sample_images()[0])
    torch.manual_seed(5)
    first = [tensor(paco.PILPaCoAutoAugment()(picture)) for _ in range(20)]
    torch.manual_seed(5)
    again = [tensor(paco.PILPaCoAutoAugment()(picture)) for _ in range(20)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({a.numpy().tobytes() for a in first}) > 5


def test_table_is_torchvisions_cifar10_policy():
    torchvision_policies = AutoAugment("cifar10").policies
    assert len(paco.SUB_POLICIES) == len(torchvision_policies) == 25
    for ours, theirs in zip(paco.SUB_POLICIES, torchvision_policies):
        for (name, p, magnitude_bin), (their_name, their_p, their_bin) in zip(ours, theirs):
            assert (TORCHVISION_NAMES[name], p) == (their_name, their_p)
            assert their_bin is None or their_bin == magnitude_bin


def test_draws_follow_the_table():
    n = 50000
    operations, magnitudes = paco.sample(n, torch.Generator().manual_seed(0))
    for stage in range(2):
        # Expected count of each operation: n / 25 times the sum of its probabilities there.
        expected = torch.zeros(len(paco.OPERATIONS) + 1, dtype=torch.float64)
        for sub in paco.SUB_POLICIES:
            name, p, _ = sub[stage]
            expected[paco.OPERATIONS.index(name)] += n / 25 * p
            expected[-1] += n / 25 * (1 - p)
        counts = torch.bincount(operations[:, stage].where(operations[:, stage] >= 0, len(paco.OPERATIONS)),
                                minlength=len(expected)).double()
        present = expected > 0
        assert torch.equal(counts > 0, present)
        chi2 = float(((counts - expected)[present] ** 2 / expected[present]).sum())
        assert chi2 < 40  # at most 14 categories: 13 degrees of freedom, p < 0.001
    for name in ("rotate", "posterize", "solarize"):
        assert (magnitudes[operations == paco.OPERATIONS.index(name)] > 0).all()  # never signed
    for name in ("translateY", "shearY", "brightness"):
        signs = magnitudes[operations == paco.OPERATIONS.index(name)] > 0
        assert abs(float(signs.double().mean()) - 0.5) < 0.03, name


def test_translation_moves_by_the_offset_rounded_and_fills_grey():
    # Bin 9: 150/331 of 32 pixels = 14.50; PIL's nearest sampling moves by 15 (torchvision: 14).
    images = sample_images()[:4]
    fraction = float(paco.MAGNITUDES["translateX"][9])
    left = paco.BATCH_OPERATIONS["translateX"](images, torch.full((4,), fraction, dtype=torch.float64))
    assert torch.equal(left[..., :17], images[..., 15:]) and (left[..., 17:] == 128).all()
    right = paco.BATCH_OPERATIONS["translateX"](images, torch.full((4,), -fraction, dtype=torch.float64))
    assert torch.equal(right[..., 15:], images[..., :17]) and (right[..., :15] == 128).all()


def test_rotation_equals_the_authors_rgba_composite_and_turns_anticlockwise():
    image = pil(sample_images()[0])
    rotated = image.convert("RGBA").rotate(20 / 3)
    authors = Image.composite(rotated, Image.new("RGBA", rotated.size, (128,) * 4), rotated).convert("RGB")
    assert torch.equal(tensor(paco.PIL_OPERATIONS["rotate"](image, 20 / 3)), tensor(authors))
    # A bar along row 16 turned anticlockwise rises to the right: its right end moves up.
    bar = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    bar[..., 16, :] = 255
    out = paco.BATCH_OPERATIONS["rotate"](bar, torch.tensor([20 / 3], dtype=torch.float64))
    lit = (out[0, 0] == 255).nonzero()
    assert lit[lit[:, 1] == 28, 0].max() < 16 < lit[lit[:, 1] == 3, 0].min()
    assert out[0, 0, 0, 0] == 128  # the corner comes from outside the image: grey


def test_solarize_thresholds_are_on_a_256_scale():
    ramp = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    solarize = paco.BATCH_OPERATIONS["solarize"]
    same = solarize(ramp, torch.tensor([float(paco.MAGNITUDES["solarize"][0])], dtype=torch.float64))
    assert torch.equal(same, ramp)  # threshold 256: nothing inverted (torchvision's 255 inverts 255)
    out = solarize(ramp, torch.tensor([float(paco.MAGNITUDES["solarize"][2])], dtype=torch.float64)).flatten()
    assert out[199] == 199 and out[200] == 55  # threshold 199.1 (torchvision's 198.3 inverts 199)


def test_shear_keeps_flat_regions_and_fills_grey_below_the_sheared_edge():
    flat = torch.full((1, 3, 32, 32), 77, dtype=torch.uint8)
    m = float(paco.MAGNITUDES["shearY"][8])  # 0.267: column x reads rows y + 0.267 (x + 0.5)
    out = paco.BATCH_OPERATIONS["shearY"](flat, torch.tensor([m], dtype=torch.float64))[0, 0]
    grey_rows = (out == 128).sum(0)
    expected = torch.tensor([sum(y + 0.5 + m * (x + 0.5) >= 32 for y in range(32)) for x in range(32)])
    assert torch.equal(grey_rows, expected) and grey_rows[0] == 0 and grey_rows[31] == 8
    assert (out[out != 128] == 77).all()  # cubic weights sum to one
