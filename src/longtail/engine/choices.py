"""Every named choice of a config, checked before any data is read.

The schema (:mod:`longtail.config`) fixes the closed sets (``train.precision``,
``schedule.name``, ``data.profile``, ...) when a config loads; the components are named from
registries, which grow, so :func:`check_choices` looks them up: the dataset, the test
transform, the model (and its head), the method and every component inside it, found by the
option's name (``loss``, ``*_sampler``, ``*_transform``, ``adaptor``, a loss's ``weights``,
the ``before``/``after`` phases of a deferred sampler or weighting), and the optimizer. Each
spec's options are checked against its factory's signature too. A mistake names the key, the
value and the valid choices.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from ..config import plain
from ..data import SAMPLERS, SOURCES, TRANSFORMS
from ..errors import ConfigError
from ..losses import CLASS_WEIGHTS, LOSSES
from ..methods import METHODS
from ..methods.bbn import ADAPTORS
from ..models import HEADS, MODELS
from ..optimizers import OPTIMIZERS, optimizer_spec
from ..registry import Registry

# The option names (their last word: ``rebalancing_sampler`` is a sampler) that name a component.
COMPONENT_OPTIONS = {"loss": LOSSES, "sampler": SAMPLERS, "transform": TRANSFORMS, "adaptor": ADAPTORS,
                     "weights": CLASS_WEIGHTS, "head": HEADS}
DEFERRED_PHASES = ("before", "after")  # of a deferred component: from its own registry


def check_spec(registry: Registry, spec: Any, key: str) -> None:
    """Check a component spec and the components named inside it; ``key`` is where it sits."""
    try:
        _, options = registry.check(spec)
    except ConfigError as error:
        raise ConfigError(f"{key}: {error}") from None
    for option, value in options.items():
        inner = registry if option in DEFERRED_PHASES else COMPONENT_OPTIONS.get(option.rsplit("_", 1)[-1])
        if inner is not None and value is not None:
            check_spec(inner, value, f"{key}.{option}")


def check_choices(config: DictConfig) -> None:
    """Raise :class:`~longtail.errors.ConfigError` for the first unknown name or option in ``config``."""
    check_spec(SOURCES, plain(config.data.source), "data.source")
    check_spec(TRANSFORMS, plain(config.data.test_transform), "data.test_transform")
    if not isinstance(plain(config.model), dict):  # the method adds num_classes to the mapping
        raise ConfigError(f"model must be a mapping with a 'name' key, e.g. model: {{name: resnet32}}; "
                          f"got {plain(config.model)!r}")
    check_spec(MODELS, plain(config.model), "model")
    check_spec(METHODS, plain(config.method), "method")
    try:
        check_spec(OPTIMIZERS, optimizer_spec(plain(config.optim)), "optim")
    except ConfigError as error:
        raise ConfigError(f"{error} (an option inherited from another optimizer's config is dropped "
                          "by setting it to null, e.g. optim.nesterov=null)") from None
    device = config.train.device
    if device != "auto":
        try:
            torch.device(device)
        except RuntimeError:
            raise ConfigError(f"unknown train.device {device!r}; choose auto, cpu, cuda or cuda:N") from None
