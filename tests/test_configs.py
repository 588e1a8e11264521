"""Every shipped config, at every imbalance ratio, and every recorded run's config loads, passes
the load-time checks and builds its method (no data needed: fake long-tailed counts)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from longtail.choices import check_choices
from longtail.cli import run_name
from longtail.config import load_config, plain
from longtail.data import TRANSFORMS
from longtail.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
RECORDED = sorted(ROOT.glob("results/*/*/config.yaml"))
RATIOS = (100, 50, 10)  # the CIFAR columns of BBN Table 1 and PaCo Table 6
# Complete recipes: not the shared fragments (base.yaml, *_recipe.yaml, configs/methods/, configs/*.yaml)
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml")
                 if p.parent not in (CONFIGS, CONFIGS / "methods") and p.name != "base.yaml"
                 and not p.stem.endswith("recipe"))
STAGE2_MODELS = {"frozen_features", "lws"}  # need a finished stage-1 run to build
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet_lt": 1000, "places_lt": 365, "inat2017": 5089,
               "inat2018": 8142}
TABLE1 = ["ce", "focal", "mixup", "manifold_mixup", "manifold_mixup_two_samplers", "ce_drw",
          "ce_drs", "ldam", "ldam_drw", "cb_focal", "logit_adjusted", "balanced_softmax", "bbn"]


def _source_name(config) -> str:
    source = plain(config.data.source)
    return source if isinstance(source, str) else source["name"]


CASES = [(path, ratio) for path in RECIPES for ratio in (RATIOS if path.parent.name.startswith("cifar") else (None,))]


@pytest.mark.parametrize("path, ratio", CASES, ids=lambda case: case.stem if isinstance(case, Path) else f"ir{case}")
def test_config_builds(path, ratio):
    config = load_config(path, [f"data.imbalance_ratio={ratio}"] if ratio else [])
    if ratio:
        assert run_name(path, config.data.imbalance_ratio) == f"{path.parent.name}/{path.stem}_ir{ratio}"
    _builds(config)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.parent.name)
def test_recorded_run_config_builds(path):
    _builds(load_config(path))


def test_every_recorded_run_has_its_config():
    assert {p.parent.name for p in RECORDED} == {"ce_ir100", "ldam_drw_ir100", "bbn_ir100", "bbn_ir50", "paco_ir100"}


def _builds(config) -> None:
    check_choices(config)
    if config.model.name in STAGE2_MODELS:
        assert config.model.run, "a stage-2 config names its stage-1 run"
        return
    if config.method.name == "linear_probe":
        assert config.method.checkpoint, "a linear probe names its stage-1 run"
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


def test_every_bbn_table1_row_has_one_config_per_dataset_at_ratio_100():
    names = {p.relative_to(CONFIGS).as_posix() for p in RECIPES}
    missing = [f"{dataset}/{method}.yaml" for dataset in ("cifar10_lt", "cifar100_lt") for method in TABLE1
               if f"{dataset}/{method}.yaml" not in names]
    assert not missing
    assert all(load_config(CONFIGS / name).data.imbalance_ratio == 100 for name in names if name.startswith("cifar")
               and "_adaptor_" not in name and "_sampler_" not in name)


def test_bbn_ablations_run_at_ratio_50_and_are_named_so():
    ablations = sorted(CONFIGS.glob("cifar*_lt/bbn_*_*.yaml"))
    assert len(ablations) == 2 * 9  # Table 3: three samplers, Table 4: six adaptors, two datasets
    for path in ablations:
        config = load_config(path)
        assert config.data.imbalance_ratio == 50
        assert run_name(path, config.data.imbalance_ratio) == f"{path.parent.name}/{path.stem}_ir50"


def test_stage2_configs_follow_their_stage1_run_ratio():
    crt = load_config(CONFIGS / "cifar100_lt" / "lws.yaml", ["data.imbalance_ratio=50"])
    probe = load_config(CONFIGS / "cifar100_lt" / "supcon_linear.yaml")
    assert (crt.model.run, probe.method.checkpoint) == ("runs/cifar100_lt/ce_ir50", "runs/cifar100_lt/supcon_ir100")


def test_ldam_drw_follows_its_authors_recipe():
    config = load_config(CONFIGS / "cifar100_lt" / "ldam_drw.yaml")
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
    expected = {f"cifar100_lt/{n}.yaml" for n in ("paco", "paco_dagger", "supcon", "multitask", "balanced_softmax")}
    assert expected <= set(views)
    assert all(spec == {"name": "autoaugment_cutout", "policy": "paco"} for spec in views.values()), views


@pytest.mark.parametrize("doc", ["README.md", "results/README.md", "benchmarks/README.md"])
def test_every_config_a_document_names_exists(doc):
    # lower case: `configs/cifar100_lt/M.yaml` with M a placeholder is not a file name
    named = set(re.findall(r"configs/[a-z0-9_/-]+\.yaml", (ROOT / doc).read_text()))
    assert [name for name in sorted(named) if not (ROOT / name).exists()] == []
