"""Long-tailed subsets of balanced datasets, and the many/medium/few-shot split of classes."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

PROFILES = ("exp", "step")


def profile_counts(n_max: int, num_classes: int, imbalance_ratio: float, profile: str = "exp") -> list[int]:
    """Images kept per class (0-based, official label order).

    ``exp``: ``n_i = int(n_max * (1/IR) ** (i / (C - 1)))``; ``step``: the first half of the
    classes keep ``n_max``, the rest ``int(n_max / IR)``.
    """
    if not imbalance_ratio >= 1:  # also refuses NaN
        raise ConfigError(f"imbalance ratio must be >= 1, got {imbalance_ratio}")
    if profile == "exp":
        return [int(n_max * (1 / imbalance_ratio) ** (i / (num_classes - 1))) for i in range(num_classes)]
    if profile == "step":
        return [n_max if i < num_classes // 2 else int(n_max / imbalance_ratio) for i in range(num_classes)]
    raise ConfigError(f"unknown long-tail profile {profile!r}; choose one of {', '.join(PROFILES)}")


def largest_ratio(n_max: int, num_classes: int, profile: str = "exp") -> float:
    """The largest imbalance ratio whose profile keeps at least one image in every class.

    That is ``n_max`` itself, or the float just below it where ``int(n_max * (1 / n_max))``
    rounds down to 0 (e.g. ``n_max = 49``).
    """
    ratio = float(n_max)
    while min(profile_counts(n_max, num_classes, ratio, profile)) < 1:
        ratio = float(np.nextafter(ratio, 0.0))
    return ratio


def check_imbalance_ratio(train_counts: np.ndarray, imbalance_ratio: float, profile: str = "exp") -> list[int]:
    """The images each class keeps at ``imbalance_ratio``, or a :class:`ConfigError` saying
    which ratios this data allows: at least 1, and none that leaves a class without an image."""
    counts = np.asarray(train_counts)
    num_classes, n_max = len(counts), int(counts.min())
    if n_max < 1:
        raise ConfigError(f"class {int(counts.argmin())} has no training image, so no long-tailed "
                          "subset can be built; fix the data, or set data.imbalance_ratio=null")
    largest = largest_ratio(n_max, num_classes, profile)
    allowed = f"{largest:g}" if float(f"{largest:g}") == largest else repr(largest)
    if not imbalance_ratio >= 1:
        problem = "is not a number" if math.isnan(imbalance_ratio) else "is below 1 (1 keeps every image)"
        raise ConfigError(f"imbalance ratio {imbalance_ratio:g} {problem}; give a ratio from 1 to "
                          f"{allowed}, the largest this data allows")
    kept = profile_counts(n_max, num_classes, imbalance_ratio, profile)
    empty = sum(n < 1 for n in kept)
    if empty:
        raise ConfigError(
            f"imbalance ratio {imbalance_ratio:g} leaves {empty} of the {num_classes} classes without "
            f"a training image (the smallest class has {n_max}); the largest ratio this data allows "
            f"is {allowed} ({profile} profile)")
    return kept


def longtailed_indices(
    targets: np.ndarray, num_classes: int, imbalance_ratio: float, profile: str = "exp", seed: int = 0
) -> np.ndarray:
    """Indices of the long-tailed subset, exactly as the papers build it with ``seed`` 0.

    The RNG is seeded once; for each class in order its indices are shuffled and the first
    ``n_i`` kept, so a subset at a higher ratio lies inside the one at a lower ratio.
    ``n_max`` is the smallest class size (5000 / 500 on CIFAR, where all are equal). Another
    ``seed`` draws other images with the same per-class counts.
    """
    targets = np.asarray(targets)
    kept = check_imbalance_ratio(np.bincount(targets, minlength=num_classes), imbalance_ratio, profile)
    rng = np.random.RandomState(seed)  # the legacy global-seed stream the papers' code uses
    chosen = []
    for c, n in enumerate(kept):
        idx = np.where(targets == c)[0]
        rng.shuffle(idx)
        chosen.append(idx[:n])
    return np.concatenate(chosen)


def shot_groups(train_counts: np.ndarray, many: int = 100, few: int = 20) -> np.ndarray:
    """'many' (> many images), 'few' (< few images) or 'medium' for each class."""
    counts = np.asarray(train_counts)
    return np.where(counts > many, "many", np.where(counts < few, "few", "medium"))
