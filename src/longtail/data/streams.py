"""Data streams: a split + a sampler + one or more view pipelines -> batches.

A :class:`Batch` holds one tensor per view and the labels. In-memory data whose views all
have a batched form goes through :class:`InMemoryStream` (gather + batched augmentation in
the training process); everything else through a :class:`~torch.utils.data.DataLoader` with
worker processes running the per-image pipelines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from ..epochs import EpochDependent
from ..seeding import generator, seed_global
from .sources import ImageSet
from .transforms import Pipeline


@dataclass
class Batch:
    views: list[torch.Tensor]
    targets: torch.Tensor

    @property
    def images(self) -> torch.Tensor:
        return self.views[0]

    def to(self, device: torch.device, channels_last: bool = False) -> Batch:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        views = [v.to(device, non_blocking=True, memory_format=fmt) for v in self.views]
        return Batch(views, self.targets.to(device, non_blocking=True))


class _EpochStream:
    """Shared by the streams: ``set_epoch`` moves the sampler and the augmentation seed on."""

    sampler: Sampler[int] | None
    epoch: int

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if isinstance(self.sampler, EpochDependent):
            self.sampler.set_epoch(epoch)


class InMemoryStream(_EpochStream):
    """Batches gathered from uint8 images in memory and augmented as whole batches."""

    def __init__(self, images: ImageSet, sampler: Sampler[int] | None, batch_size: int,
                 views: Sequence[Pipeline], drop_last: bool, seed: int, stream: int, rank: int) -> None:
        self.images = torch.from_numpy(images.images)
        self.targets = torch.from_numpy(images.targets)
        self.sampler = sampler
        self.batch_size = batch_size
        self.views = [view.batched for view in views]
        self.drop_last = drop_last
        self.seed, self.stream, self.rank, self.epoch = seed, stream, rank, 0

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.targets)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order = torch.arange(len(self.targets)) if self.sampler is None else torch.tensor(list(self.sampler))
        draws = generator(self.seed, "augment", self.epoch, self.rank, self.stream)
        for b in range(len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            images = self.images[index]
            yield Batch([view(images, draws) for view in self.views], self.targets[index])


class _ViewDataset(Dataset):
    def __init__(self, images: ImageSet, views: Sequence[Pipeline]) -> None:
        self.images, self.views = images, [view.per_image for view in views]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images.load(index)
        return [view(image) for view in self.views], int(self.images.targets[index])


class _WorkerSeed:
    """A DataLoader ``worker_init_fn``: one thread, and the worker's own stream (:mod:`longtail.seeding`)."""

    def __init__(self, seed: int, epoch: int, rank: int, stream: int) -> None:
        self.seed, self.epoch, self.rank, self.stream = seed, epoch, rank, stream

    def __call__(self, worker: int) -> None:
        torch.set_num_threads(1)  # workers share the cores with the training threads
        seed_global(self.seed, "worker", self.epoch, self.rank, self.stream, worker)


class LoaderStream(_EpochStream):
    """Per-image pipelines in DataLoader workers, each seeded from (seed, epoch, rank, stream, worker).

    With ``num_workers=0`` the pipelines draw from the global RNG, which the trainer reseeds
    from (seed, epoch, rank) at the start of every epoch.
    """

    def __init__(self, images: ImageSet, sampler: Sampler[int] | None, batch_size: int,
                 views: Sequence[Pipeline], drop_last: bool, seed: int, stream: int, rank: int,
                 num_workers: int, pin_memory: bool) -> None:
        self.dataset = _ViewDataset(images, views)
        self.sampler = sampler if sampler is not None else SequentialSampler(self.dataset)
        self.batches = BatchSampler(self.sampler, batch_size, drop_last)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.seed, self.stream, self.rank, self.epoch = seed, stream, rank, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        loader = DataLoader(
            self.dataset, batch_sampler=self.batches, num_workers=self.num_workers,
            pin_memory=self.pin_memory, worker_init_fn=_WorkerSeed(self.seed, self.epoch, self.rank, self.stream),
            generator=generator(self.seed, "loader", self.epoch, self.rank, self.stream),
            persistent_workers=False,
        )
        for views, targets in loader:
            yield Batch(list(views), targets)


def make_stream(images: ImageSet, sampler: Sampler[int] | None, batch_size: int,
                views: Sequence[Pipeline], *, drop_last: bool, seed: int = 0, stream: int = 0,
                rank: int = 0, num_workers: int = 2, pin_memory: bool = False) -> InMemoryStream | LoaderStream:
    """The fastest stream that can run these views on this data; its random draws are stream
    ``stream``'s of a run with seed ``seed`` on rank ``rank`` (:mod:`longtail.seeding`)."""
    if images.in_memory and all(view.batched is not None for view in views):
        return InMemoryStream(images, sampler, batch_size, views, drop_last, seed, stream, rank)
    return LoaderStream(images, sampler, batch_size, views, drop_last, seed, stream, rank,
                        num_workers, pin_memory)
