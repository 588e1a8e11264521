"""Mixup and Manifold Mixup: mixing at any trunk depth, with one sampler or two."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from longtail.data import Batch
from longtail.methods import METHODS
from longtail.methods.mixup import forward_from

COUNTS = np.array([30, 12, 5])


def build(**options):
    torch.manual_seed(0)
    return METHODS.build({"name": "mixup", **options}, model_spec={"name": "resnet20"},
                         num_classes=3, class_counts=COUNTS, epochs=4)


@pytest.mark.parametrize("depth", [0, 3, 6, 9])
def test_forward_from_any_depth_equals_the_whole_model(depth):
    model = build().model.eval()
    images = torch.randn(5, 3, 8, 8)
    with torch.no_grad():
        hidden = model.backbone.trunk[:depth](images)
        assert torch.allclose(forward_from(model, hidden, depth), model(images), atol=1e-6)


def test_two_sampler_mixup_asks_for_a_partner_stream():
    assert list(build().streams()) == ["main"]
    method = build(partner_sampler="reversed")
    assert list(method.streams()) == ["main", "partner"]
    assert method.streams()["partner"].sampler == "reversed"


@pytest.mark.parametrize("options", [{}, {"partner_sampler": "reversed"}])
def test_mixing_a_batch_with_itself_is_plain_cross_entropy(options):
    # whatever lam, depth and pairing are drawn, mixing identical samples changes nothing
    method = build(alpha=0.4, layers=[0, 3, 6], **options).eval()
    images = torch.randn(1, 3, 8, 8).repeat(6, 1, 1, 1)
    same = Batch([images], torch.zeros(6, dtype=torch.long))
    batches = {"main": same, "partner": same} if options else {"main": same}
    with torch.no_grad():
        expected = F.cross_entropy(method.model(images), same.targets)
        for _ in range(4):
            assert torch.allclose(method(batches).loss, expected, atol=1e-5)


def test_mixed_loss_weighs_both_labels_by_lam():
    method = build(alpha=1.0, layers=[0], partner_sampler="uniform").eval()
    a, b = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    ya, yb = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 1])
    torch.manual_seed(5)
    lam = float(method.beta.sample())
    torch.manual_seed(5)  # the step draws lam first, from the same generator state
    with torch.no_grad():
        loss = method({"main": Batch([a], ya), "partner": Batch([b], yb)}).loss
        logits = method.model(lam * a + (1 - lam) * b)
    expected = lam * F.cross_entropy(logits, ya) + (1 - lam) * F.cross_entropy(logits, yb)
    assert torch.allclose(loss, expected, atol=1e-5)


def test_mixing_depths_beyond_the_trunk_are_refused():
    with pytest.raises(ValueError, match="layers"):
        build(layers=[0, 99])
