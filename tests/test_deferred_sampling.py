"""Deferred re-sampling (DRS): one sampler before the switch epoch, another from it on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longtail.data import SAMPLERS

TARGETS = np.repeat(np.arange(4), [40, 20, 8, 4])


def draw(spec, epoch: int) -> list[int]:
    sampler = SAMPLERS.build(spec, targets=TARGETS, seed=3, epochs=10)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_deferred_sampler_switches_exactly_at_its_epoch():
    drs = {"name": "deferred", "before": "uniform", "after": "class_balanced", "switch_epoch": 4}
    for epoch in range(7):
        expected = "class_balanced" if epoch >= 4 else "uniform"
        assert draw(drs, epoch) == draw(expected, epoch), epoch


def test_deferred_sampler_changes_the_class_mix():
    drs = {"name": "deferred", "after": "class_balanced", "switch_epoch": 1}
    before = np.bincount(TARGETS[draw(drs, 0)], minlength=4)
    after = np.bincount(TARGETS[draw(drs, 1)], minlength=4)
    assert before.tolist() == [40, 20, 8, 4]  # one pass over every image
    assert after[3] > 2 * before[3]  # the rarest class, about 18 of 72 draws once balanced


def test_deferred_sampler_shards_like_its_inner_samplers():
    drs = {"name": "deferred", "after": "reversed", "switch_epoch": 0}
    shards = []
    for rank in range(2):
        sampler = SAMPLERS.build(drs, targets=TARGETS, seed=3, epochs=10, num_replicas=2, rank=rank)
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1]) == 36
    whole = SAMPLERS.build("reversed", targets=TARGETS, seed=3, epochs=10)
    whole.set_epoch(2)
    interleaved = torch.tensor(shards).t().reshape(-1).tolist()
    assert interleaved == list(whole)


def test_deferred_samplers_must_draw_as_many_samples_an_epoch():
    drs = {"name": "deferred", "after": {"name": "class_balanced", "num_samples": 10},
           "switch_epoch": 1}
    with pytest.raises(ValueError, match="same number"):
        SAMPLERS.build(drs, targets=TARGETS, seed=3, epochs=10)
