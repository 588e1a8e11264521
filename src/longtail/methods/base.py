"""What a method is: a model, the data streams it trains on, and its training step.

The engine owns the loop, devices, precision, DDP, checkpoints and evaluation; a method only
says which streams it wants (:meth:`Method.streams`), what one step's loss is
(:meth:`Method.forward`, so that DDP can wrap the whole step) and how it predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.streams import Batch
from ..epochs import EpochDependent
from ..errors import ConfigError
from ..registry import Registry

METHODS = Registry("method")  # register a method class with @METHODS.register("name")


@dataclass
class StreamSpec:
    """A sampler spec and one transform spec per view, e.g. ``("uniform", ["crop_flip"])``."""

    sampler: Any
    views: list[Any]


@dataclass
class StepOutput:
    """The step's loss, and plain floats the engine averages over the epoch into metrics.jsonl."""

    loss: torch.Tensor
    logs: dict[str, float] = field(default_factory=dict)


class Method(nn.Module):
    """Base class. ``self.model`` maps images to logits at inference time."""

    model: nn.Module

    def __init__(self, class_counts: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("class_counts", torch.as_tensor(np.asarray(class_counts)), persistent=False)

    def streams(self) -> dict[str, StreamSpec]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called by the engine before each 0-based ``epoch``: moves every sub-module that
        follows the epoch (:class:`~longtail.epochs.EpochDependent`: DRW loss weights, BBN's
        adaptor, ...) on, wherever it sits in the method."""
        for module in self.modules():
            if module is not self and isinstance(module, EpochDependent):
                module.set_epoch(epoch)

    def forward(self, batches: dict[str, Batch]) -> StepOutput:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, **options: Any) -> torch.Tensor:
        if options:
            raise ConfigError(f"{type(self).__name__} takes no prediction options (such as BBN's "
                              f"--branch), got {options}")
        return self.model(images)
