"""Learning-rate schedules as multiplicative factors of the base learning rate."""

from __future__ import annotations

import math

from ..errors import ConfigError


def lr_factor(name: str, epoch: int, progress: float, epochs: int, warmup_epochs: int,
              milestones: list[int], gamma: float, min_factor: float = 0.0,
              warmup_start_factor: float = 0.0, warmup_divisor: int | None = None) -> float:
    """Factor at step ``progress`` (0..1) of 0-based ``epoch``.

    Warm-up is set once per epoch, as in the papers' code: during the first ``warmup_epochs``
    epochs the factor is ``s + (1 - s) * (epoch + 1) / d`` with ``s = warmup_start_factor``
    and ``d = warmup_divisor`` (default ``warmup_epochs``). BBN's code starts from ``s = 1/3``;
    PaCo's CIFAR code ramps ``(epoch + 1) / 10`` over 11 epochs, so its 11th epoch runs at 1.1.
    ``multistep`` multiplies by ``gamma`` for each milestone ``m`` with ``epoch >= m``: the
    lower rate applies after ``m`` epochs, from 1-based epoch ``m + 1``. ``cosine`` decays from
    1 to ``min_factor`` over the epochs after warm-up, step by step.
    """
    if epoch < warmup_epochs:
        return warmup_start_factor + (1 - warmup_start_factor) * (epoch + 1) / (warmup_divisor or warmup_epochs)
    if name == "multistep":
        return gamma ** sum(epoch >= m for m in milestones)
    if name == "cosine":
        t = (epoch - warmup_epochs + progress) / max(epochs - warmup_epochs, 1)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
    raise ConfigError(f"unknown schedule.name {name!r}; choose multistep or cosine")


def schedule_phases(name: str, epochs: int, warmup_epochs: int, milestones: list[int],
                    gamma: float) -> list[tuple[str, int, int]]:
    """The schedule's phases as ``(label, first, last)`` 1-based epochs, for analyses that look at
    training stage by stage: the warm-up, then each learning-rate level of ``multistep`` (the
    base rate until the first milestone, x gamma until the next, ...), or the post-warm-up epochs
    of ``cosine`` in quarters."""
    start = min(warmup_epochs, epochs)
    if name == "multistep":
        inner = [m for m in sorted(milestones) if start < m < epochs]
        labels = [f"lr x{gamma ** sum(m <= bound for m in milestones):g}" for bound in [start, *inner]]
    elif name == "cosine":
        inner = sorted({start + (epochs - start) * k // 4 for k in (1, 2, 3)} - {start, epochs})
        labels = [f"cosine {k + 1}/{len(inner) + 1}" for k in range(len(inner) + 1)]
    else:
        raise ConfigError(f"unknown schedule.name {name!r}; choose multistep or cosine")
    bounds = [start, *inner, epochs]
    phases = [("warm-up", 1, start)] if start else []
    return phases + [(label, first + 1, last) for label, first, last in zip(labels, bounds, bounds[1:]) if last > first]
