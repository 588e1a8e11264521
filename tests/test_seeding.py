"""Every random stream has its own seed, derived from (seed, purpose, epoch, rank) in one place."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from longtail.data import SAMPLERS, ImageSet, Pipeline, make_stream
from longtail.data.streams import LoaderSettings
from longtail.errors import ConfigError
from longtail.seeding import PURPOSES, derive, generator


def test_no_two_streams_share_a_seed_over_400_epochs_8_ranks_and_every_purpose():
    keys = list(itertools.product((0, 1), PURPOSES, range(400), range(8), range(2), range(2)))
    seeds = {derive(seed, purpose, epoch, rank, stream, position)
             for seed, purpose, epoch, rank, stream, position in keys}
    assert len(seeds) == len(keys)


def test_the_collisions_of_the_old_arithmetic_are_gone():
    # (seed * 1_000_003 + epoch) * 101 + stream: epoch e of stream 1000 was epoch e + 9 of stream 91
    assert derive(0, "augment", 0, stream=1000) != derive(0, "augment", 9, stream=91)
    # the global per-epoch seed was the first sampler's
    assert derive(0, "global", 3) != derive(0, "sampler", 3)
    # seed + 7919 * stream: stream 1 of seed 0 was stream 0 of seed 7919
    assert derive(0, "sampler", 0, stream=1) != derive(7919, "sampler", 0, stream=0)


def test_a_seed_is_a_function_of_its_key_alone():
    assert derive(3, "sample", 17, 2, 1, 5) == derive(3, "sample", 17, 2, 1, 5)
    a, b = generator(3, "augment", 4), generator(3, "augment", 4)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    assert 0 <= derive(2**40, "init") < 2**64


def test_negative_seeds_are_refused():
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        derive(-1, "init")


def test_two_samplers_of_one_run_draw_independently():
    targets = np.repeat(np.arange(4), 25)
    first, second = (SAMPLERS.build("uniform", targets=targets, seed=0, stream=s) for s in (0, 1))
    assert list(first) != list(second)
    assert list(SAMPLERS.build("uniform", targets=targets, seed=0, stream=0)) == list(first)


def _stream(rank: int):
    """A DataLoader stream over 8 identical images with a random per-image crop (no batched form)."""
    images = ImageSet(images=np.tile(np.arange(64, dtype=np.uint8).reshape(1, 8, 8, 1), (8, 1, 1, 3)),
                      targets=np.zeros(8, dtype=np.int64))
    crop = Pipeline(v2.Compose([v2.RandomCrop(8, padding=4), v2.PILToTensor()]))
    return make_stream(images, None, 2, [crop], drop_last=False, seed=0, stream=0, rank=rank,
                       loader=LoaderSettings(num_workers=0))


def test_each_sample_and_each_rank_draws_its_own_per_image_augmentation():
    """(tests/test_large_datasets.py: the draws do not depend on the workers or their history.)"""
    first = [batch.images for batch in _stream(rank=0)]
    assert all(torch.equal(a, b) for a, b in zip(first, [batch.images for batch in _stream(rank=0)], strict=True))
    assert not torch.equal(first[0], first[1])  # the same images at other positions in the epoch
    assert not all(torch.equal(a, b) for a, b in zip(first, [batch.images for batch in _stream(rank=1)]))
