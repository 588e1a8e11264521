"""Long-tailed subsets of balanced datasets, and the many/medium/few-shot split of classes."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

PROFILES = ("exp", "step")


def profile_counts(n_max: int, num_classes: int, imbalance_ratio: float, profile: str = "exp") -> list[int]:
    """Images kept per class (0-based, official label order).

    ``exp``: ``n_i = int(n_max * (1/IR) ** (i / (C - 1)))``; ``step``: the first half of the
    classes keep ``n_max``, the rest ``int(n_max / IR)``.
    """
    if imbalance_ratio < 1:
        raise ConfigError(f"imbalance ratio must be >= 1, got {imbalance_ratio}")
    if profile == "exp":
        return [int(n_max * (1 / imbalance_ratio) ** (i / (num_classes - 1))) for i in range(num_classes)]
    if profile == "step":
        return [n_max if i < num_classes // 2 else int(n_max / imbalance_ratio) for i in range(num_classes)]
    raise ConfigError(f"unknown long-tail profile {profile!r}; choose one of {', '.join(PROFILES)}")


def longtailed_indices(
    targets: np.ndarray, num_classes: int, imbalance_ratio: float, profile: str = "exp", seed: int = 0
) -> np.ndarray:
    """Indices of the long-tailed subset, exactly as the papers build it.

    The RNG is seeded once; for each class in order its indices are shuffled and the first
    ``n_i`` kept, so a subset at a higher ratio lies inside the one at a lower ratio.
    ``n_max`` is the smallest class size (5000 / 500 on CIFAR, where all are equal).
    """
    targets = np.asarray(targets)
    n_max = int(np.bincount(targets, minlength=num_classes).min())
    rng = np.random.RandomState(seed)  # the legacy global-seed stream the papers' code uses
    chosen = []
    for c, n in enumerate(profile_counts(n_max, num_classes, imbalance_ratio, profile)):
        idx = np.where(targets == c)[0]
        rng.shuffle(idx)
        chosen.append(idx[:n])
    return np.concatenate(chosen)


def shot_groups(train_counts: np.ndarray, many: int = 100, few: int = 20) -> np.ndarray:
    """'many' (> many images), 'few' (< few images) or 'medium' for each class."""
    counts = np.asarray(train_counts)
    return np.where(counts > many, "many", np.where(counts < few, "few", "medium"))
