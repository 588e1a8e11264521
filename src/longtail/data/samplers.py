"""Samplers over a labelled training set, each a :class:`torch.utils.data.Sampler`.

They know class counts, never losses. Every epoch's draw depends only on the run's seed, the
stream's index and the epoch (:mod:`longtail.seeding`), which makes resuming exact, and under
DDP each rank takes its own shard of the same global draw (``rank::world_size``), as
:class:`~torch.utils.data.DistributedSampler` with ``drop_last=True`` does. The global draw does
not depend on the number of processes, and the dropped tail (fewer samples than processes) would
not fill a global batch anyway, so any number of processes trains on the batches one process would.

Class-aware samplers draw a class from ``p`` and then an image of that class uniformly with
replacement; they differ only in ``p``:

=====================  ================================================
uniform                every image once per epoch (instance-uniform)
class_balanced         p_i = 1 / C
reversed               p_i ∝ N_max / N_i (BBN's re-balancing branch)
square_root            p_i ∝ sqrt(N_i)
progressive            p_i = (1 - t) N_i / N + t / C,  t = epoch / (epochs - 1)
=====================  ================================================

``deferred`` composes two samplers and switches from one to the other at an epoch; deferred
re-sampling (DRS, Cao et al. 2019) is
``{name: deferred, before: uniform, after: class_balanced, switch_epoch: 160}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..errors import ConfigError
from ..registry import Registry
from ..seeding import generator

SAMPLERS = Registry("sampler", supplied=("targets", "seed", "stream", "epochs", "num_replicas", "rank"))


class LabelSampler(Sampler[int]):
    """Base class: DDP sharding, ``set_epoch`` and one epoch's global draw.

    ``seed`` is the run's and ``stream`` the index of the data stream the sampler feeds: two
    samplers of one run (BBN's two branches) draw independently.
    """

    def __init__(
        self,
        targets: np.ndarray,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        stream: int = 0,
    ) -> None:
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        self.class_counts = torch.bincount(self.targets)
        self.seed, self.stream = seed, stream
        self.epoch = 0
        distributed = dist.is_available() and dist.is_initialized()
        self.num_replicas = num_replicas or (dist.get_world_size() if distributed else 1)
        self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
        self.total = num_samples or len(self.targets)  # the global draw
        self.num_samples = self.total // self.num_replicas  # per rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def draw(self, generator: torch.Generator, n: int) -> torch.Tensor:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        indices = self.draw(generator(self.seed, "sampler", self.epoch, stream=self.stream), self.total)
        return iter(indices[self.rank : self.num_samples * self.num_replicas : self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


@SAMPLERS.register("uniform")
class UniformSampler(LabelSampler):
    """Instance-uniform: a fresh permutation of the images every epoch."""

    def draw(self, generator: torch.Generator, n: int) -> torch.Tensor:
        size = len(self.targets)
        order = torch.cat([torch.randperm(size, generator=generator) for _ in range(-(-n // size))])
        return order[:n]


class ClassAwareSampler(LabelSampler):
    """Draw classes from :meth:`class_probabilities`, then an image of the class uniformly."""

    def __init__(self, targets: np.ndarray, num_samples: int | None = None, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None, stream: int = 0) -> None:
        super().__init__(targets, num_samples, seed, num_replicas, rank, stream)
        self.by_class = torch.argsort(self.targets, stable=True)
        self.class_start = torch.cumsum(self.class_counts, 0) - self.class_counts

    def class_probabilities(self) -> torch.Tensor:
        raise NotImplementedError

    def draw(self, generator: torch.Generator, n: int) -> torch.Tensor:
        probabilities = self.class_probabilities()
        classes = torch.multinomial(probabilities, n, replacement=True, generator=generator)
        offset = (torch.rand(n, generator=generator, dtype=torch.float64) * self.class_counts[classes]).long()
        return self.by_class[self.class_start[classes] + offset]

    def _present(self) -> torch.Tensor:
        return (self.class_counts > 0).double()


@SAMPLERS.register("class_balanced")
class ClassBalancedSampler(ClassAwareSampler):
    """Every class equally likely."""

    def class_probabilities(self) -> torch.Tensor:
        return self._present() / self._present().sum()


@SAMPLERS.register("reversed")
class ReversedSampler(ClassAwareSampler):
    """BBN's reversed sampler: class probability proportional to N_max / N_i."""

    def class_probabilities(self) -> torch.Tensor:
        counts = self.class_counts.double()
        weights = torch.where(counts > 0, counts.max() / counts.clamp(min=1), 0.0)
        return weights / weights.sum()


@SAMPLERS.register("square_root")
class SquareRootSampler(ClassAwareSampler):
    """Class probability proportional to sqrt(N_i)."""

    def class_probabilities(self) -> torch.Tensor:
        weights = self.class_counts.double().sqrt()
        return weights / weights.sum()


@SAMPLERS.register("progressive")
class ProgressivelyBalancedSampler(ClassAwareSampler):
    """Moves linearly from instance-uniform (first epoch) to class-balanced (last epoch)."""

    def __init__(self, targets: np.ndarray, epochs: int, num_samples: int | None = None,
                 seed: int = 0, num_replicas: int | None = None, rank: int | None = None,
                 stream: int = 0) -> None:
        super().__init__(targets, num_samples, seed, num_replicas, rank, stream)
        self.epochs = epochs

    def class_probabilities(self) -> torch.Tensor:
        t = self.epoch / max(self.epochs - 1, 1)
        instance = self.class_counts.double() / self.class_counts.sum()
        balanced = self._present() / self._present().sum()
        return (1 - t) * instance + t * balanced


@SAMPLERS.register("deferred")
class DeferredSampler(Sampler[int]):
    """Draws with ``before`` until 0-based epoch ``switch_epoch``, with ``after`` from then on.

    Both inner samplers get the same targets, seed, stream and sharding, and follow ``set_epoch``.
    """

    def __init__(self, targets: np.ndarray, after: Any, switch_epoch: int, before: Any = "uniform",
                 seed: int = 0, epochs: int | None = None, num_replicas: int | None = None,
                 rank: int | None = None, stream: int = 0) -> None:
        context = dict(targets=targets, seed=seed, epochs=epochs, num_replicas=num_replicas,
                       rank=rank, stream=stream)
        self.before = SAMPLERS.build(before, **context)
        self.after = SAMPLERS.build(after, **context)
        if len(self.before) != len(self.after):  # the engine fixes the steps per epoch once
            raise ConfigError(f"deferred sampler: before draws {len(self.before)} samples an epoch "
                              f"and after {len(self.after)}; they must draw the same number")
        self.switch_epoch = switch_epoch
        self.epoch = 0

    @property
    def active(self) -> Sampler[int]:
        return self.after if self.epoch >= self.switch_epoch else self.before

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.before.set_epoch(epoch)
        self.after.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.active)

    def __len__(self) -> int:
        return len(self.active)
