"""Learning-rate schedules as multiplicative factors of the base learning rate."""

from __future__ import annotations

import math


def lr_factor(name: str, epoch: int, progress: float, epochs: int, warmup_epochs: int,
              milestones: list[int], gamma: float, min_factor: float = 0.0) -> float:
    """Factor at step ``progress`` (0..1) of 0-based ``epoch``.

    Warm-up is linear per epoch, ``(epoch + 1) / warmup_epochs``, as in the papers' code.
    ``multistep`` multiplies by ``gamma`` at each milestone epoch; ``cosine`` decays from 1
    to ``min_factor`` over the epochs after warm-up, step by step.
    """
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    if name == "multistep":
        return gamma ** sum(epoch >= m for m in milestones)
    if name == "cosine":
        t = (epoch - warmup_epochs + progress) / max(epochs - warmup_epochs, 1)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown lr schedule {name!r}; choose multistep or cosine")
