"""Every shipped config, and the config of every recorded result, loads and builds its method (no
data needed: fake long-tailed counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from longtail.config import load_config, plain
from longtail.data import TRANSFORMS
from longtail.methods import METHODS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RESULTS = CONFIGS.parent / "results"
# Complete recipes: not the shared fragments (base.yaml, *_recipe.yaml, configs/methods/, configs/*.yaml)
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml")
                 if p.parent not in (CONFIGS, CONFIGS / "methods") and p.name != "base.yaml"
                 and not p.stem.endswith("recipe"))
RECORDED = sorted(RESULTS.rglob("config.yaml"))
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet_lt": 1000, "places_lt": 365, "inat2017": 5089,
               "inat2018": 8142}
TABLE1 = ["ce", "focal", "mixup", "manifold_mixup", "manifold_mixup_two_samplers", "ce_drw",
          "ce_drs", "ldam", "ldam_drw", "cb_focal", "logit_adjusted", "balanced_softmax", "bbn"]


def _source_name(config) -> str:
    source = plain(config.data.source)
    return source if isinstance(source, str) else source["name"]


def test_there_are_recorded_results_to_check():
    assert len(RECORDED) >= 5


@pytest.mark.parametrize("path", RECIPES + RECORDED, ids=lambda p: p.relative_to(CONFIGS.parent).as_posix())
def test_config_builds(path):
    config = load_config(path)
    if config.model.name == "frozen_features":  # stage 2: building needs the finished stage-1 run
        assert config.model.run, "a stage-2 config names its stage-1 run"
        return
    model_spec = plain(config.model)
    weights = model_spec.get("backbone_options", {}).pop("weights", None)
    if weights is not None:  # a real torchvision weights name; not downloaded here
        backbone = model_spec["name"].removeprefix("moco_").removeprefix("bbn_")
        assert weights in torchvision.models.get_model_weights(backbone).__members__
    num_classes = NUM_CLASSES[_source_name(config)]
    counts = np.maximum(1, (500 * 0.01 ** (np.arange(num_classes) / (num_classes - 1))).astype(int))
    large = num_classes >= 365  # build ResNet-50 models on the meta device: shapes only, no memory
    with torch.device("meta" if large else "cpu"):
        method = METHODS.build(plain(config.method), model_spec=model_spec, num_classes=num_classes,
                               class_counts=counts, epochs=config.train.epochs)
    assert method.streams()


def test_every_bbn_table1_row_has_a_config_per_dataset_and_ratio():
    names = {p.relative_to(CONFIGS).as_posix() for p in RECIPES}
    missing = [f"{dataset}/{method}_ir{ratio}.yaml" for dataset in ("cifar10_lt", "cifar100_lt")
               for method in TABLE1 for ratio in (100, 50, 10)
               if f"{dataset}/{method}_ir{ratio}.yaml" not in names]
    assert not missing


def test_ldam_drw_follows_its_authors_recipe():
    config = load_config(CONFIGS / "cifar100_lt" / "ldam_drw_ir100.yaml")
    assert config.model.head == "cosine"
    assert config.method.loss.weights.switch_epoch == 160
    assert config.method.loss.weights.after.beta == 0.9999
    assert list(config.schedule.milestones) == [160, 180]


def test_paco_recipe_configs_use_the_authors_autoaugment_policy():
    """Every shipped config with the AutoAugment query view uses the PaCo authors' policy."""
    views = {}
    for path in RECIPES:
        method = plain(load_config(path).method)
        for key in ("transform", "query_transform", "key_transform"):
            spec = method.get(key)
            name = spec["name"] if isinstance(spec, dict) else spec
            if name == "autoaugment_cutout":
                views[path.relative_to(CONFIGS).as_posix()] = spec
                TRANSFORMS.build(spec, mean=(0.5,) * 3, std=(0.25,) * 3, image_size=32)
    expected = {f"cifar100_lt/{n}.yaml" for n in ("paco_ir10", "paco_ir50", "paco_ir100", "paco_dagger_ir100",
                                                   "supcon_ir100", "multitask_ir100", "balanced_softmax_ir10",
                                                   "balanced_softmax_ir50", "balanced_softmax_ir100")}
    assert expected <= set(views)
    assert all(spec == {"name": "autoaugment_cutout", "policy": "paco"} for spec in views.values()), views
