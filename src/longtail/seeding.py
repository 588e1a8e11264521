"""Every random stream of a run, derived in this one place from (seed, purpose, epoch, rank).

NumPy's :class:`~numpy.random.SeedSequence` hashes the run's ``seed`` with the spawn key
``(purpose, stream, epoch, rank, position)`` into a 64-bit seed for a :class:`torch.Generator`
or the global RNGs. Distinct keys give independent streams with distinct seeds, where sums and
products of small integers collide (the ad-hoc arithmetic this replaced gave two streams the
same seed). Each epoch's streams follow from the epoch number alone, so ``--resume`` continues
exactly.

=========  =============================================================================
init       model initialisation: the same on every rank (DDP starts from one model)
sampler    stream ``stream``'s draw for an epoch: the same on every rank, each takes its shard
augment    stream ``stream``'s batched augmentation on rank ``rank``
sample     the per-image augmentation of the sample at ``position`` in an epoch of a stream on a
           rank, whichever DataLoader worker loads it
global     the global RNGs during an epoch on a rank: Mixup's draws, BBN's Beta adaptor
=========  =============================================================================

The long-tailed subset is not among them: ``data.subset_seed`` seeds the legacy NumPy stream
the papers' code uses, so that seed 0 keeps the papers' images.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

import numpy as np
import torch

from .errors import ConfigError

Purpose = Literal["init", "sampler", "augment", "sample", "global"]
PURPOSES: tuple[str, ...] = get_args(Purpose)


def derive(seed: int, purpose: Purpose, epoch: int = 0, rank: int = 0, stream: int = 0, position: int = 0) -> int:
    """The 64-bit seed of one random stream of a run with seed ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    key = (PURPOSES.index(purpose), stream, epoch, rank, position)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])


def generator(seed: int, purpose: Purpose, epoch: int = 0, rank: int = 0, stream: int = 0) -> torch.Generator:
    """A CPU generator for one random stream (see :func:`derive`)."""
    return torch.Generator().manual_seed(derive(seed, purpose, epoch, rank, stream))


def _seed_all(derived: int) -> None:
    # torchvision draws from torch's CPU generator, timm from Python's and NumPy's
    torch.manual_seed(derived)
    random.seed(derived)
    np.random.seed(derived % 2**32)


def seed_global(seed: int, purpose: Purpose, epoch: int = 0, rank: int = 0) -> None:
    """Seed the global RNGs (torch's, Python's and NumPy's) for one stream."""
    _seed_all(derive(seed, purpose, epoch, rank))


@contextmanager
def seeded(seed: int, purpose: Purpose, epoch: int, rank: int, stream: int, position: int,
           restore: bool) -> Iterator[None]:
    """The global RNGs seeded for one stream meanwhile; with ``restore`` their previous states
    come back afterwards (a sample augmented in the training process leaves its draws alone)."""
    saved = (torch.default_generator.get_state(), random.getstate(), np.random.get_state()) if restore else None
    _seed_all(derive(seed, purpose, epoch, rank, stream, position))
    try:
        yield
    finally:
        if saved is not None:
            torch.default_generator.set_state(saved[0])
            random.setstate(saved[1])
            np.random.set_state(saved[2])
