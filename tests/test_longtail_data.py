"""Long-tailed subsets: exactly the papers' construction and their published counts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import reference_indices
from longtail.data import longtailed_indices, profile_counts, shot_groups


def shuffled_labels(num_classes, per_class):
    return np.random.default_rng(1).permutation(np.repeat(np.arange(num_classes), per_class))


CIFAR10_IR100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.mark.parametrize("ratio,total", [(100, 12406), (50, 13996), (10, 20431)])
def test_cifar10_shaped_counts_and_indices(ratio, total):
    labels = shuffled_labels(10, 5000)
    chosen = longtailed_indices(labels, 10, ratio)
    assert len(chosen) == total
    np.testing.assert_array_equal(chosen, reference_indices(labels, 10, ratio))
    if ratio == 100:
        assert np.bincount(labels[chosen]).tolist() == CIFAR10_IR100


@pytest.mark.parametrize("ratio,total", [(100, 10847), (50, 12608), (10, 19573)])
def test_cifar100_shaped_counts_and_indices(ratio, total):
    labels = shuffled_labels(100, 500)
    chosen = longtailed_indices(labels, 100, ratio)
    counts = np.bincount(labels[chosen])
    assert len(chosen) == total and counts[0] == 500 and counts[-1] == int(500 / ratio)
    np.testing.assert_array_equal(chosen, reference_indices(labels, 100, ratio))


def test_higher_ratio_subset_is_nested_in_lower():
    labels = shuffled_labels(10, 5000)
    sets = [set(longtailed_indices(labels, 10, r).tolist()) for r in (100, 50, 10)]
    assert sets[0] < sets[1] < sets[2]


def test_step_profile():
    assert profile_counts(500, 10, 10, "step") == [500] * 5 + [50] * 5
    with pytest.raises(ValueError, match="profile"):
        profile_counts(500, 10, 10, "zigzag")


def test_shot_groups_thresholds():
    groups = shot_groups(np.array([500, 101, 100, 20, 19, 5]))
    assert groups.tolist() == ["many", "many", "medium", "medium", "few", "few"]
    assert shot_groups(np.array([50, 30, 10]), many=40, few=15).tolist() == ["many", "medium", "few"]


@pytest.mark.skipif(not (Path(os.environ.get("LONGTAIL_DATA", "data")) / "cifar100.npz").exists(),
                    reason="the real CIFAR-100 labels are not unpacked under $LONGTAIL_DATA")
def test_real_cifar100_labels():
    from longtail.data import SOURCES

    labels = SOURCES.build("cifar100").train.targets
    for ratio, total in ((100, 10847), (50, 12608), (10, 19573)):
        chosen = longtailed_indices(labels, 100, ratio)
        assert len(chosen) == total
        np.testing.assert_array_equal(chosen, reference_indices(labels, 100, ratio))
