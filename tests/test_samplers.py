"""Sampler class frequencies match their definitions (fixed seeds, statistical bounds)."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data import SAMPLERS

COUNTS = np.array([400, 200, 100, 50, 20, 10])
LABELS = np.random.default_rng(3).permutation(np.repeat(np.arange(len(COUNTS)), COUNTS))


def frequencies(sampler, epochs):
    drawn = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        drawn.extend(sampler)
    return np.bincount(LABELS[np.array(drawn)], minlength=len(COUNTS)) / len(drawn), len(drawn)


def assert_close(observed, expected, n):
    # 5 standard errors of a multinomial proportion: a false alarm is ~1e-6 per class
    bound = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-9
    assert np.all(np.abs(observed - expected) <= bound), (observed, expected)


@pytest.mark.parametrize("name,weights", [
    ("class_balanced", np.ones(len(COUNTS))),
    ("reversed", COUNTS.max() / COUNTS),
    ("square_root", np.sqrt(COUNTS)),
])
def test_class_aware_frequencies(name, weights):
    sampler = SAMPLERS.build(name, targets=LABELS, seed=0)
    observed, n = frequencies(sampler, 20)
    assert_close(observed, weights / weights.sum(), n)


def test_reversed_probabilities_exact():
    sampler = SAMPLERS.build("reversed", targets=LABELS)
    expected = (400 / COUNTS) / (400 / COUNTS).sum()
    np.testing.assert_allclose(sampler.class_probabilities().numpy(), expected)


def test_uniform_is_a_permutation_each_epoch():
    sampler = SAMPLERS.build("uniform", targets=LABELS, seed=5)
    first = list(sampler)
    assert sorted(first) == list(range(len(LABELS)))
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first  # the draw depends on (seed, epoch) only


def test_images_within_a_class_are_uniform():
    sampler = SAMPLERS.build("class_balanced", targets=LABELS, seed=0)
    drawn = []
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn.extend(sampler)
    drawn = np.array(drawn)
    members = np.flatnonzero(LABELS == 5)  # the 10 images of the rarest class
    hits = np.array([(drawn == i).sum() for i in members])
    n = hits.sum()
    assert_close(hits / n, np.full(10, 0.1), n)


def test_progressive_moves_from_instance_to_balanced():
    sampler = SAMPLERS.build("progressive", targets=LABELS, epochs=11, seed=0)
    sampler.set_epoch(0)
    np.testing.assert_allclose(sampler.class_probabilities().numpy(), COUNTS / COUNTS.sum())
    sampler.set_epoch(10)
    np.testing.assert_allclose(sampler.class_probabilities().numpy(), np.full(6, 1 / 6))
    sampler.set_epoch(5)
    halfway = 0.5 * COUNTS / COUNTS.sum() + 0.5 / 6
    np.testing.assert_allclose(sampler.class_probabilities().numpy(), halfway)


@pytest.mark.parametrize("name", ["uniform", "reversed"])
@pytest.mark.parametrize("size", [780, 779])
def test_ddp_shards_split_one_global_draw(name, size):
    labels = LABELS[:size]
    shards = [SAMPLERS.build(name, targets=labels, seed=2, num_replicas=2, rank=r) for r in (0, 1)]
    whole = SAMPLERS.build(name, targets=labels, seed=2, num_replicas=1, rank=0)
    for s in (*shards, whole):
        s.set_epoch(3)
    a, b = list(shards[0]), list(shards[1])
    assert len(a) == len(b) == len(shards[0]) == size // 2  # an odd draw's last sample is dropped
    interleaved = [x for pair in zip(a, b) for x in pair]
    assert interleaved == list(whole)[: 2 * (size // 2)]  # the same draw as one process's
