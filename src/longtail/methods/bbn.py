"""BBN: two data streams, a bilateral-branch model and cumulative learning.

Each step takes an instance-uniform batch for the conventional branch and an independent
reversed-sampler batch for the re-balancing branch, runs each through its branch (the shared
trunk sees both, and its batch-norm statistics are updated by each), mixes the features with
the adaptor α and applies ``α·CE(z, y_c) + (1−α)·CE(z, y_r)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.streams import Batch
from ..losses import LOSSES
from ..models import BilateralBranchNetwork, create
from ..registry import ConfigError, Registry
from .base import METHODS, Method, StepOutput, StreamSpec

ADAPTORS = Registry("adaptor", supplied=("epochs",))


class Adaptor(nn.Module):
    """α as a function of training progress ``t = (T − 1) / T_div``, T the 1-based epoch.

    ``T_div`` is the number of epochs, except that 90 and 180 round up to 100 and 200 as in
    the authors' code (so at 180 epochs α ends near 0.2 instead of 0). A module without
    weights, so that the method's ``set_epoch`` reaches it; calling it gives the current α.
    A ``stochastic`` adaptor draws α anew on every call and ``value`` is the mean of its draws.
    """

    stochastic = False

    def __init__(self, epochs: int, divisor: int | None = None) -> None:
        super().__init__()
        self.divisor = divisor or {90: 100, 180: 200}.get(epochs, epochs)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """α for 0-based ``epoch`` (1-based T = epoch + 1)."""
        self.value = self.alpha(epoch / self.divisor)

    def forward(self) -> float:
        return self.value

    def alpha(self, t: float) -> float:
        raise NotImplementedError


@ADAPTORS.register("parabolic_decay")
class ParabolicDecay(Adaptor):
    """α = 1 − t² (the paper's choice)."""

    def alpha(self, t: float) -> float:
        return 1 - t**2


@ADAPTORS.register("linear_decay")
class LinearDecay(Adaptor):
    """α = 1 − t."""

    def alpha(self, t: float) -> float:
        return 1 - t


@ADAPTORS.register("cosine_decay")
class CosineDecay(Adaptor):
    """α = cos(π/2 · t)."""

    def alpha(self, t: float) -> float:
        return math.cos(math.pi / 2 * t)


@ADAPTORS.register("parabolic_increment")
class ParabolicIncrement(Adaptor):
    """α = t² (re-balancing first: the paper's worst case)."""

    def alpha(self, t: float) -> float:
        return t**2


@ADAPTORS.register("equal_weight")
class EqualWeight(Adaptor):
    """α = 0.5 throughout."""

    def alpha(self, t: float) -> float:
        return 0.5


@ADAPTORS.register("beta")
class BetaDraw(Adaptor):
    """α ~ Beta(a, b) drawn anew every step (Beta(0.2, 0.2) in the paper)."""

    stochastic = True

    def __init__(self, epochs: int, a: float = 0.2, b: float = 0.2) -> None:
        self.a, self.b = a, b  # before the base class asks for alpha()
        super().__init__(epochs)
        cpu = torch.device("cpu")  # a float drawn per step, wherever the model lives
        self.distribution = torch.distributions.Beta(torch.tensor(a, device=cpu), torch.tensor(b, device=cpu))

    def alpha(self, t: float) -> float:
        return self.a / (self.a + self.b)  # the mean; every step draws its own

    def forward(self) -> float:
        return float(self.distribution.sample())


@METHODS.register("bbn")
class BBN(Method):
    """Bilateral-branch network with cumulative learning."""

    def __init__(self, model_spec: dict, num_classes: int, class_counts: np.ndarray, epochs: int,
                 adaptor: Any = "parabolic_decay", conventional_sampler: Any = "uniform",
                 rebalancing_sampler: Any = "reversed", transform: Any = "crop_flip",
                 loss: Any = "ce") -> None:
        super().__init__(class_counts)
        self.model = create(num_classes=num_classes, **model_spec)
        if not isinstance(self.model, BilateralBranchNetwork):
            raise ConfigError(f"method bbn needs a bilateral-branch model such as "
                              f"bbn_resnet32, got {model_spec.get('name')!r}")
        self.adaptor = ADAPTORS.build(adaptor, epochs=epochs)
        self.loss = LOSSES.build(loss, class_counts=class_counts)
        self.samplers = {"conventional": conventional_sampler, "rebalancing": rebalancing_sampler}
        self.transform = transform

    def streams(self) -> dict[str, StreamSpec]:
        return {branch: StreamSpec(sampler, [self.transform]) for branch, sampler in self.samplers.items()}

    def forward(self, batches: dict[str, Batch]) -> StepOutput:
        alpha = self.adaptor()
        conventional, rebalancing = batches["conventional"], batches["rebalancing"]
        logits = self.model.mix(
            self.model.branch_features(conventional.images, "conventional"),
            self.model.branch_features(rebalancing.images, "rebalancing"),
            alpha,
        )
        loss = alpha * self.loss(logits, conventional.targets) + (1 - alpha) * self.loss(logits, rebalancing.targets)
        return StepOutput(loss, {"alpha": alpha})

    @torch.no_grad()
    def predict(self, images: torch.Tensor, branch: str | None = None) -> torch.Tensor:
        """α = 0.5; ``branch`` scores one branch alone (BBN-CB: conventional, BBN-RB: rebalancing)."""
        alpha = {None: 0.5, "conventional": 1.0, "rebalancing": 0.0}
        if branch not in alpha:
            raise ConfigError(f"unknown branch {branch!r}; choose conventional or rebalancing")
        return self.model(images, alpha[branch])
