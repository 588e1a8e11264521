"""Every random stream of a run, derived in this one place from (seed, purpose, epoch, rank).

NumPy's :class:`~numpy.random.SeedSequence` hashes the run's ``seed`` with the spawn key
``(purpose, stream, epoch, rank, worker)`` into a 64-bit seed for a :class:`torch.Generator`
or torch's global RNG. Distinct keys give independent streams with distinct seeds, where sums
and products of small integers collide (the ad-hoc arithmetic this replaced gave two streams
the same seed). Each epoch's streams follow from the epoch number alone, so ``--resume``
continues exactly.

=========  =============================================================================
init       model initialisation: the same on every rank (DDP starts from one model)
sampler    stream ``stream``'s draw for an epoch: the same on every rank, each takes its shard
augment    stream ``stream``'s batched augmentation on rank ``rank``
loader     the DataLoader's own generator of a stream on a rank (workers are seeded below)
worker     DataLoader worker ``worker``'s per-image augmentation of a stream on a rank
global     torch's global RNG during an epoch on a rank: Mixup's draws, BBN's Beta adaptor,
           per-image pipelines run in the training process
=========  =============================================================================

The long-tailed subset is not among them: ``data.subset_seed`` seeds the legacy NumPy stream
the papers' code uses, so that seed 0 keeps the papers' images.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

from .errors import ConfigError

Purpose = Literal["init", "sampler", "augment", "loader", "worker", "global"]
PURPOSES: tuple[str, ...] = get_args(Purpose)


def derive(seed: int, purpose: Purpose, epoch: int = 0, rank: int = 0, stream: int = 0, worker: int = 0) -> int:
    """The 64-bit seed of one random stream of a run with seed ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    key = (PURPOSES.index(purpose), stream, epoch, rank, worker)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])


def generator(seed: int, purpose: Purpose, epoch: int = 0, rank: int = 0, stream: int = 0,
              worker: int = 0) -> torch.Generator:
    """A CPU generator for one random stream (see :func:`derive`)."""
    return torch.Generator().manual_seed(derive(seed, purpose, epoch, rank, stream, worker))


def seed_global(seed: int, purpose: Purpose, epoch: int = 0, rank: int = 0, stream: int = 0,
                worker: int = 0) -> None:
    """Seed torch's global RNG, which every per-image augmentation draws from, for one stream."""
    torch.manual_seed(derive(seed, purpose, epoch, rank, stream, worker))
