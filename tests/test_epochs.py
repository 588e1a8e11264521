"""One epoch protocol: every epoch-dependent part of every method follows ``set_epoch``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_config
from longtail.config import load_config
from longtail.engine import Trainer
from longtail.losses.reweighting import WeightedLoss
from longtail.methods import METHODS

COUNTS = np.array([100, 30, 10, 2])
INVERSE = (1 / COUNTS) * len(COUNTS) / (1 / COUNTS).sum()  # mean-one inverse frequency
DRW = {"name": "ce", "weights": {"name": "deferred", "switch_epoch": 2, "after": "inverse_frequency"}}


@pytest.mark.parametrize("spec,model,loss_of", [
    ({"name": "standard", "loss": DRW}, "resnet20", lambda m: m.loss),
    ({"name": "bbn", "loss": DRW}, "bbn_resnet20", lambda m: m.loss),
    ({"name": "multitask", "loss": DRW}, "moco_resnet20", lambda m: m.classification),
])
def test_deferred_weights_switch_at_the_configured_epoch_in_every_method(spec, model, loss_of):
    method = METHODS.build(spec, model_spec={"name": model}, num_classes=4, class_counts=COUNTS, epochs=4)
    seen = []
    for epoch in range(4):
        method.set_epoch(epoch)
        seen.append(loss_of(method).weight.tolist())
    assert seen[0] == seen[1] == [1.0] * 4
    assert seen[2] == pytest.approx(INVERSE.tolist(), rel=1e-6)
    assert seen[3] == pytest.approx(INVERSE.tolist(), rel=1e-6)


def test_the_engine_moves_loss_weights_and_alpha_of_bbn(tiny_npz, tmp_path, monkeypatch):
    calls = []
    original = WeightedLoss.set_epoch
    monkeypatch.setattr(WeightedLoss, "set_epoch", lambda self, epoch: (calls.append(epoch), original(self, epoch)))
    loss = {"name": "ce", "weights": {"name": "deferred", "switch_epoch": 2, "after": "inverse_frequency"}}
    config = load_config(base=tiny_config(tiny_npz, model={"name": "bbn_resnet20"},
                                          method={"name": "bbn", "loss": loss},
                                          train={"epochs": 3, "threads": 1}))
    trainer = Trainer(config, tmp_path / "run", log=lambda _: None)
    trainer.fit()
    assert calls == [0, 1, 2]
    counts = trainer.experiment.class_counts
    inverse = (1 / counts) * len(counts) / (1 / counts).sum()
    assert trainer.method.loss.weight.tolist() == pytest.approx(inverse.tolist(), rel=1e-6)
    # parabolic decay over 3 epochs: alpha = 1 - (e / 3)^2 for 0-based epoch e
    logged = [json.loads(line)["alpha"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged == pytest.approx([1.0, 1 - 1 / 9, 1 - 4 / 9])
