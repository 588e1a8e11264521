"""The optimizer: a component named in the config like every other.

``optim.name`` is any optimizer of :mod:`torch.optim` by its lower-case class name (``sgd``,
``adamw``, ``rmsprop``, ...); the other keys of the ``optim`` section are its options, checked
against its signature when the config loads. ``lr`` is the base of the learning-rate schedule.
An option set to null is dropped, as an inherited option of another optimizer must be:
``optim.name=adamw optim.nesterov=null``. ``no_weight_decay_on: [bn, bias]`` puts the batch-norm
parameters and the biases into a second parameter group without weight decay; by default every
trained parameter is in one group.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from typing import Any

import torch
from torch import nn

from .errors import ConfigError
from .registry import Registry

# Not these: LBFGS steps through a closure, SparseAdam takes sparse gradients only and Muon 2-D
# weights only (no convolutions, batch norms or biases); none fits the training loop.
_UNFIT = ("Optimizer", "LBFGS", "SparseAdam", "Muon")
OPTIMIZERS = Registry("optimizer", supplied=("params",), factories={
    name.lower(): optimizer for name, optimizer in vars(torch.optim).items()
    if inspect.isclass(optimizer) and issubclass(optimizer, torch.optim.Optimizer) and name not in _UNFIT})

# Keys of the ``optim`` section that configure longtail, not the optimizer.
OWN_KEYS = ("no_weight_decay_on",)
_BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def optimizer_spec(optim: Mapping[str, Any]) -> dict[str, Any]:
    """The registry spec in an ``optim`` section: its name and the optimizer's own options. An
    option set to null is left to the optimizer's default (a config cannot delete an inherited
    key, e.g. SGD's ``nesterov`` when switching to ``adamw``)."""
    return {key: value for key, value in optim.items() if key not in OWN_KEYS and value is not None}


def no_decay_parameters(module: nn.Module, kinds: Collection[str]) -> set[nn.Parameter]:
    """The parameters of ``module`` that ``kinds`` exempts from weight decay: ``bn``, those of
    batch-norm layers; ``bias``, every bias."""
    exempt = set()
    for submodule in module.modules():
        for name, parameter in submodule.named_parameters(recurse=False):
            if ("bn" in kinds and isinstance(submodule, _BATCH_NORM)) or ("bias" in kinds and name == "bias"):
                exempt.add(parameter)
    return exempt


def build_optimizer(module: nn.Module, optim: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer an ``optim`` config section describes, over the trained parameters of ``module``."""
    trained = [p for p in module.parameters() if p.requires_grad]
    kinds = optim.get("no_weight_decay_on") or ()
    if not kinds:
        return OPTIMIZERS.build(optimizer_spec(optim), params=trained)
    exempt = no_decay_parameters(module, kinds)
    name = optim["name"]
    if "weight_decay" not in inspect.signature(OPTIMIZERS.get(name)).parameters:
        raise ConfigError(f"optim.no_weight_decay_on: optimizer {name!r} has no weight decay; "
                          "drop no_weight_decay_on or choose an optimizer with weight_decay")
    groups = [{"params": [p for p in trained if p not in exempt]},
              {"params": [p for p in trained if p in exempt], "weight_decay": 0.0}]
    return OPTIMIZERS.build(optimizer_spec(optim), params=[group for group in groups if group["params"]])
