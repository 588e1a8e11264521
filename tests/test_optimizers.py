"""The optimizer from the ``optim`` section: today's SGD by default, any torch.optim one by name,
and parameter groups without weight decay for batch-norm parameters and biases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from longtail.config import load_config, plain
from longtail.engine import Trainer
from longtail.engine.choices import check_choices
from longtail.errors import CheckpointError, ConfigError
from longtail.models import create
from longtail.optimizers import build_optimizer, no_decay_parameters

CIFAR = Path(__file__).resolve().parents[1] / "configs" / "cifar_lt.yaml"  # SGD, Nesterov
# ResNet-20 for 10 classes, counted by hand: conv1 + bn1, then 3 stages of 3 blocks of
# (conv 3x3, bn, conv 3x3, bn) at 16, 32 and 64 channels (parameter-free shortcuts), then a linear
# head. 19 batch norms of 688 channels in all, a weight and a bias each; one bias, the head's.
BN_TENSORS, BN_ELEMENTS = 2 * 19, 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)
CONV_ELEMENTS = 3 * 16 * 9 + 6 * 16 * 16 * 9 + (16 * 32 + 5 * 32 * 32) * 9 + (32 * 64 + 5 * 64 * 64) * 9
HEAD_WEIGHT, HEAD_BIAS = 64 * 10, 10


def _elements(parameters) -> int:
    return sum(p.numel() for p in parameters)


def test_the_default_is_the_sgd_every_recorded_run_used(configure, tmp_path):
    trainer = Trainer(configure(), tmp_path / "run", log=lambda _: None)
    trained = [p for p in trainer.method.parameters() if p.requires_grad]
    expected = torch.optim.SGD(trained, lr=0.05, momentum=0.9, nesterov=True, weight_decay=2e-4)
    optimizer = trainer.optimizer
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1
    assert all(a is b for a, b in zip(optimizer.param_groups[0]["params"], trained, strict=True))
    assert optimizer.state_dict()["param_groups"] == expected.state_dict()["param_groups"]
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"], group["dampening"]) \
        == (0.05, 0.9, True, 2e-4, 0)


def test_any_torch_optimizer_by_name_with_its_own_options():
    config = load_config(overrides=["optim.name=adamw", "optim.lr=0.001", "optim.betas=[0.9,0.95]",
                                    "optim.weight_decay=0.05"])
    model = create("resnet20", num_classes=10)
    optimizer = build_optimizer(model, plain(config.optim))
    assert type(optimizer) is torch.optim.AdamW
    group = optimizer.param_groups[0]
    assert (group["lr"], tuple(group["betas"]), group["weight_decay"]) == (0.001, (0.9, 0.95), 0.05)
    assert "momentum" not in config.optim  # longtail's defaults are SGD's only


def test_an_inherited_sgd_option_is_dropped_with_null():
    with pytest.raises(ConfigError, match="no option 'momentum', 'nesterov'.*optim.nesterov=null"):
        check_choices(load_config(CIFAR, ["optim.name=adamw"]))
    config = load_config(CIFAR, ["optim.name=adamw", "optim.momentum=null", "optim.nesterov=null"])
    check_choices(config)
    assert type(build_optimizer(nn.Linear(2, 2), plain(config.optim))) is torch.optim.AdamW


@pytest.mark.parametrize("kinds, tensors, elements", [
    (["bn", "bias"], BN_TENSORS + 1, BN_ELEMENTS + HEAD_BIAS),
    (["bn"], BN_TENSORS, BN_ELEMENTS),
    (["bias"], BN_TENSORS // 2 + 1, BN_ELEMENTS // 2 + HEAD_BIAS),
])
def test_no_decay_groups_hold_exactly_the_batch_norm_parameters_and_biases(kinds, tensors, elements):
    model = create("resnet20", num_classes=10)
    assert _elements(model.parameters()) == CONV_ELEMENTS + HEAD_WEIGHT + BN_ELEMENTS + HEAD_BIAS
    exempt = no_decay_parameters(model, kinds)
    assert (len(exempt), _elements(exempt)) == (tensors, elements)
    config = load_config(overrides=[f"optim.no_weight_decay_on=[{','.join(kinds)}]"])
    decay, no_decay = build_optimizer(model, plain(config.optim)).param_groups
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (2e-4, 0.0)
    assert len(no_decay["params"]) == tensors and _elements(no_decay["params"]) == elements
    assert _elements(decay["params"]) == _elements(model.parameters()) - elements
    assert sum(p.dim() == 4 for p in decay["params"]) == 19 and any(p is model.head.weight for p in decay["params"])


def test_no_decay_needs_an_optimizer_with_weight_decay():
    config = load_config(overrides=["optim.name=rprop", "optim.no_weight_decay_on=[bn]"])
    with pytest.raises(ConfigError, match="'rprop' has no weight decay"):
        build_optimizer(create("resnet20", num_classes=10), plain(config.optim))


def test_resuming_with_other_parameter_groups_is_refused(configure, tmp_path):
    Trainer(configure("train.epochs=1"), tmp_path / "run", log=lambda _: None).fit()
    with pytest.raises(CheckpointError, match="optimizer state does not fit.*run's own optim"):
        Trainer(configure("train.epochs=2", "optim.no_weight_decay_on=[bn]"), tmp_path / "run", resume=True,
                log=lambda _: None)
