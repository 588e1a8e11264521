"""Every shipped config loads, and builds its method (no data needed: counts from the profile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.config import load_config, plain
from longtail.data import profile_counts
from longtail.methods import METHODS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STAGE2 = {"crt", "lws"}  # need a finished stage-1 run
ALL = sorted(CONFIGS.glob("cifar*_lt/*_ir*.yaml"))
RUNNABLE = [p for p in ALL if p.stem.rsplit("_", 1)[0] not in STAGE2]
TABLE1 = ["ce", "focal", "mixup", "manifold_mixup", "manifold_mixup_two_samplers", "ce_drw",
          "ce_drs", "ldam", "ldam_drw", "cb_focal", "logit_adjusted", "balanced_softmax"]


def test_every_bbn_table1_row_has_a_config_per_dataset_and_ratio():
    names = {p.relative_to(CONFIGS).as_posix() for p in RUNNABLE}
    for dataset in ("cifar10_lt", "cifar100_lt"):
        for method in TABLE1:
            for ratio in (100, 50, 10):
                assert f"{dataset}/{method}_ir{ratio}.yaml" in names


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_builds_its_method(path):
    config = load_config(path)
    num_classes = 10 if config.data.source.name == "cifar10" else 100
    n_max = 5000 if num_classes == 10 else 500
    counts = np.array(profile_counts(n_max, num_classes, config.data.imbalance_ratio))
    method = METHODS.build(plain(config.method), model_spec=plain(config.model),
                           num_classes=num_classes, class_counts=counts, epochs=config.train.epochs)
    assert method.streams()
    assert config.train.epochs == 200 and config.model.name == "resnet32"


def test_ldam_drw_follows_its_authors_recipe():
    config = load_config(CONFIGS / "cifar100_lt" / "ldam_drw_ir100.yaml")
    assert config.model.head == "cosine"
    assert config.method.loss.weights.switch_epoch == 160
    assert config.method.loss.weights.after.beta == 0.9999
    assert list(config.schedule.milestones) == [160, 180]


@pytest.mark.parametrize("path", [p for p in ALL if p not in RUNNABLE], ids=lambda p: p.stem)
def test_stage2_configs_name_a_stage1_run(path):
    config = load_config(path)
    assert config.model.name in ("frozen_features", "lws")
    assert config.model.run == "runs/cifar100_lt/ce_ir100"
    assert config.method.sampler == "class_balanced"
