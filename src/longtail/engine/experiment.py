"""Build everything a config describes: the data, the long-tailed subset and the method."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from ..config import plain
from ..data import SAMPLERS, SOURCES, TRANSFORMS, DataSource, ImageSet, longtailed_indices, make_stream
from ..data.streams import LoaderSettings
from ..methods import METHODS, Method
from ..registry import ConfigError
from .choices import check_choices


@dataclass
class Experiment:
    config: DictConfig
    source: DataSource
    train: ImageSet
    class_counts: np.ndarray
    method: Method

    @property
    def test(self) -> ImageSet:
        return self.source.test

    def transform(self, spec: Any):
        return TRANSFORMS.build(plain(spec), mean=self.source.mean, std=self.source.std,
                                image_size=self.source.image_size)

    def train_streams(self, world_size: int = 1, rank: int = 0, pin_memory: bool = False) -> dict:
        """One stream per entry of the method's :meth:`~Method.streams`, in that order."""
        config = self.config
        if config.train.batch_size % world_size:
            raise ConfigError(f"train.batch_size {config.train.batch_size} must divide by the "
                              f"{world_size} processes")
        streams = {}
        for index, (name, spec) in enumerate(self.method.streams().items()):
            sampler = SAMPLERS.build(
                plain(spec.sampler), targets=self.train.targets, seed=config.seed, stream=index,
                epochs=config.train.epochs, num_replicas=world_size, rank=rank,
            )
            # Each rank augments its shard with its own draws (rank 0 with those of one process).
            streams[name] = make_stream(
                self.train, sampler, config.train.batch_size // world_size,
                [self.transform(view) for view in spec.views], drop_last=True,
                seed=config.seed, stream=index, rank=rank, loader=self.loader_settings(pin_memory),
            )
        return streams

    def loader_settings(self, pin_memory: bool = False, persistent_workers: bool | None = None) -> LoaderSettings:
        """``train``'s DataLoader settings; ``pin_memory`` applies where the config leaves it unset."""
        train = self.config.train
        return LoaderSettings(
            train.num_workers, train.prefetch_factor,
            train.persistent_workers if persistent_workers is None else persistent_workers,
            pin_memory if train.pin_memory is None else train.pin_memory,
        )

    def test_stream(self, batch_size: int = 500):
        return self.unaugmented_stream(self.test, batch_size)

    def unaugmented_stream(self, images: ImageSet, batch_size: int = 500):
        """Every image of ``images`` once, in order, through the test transform."""
        # Evaluation runs now and then: its workers need not wait, idle, between evaluations.
        return make_stream(images, None, batch_size, [self.transform(self.config.data.test_transform)],
                           drop_last=False, loader=self.loader_settings(persistent_workers=False))


def build_experiment(config: DictConfig) -> Experiment:
    check_choices(config)  # every name, before any data is read
    data = config.data
    source = SOURCES.build(plain(data.source), root=data.root)
    train = source.train
    if data.imbalance_ratio is not None:
        train = train.subset(longtailed_indices(train.targets, source.num_classes,
                                                data.imbalance_ratio, data.profile, data.subset_seed))
    for split, images in (("training", train), ("test", source.test)):  # before any step
        images.check_readable(split, config.train.num_workers)
    counts = np.bincount(train.targets, minlength=source.num_classes)
    method = METHODS.build(
        plain(config.method), model_spec=plain(config.model), num_classes=source.num_classes,
        class_counts=counts, epochs=config.train.epochs,
    )
    return Experiment(config, source, train, counts, method)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware. CPUs without AVX-512 (AVX2 only) emulate it:
    a bf16 ResNet-32 step ran about 10 times slower than fp32 on such a CPU (benchmarks/README.md:
    22 against 217 images/s on 2 AMD EPYC cores)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str | None]:
    """The precision to train in (``auto`` becomes bf16 where ``device`` computes it natively,
    fp32 elsewhere) and a line to tell the user, if any: what ``auto`` chose, or a warning for an
    explicit bf16 that this device can only emulate."""
    if precision == "auto":
        if native_bf16(device):
            return "bf16", "train.precision=auto: bf16 (autocast; the device computes bf16 natively)"
        return "fp32", (f"train.precision=auto: fp32 ({device.type} without native bf16, where bf16 "
                        "autocast would be emulated and about 10 times slower)")
    if precision == "bf16" and not native_bf16(device):
        return precision, (f"warning: train.precision=bf16 on a {device.type} without native bf16: "
                           "autocast is emulated and about 10 times slower than fp32 here; add "
                           "train.precision=fp32 (or auto) unless this run must repeat a bf16 recipe")
    return precision, None


def autocast(precision: str, device: torch.device):
    """The autocast context for a precision name (fp32 | bf16 | fp16)."""
    if precision == "fp32":
        return nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs CUDA; use bf16 or fp32 on the CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    raise ConfigError(f"unknown train.precision {precision!r}; choose fp32, bf16 or fp16")


@torch.no_grad()
def predict(method: Method, stream, device: torch.device, precision: str = "fp32",
            channels_last: bool = False, **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels for every batch of ``stream`` (the method in eval mode)."""
    method.eval()
    logits, targets = [], []
    for batch in stream:
        batch = batch.to(device, channels_last)
        with autocast(precision, device):
            logits.append(method.predict(batch.images, **options).float().cpu())
        targets.append(batch.targets.cpu())
    return torch.cat(logits), torch.cat(targets)
