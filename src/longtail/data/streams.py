"""Data streams: a split + a sampler + one or more view pipelines -> batches.

A :class:`Batch` holds one tensor per view and the labels. In-memory data whose views all
have a batched form goes through :class:`InMemoryStream` (gather + batched augmentation in
the training process); everything else through a :class:`~torch.utils.data.DataLoader` with
worker processes decoding the files and running the per-image pipelines.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler, get_worker_info

from ..epochs import EpochDependent
from ..seeding import generator, seeded
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
    """Batches gathered from uint8 images in memory and augmented as whole batches.

    The augmentation draws follow (seed, stream, epoch), and the DDP ``rank``: each rank draws
    its own, rank 0 those of a single process.
    """

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


@dataclass(frozen=True)
class LoaderSettings:
    """How a :class:`~torch.utils.data.DataLoader` runs the per-image pipelines (``train.*``)."""

    num_workers: int = 2
    prefetch_factor: int = 2  # batches each worker prepares ahead
    persistent_workers: bool = True  # keep the workers from one epoch to the next
    pin_memory: bool = False  # page-locked batches, for asynchronous copies to a GPU


class _KeyedBatches(Sampler[list[tuple[int, int, int]]]):
    """Batches of ``(epoch, position in the epoch, image index)`` keys: the worker that loads a
    sample seeds its augmentation from the key, whichever worker it is and however long it has run."""

    def __init__(self, batches: BatchSampler, stream: _EpochStream) -> None:
        self.batches, self.stream = batches, stream

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        position = 0
        for batch in self.batches:
            yield [(self.stream.epoch, position + i, index) for i, index in enumerate(batch)]
            position += len(batch)


class _ViewDataset(Dataset):
    def __init__(self, images: ImageSet, views: Sequence[Pipeline], seed: int, stream: int, rank: int) -> None:
        self.images, self.views = images, [view.per_image for view in views]
        self.seed, self.stream, self.rank = seed, stream, rank

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int]):
        epoch, position, index = key
        # In the training process (no workers) the training step's random state is kept.
        with seeded(self.seed, "sample", epoch, self.rank, self.stream, position, restore=get_worker_info() is None):
            image = self.images.load(index)
            return [view(image) for view in self.views], int(self.images.targets[index])


def _worker_setup(_: int) -> None:
    torch.set_num_threads(1)  # workers share the cores with the training threads
    # Ctrl-C reaches the whole process group: the training process stops the workers in order,
    # whereas a worker that quit on its own could die in the middle of handing a batch over.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _interrupt_after_receiving() -> Iterator[None]:
    """Hold Ctrl-C back until the batch being received is complete, then raise it.

    A worker hands a batch's tensors over through a socket per tensor; a KeyboardInterrupt in the
    middle of that would cut the socket and make the worker print a traceback. Only the default
    handler in the main thread is replaced: a handler of the caller's own is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    held: list[int] = []

    def hold(signum: int, _frame) -> None:
        if held:  # a second Ctrl-C does not wait (a worker that hangs must not trap the user)
            raise KeyboardInterrupt
        held.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


class LoaderStream(_EpochStream):
    """Per-image pipelines in DataLoader workers.

    Each sample's augmentation is seeded from (seed, stream, rank, epoch, its position in the
    epoch) by :mod:`longtail.seeding`, so the batches are the same with any number of workers, with persistent workers,
    and after ``--resume``. One DataLoader serves every epoch, so persistent workers start once.
    """

    def __init__(self, images: ImageSet, sampler: Sampler[int] | None, batch_size: int,
                 views: Sequence[Pipeline], drop_last: bool, seed: int, stream: int,
                 loader: LoaderSettings, rank: int = 0) -> None:
        dataset = _ViewDataset(images, views, seed, stream, rank)
        self.sampler = sampler if sampler is not None else SequentialSampler(dataset)
        self.epoch = 0
        self.batches = _KeyedBatches(BatchSampler(self.sampler, batch_size, drop_last), self)
        workers = loader.num_workers > 0
        self.loader = DataLoader(
            dataset, batch_sampler=self.batches, num_workers=loader.num_workers,
            pin_memory=loader.pin_memory, worker_init_fn=_worker_setup,
            prefetch_factor=loader.prefetch_factor if workers else None,
            persistent_workers=loader.persistent_workers and workers,
            generator=torch.Generator(),  # the workers' base seed, unused, is not drawn from torch's
        )

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        batches = iter(self.loader)
        while True:
            with _interrupt_after_receiving():
                received = next(batches, None)
            if received is None:
                return
            views, targets = received
            yield Batch(list(views), targets)


def make_stream(images: ImageSet, sampler: Sampler[int] | None, batch_size: int,
                views: Sequence[Pipeline], *, drop_last: bool, seed: int = 0, stream: int = 0,
                rank: int = 0, loader: LoaderSettings = LoaderSettings()) -> InMemoryStream | LoaderStream:
    """The fastest stream that can run these views on this data."""
    if images.in_memory and all(view.batched is not None for view in views):
        return InMemoryStream(images, sampler, batch_size, views, drop_last, seed, stream, rank)
    return LoaderStream(images, sampler, batch_size, views, drop_last, seed, stream, loader, rank)
