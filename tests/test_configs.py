"""Every shipped config, at every imbalance ratio, and every recorded run's config loads, passes
the load-time checks and builds its method (no data needed: fake long-tailed counts)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from longtail.cli import run_name
from longtail.config import load_config, plain
from longtail.data import TRANSFORMS
from longtail.engine.choices import check_choices
from longtail.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
RATIOS = (100, 50, 10)  # the CIFAR columns of BBN Table 1 and PaCo Table 6
# Complete recipes: not the shared fragments (base.yaml, *_recipe.yaml, configs/methods/, configs/*.yaml)
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml")
                 if p.parent not in (CONFIGS, CONFIGS / "methods") and p.name != "base.yaml"
                 and not p.stem.endswith("recipe"))
RECORDED = sorted((ROOT / "results").rglob("config.yaml"))
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet_lt": 1000, "places_lt": 365, "inat2017": 5089,
               "inat2018": 8142}
TABLE1 = ["ce", "focal", "mixup", "manifold_mixup", "manifold_mixup_two_samplers", "ce_drw",
          "ce_drs", "ldam", "ldam_drw", "cb_focal", "logit_adjusted", "balanced_softmax", "bbn"]


def _source_name(config) -> str:
    source = plain(config.data.source)
    return source if isinstance(source, str) else source["name"]


def test_there_are_recorded_results_to_check():
    assert len(RECORDED) >= 5


CASES = [(path, ratio) for path in RECIPES for ratio in (RATIOS if path.parent.name.startswith("cifar") else (None,))]


@pytest.mark.parametrize("path, ratio", CASES, ids=lambda case: case.stem if isinstance(case, Path) else f"ir{case}")
def test_config_builds(path, ratio):
    config = load_config(path, [f"data.imbalance_ratio={ratio}"] if ratio else [])
    if ratio:
        assert run_name(path, config.data.imbalance_ratio) == f"{path.parent.name}/{path.stem}_ir{ratio}"
    _builds(config)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_recorded_result_config_builds(path):
    _builds(load_config(path))


def _builds(config) -> None:
    check_choices(config)
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
    assert (crt.model.run, probe.model.run) == ("runs/cifar100_lt/ce_ir50", "runs/cifar100_lt/supcon_ir100")


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


@pytest.mark.parametrize("dataset", ["cifar10_lt", "cifar100_lt"])
def test_rw_and_rs_configs_train_as_the_representation_classifier_study(dataset):
    from longtail.analysis.representation_classifier import MANNERS

    for manner, config in (("CE", "ce"), ("RW", "ce_rw"), ("RS", "ce_rs")):
        method = plain(load_config(CONFIGS / dataset / f"{config}.yaml").method)
        assert method == {"name": "standard", "transform": "crop_flip", **MANNERS[manner]}, manner
    reversed_run = plain(load_config(CONFIGS / dataset / "ce_reversed.yaml").method)
    assert reversed_run == {"name": "standard", "loss": "ce", "sampler": "reversed", "transform": "crop_flip"}


@pytest.mark.parametrize("doc", ["README.md", "results/README.md", "benchmarks/README.md"])
def test_every_config_a_document_names_exists(doc):
    # lower case: `configs/cifar100_lt/M.yaml` with M a placeholder is not a file name
    named = set(re.findall(r"configs/[a-z0-9_/-]+\.yaml", (ROOT / doc).read_text()))
    assert [name for name in sorted(named) if not (ROOT / name).exists()] == []


# --- the large-scale recipes against the papers and the authors' code ----------------------------


def _pipeline(spec, image_size=224):
    return TRANSFORMS.build(plain(spec), mean=(0.5,) * 3, std=(0.5,) * 3, image_size=image_size).per_image.transforms


def test_paco_imagenet_lt_recipe_is_the_authors():
    from timm.data.auto_augment import RandAugment
    from torchvision.transforms import v2

    config = load_config(CONFIGS / "imagenet_lt" / "paco_resnet50.yaml")
    assert (config.schedule.name, config.schedule.warmup_epochs, config.schedule.min_factor) == ("cosine", 10, 0.0)
    assert (config.optim.lr, config.optim.weight_decay, config.optim.nesterov) == (0.02, 5e-4, False)
    assert (config.train.epochs, config.train.batch_size) == (400, 128)
    assert (config.method.alpha, config.method.temperature, config.model.queue_size) == (0.05, 0.2, 8192)
    query = _pipeline(config.method.query_transform)
    crop, _, _, jitter, randaugment = query[:5]
    assert crop.scale == (0.08, 1.0)
    assert isinstance(jitter, v2.ColorJitter)  # always applied, no hue
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == ((0.6, 1.4),) * 3 + (None,)
    assert isinstance(randaugment, RandAugment) and randaugment.num_layers == 2
    assert len(randaugment.ops) == 15 and "SolarizeAdd" in [op.name for op in randaugment.ops]
    assert {(op.prob, op.magnitude, op.magnitude_std) for op in randaugment.ops} == {(0.5, 10, 0.5)}
    assert randaugment.ops[0].kwargs["fillcolor"] == (124, 116, 104)  # the ImageNet mean
    key = _pipeline(config.method.key_transform)
    assert key[0].scale == (0.08, 1.0)
    jitter = key[3]
    assert isinstance(jitter, v2.RandomApply) and jitter.p == 1.0
    assert jitter.transforms[0].hue is None and jitter.transforms[0].brightness == (0.6, 1.4)


def test_paco_inat2018_has_weight_decay_1e4_and_inat_statistics():
    config = load_config(CONFIGS / "inat2018" / "paco_resnet50.yaml")
    imagenet = load_config(CONFIGS / "imagenet_lt" / "paco_resnet50.yaml")
    assert config.optim.weight_decay == 1e-4 and config.data.source.name == "inat2018"
    assert list(config.data.source.mean) == [0.466, 0.471, 0.380]
    assert list(config.data.source.std) == [0.195, 0.194, 0.192]
    assert plain(config.method) == plain(imagenet.method) and plain(config.schedule) == plain(imagenet.schedule)


def test_paco_places_lt_is_table4():
    config = load_config(CONFIGS / "places_lt" / "paco_resnet152.yaml")
    assert config.model.name == "moco_resnet152"
    assert plain(config.model.backbone_options) == {"weights": "IMAGENET1K_V1", "freeze_trunk_convs": True}
    assert (config.train.epochs, config.train.batch_size, config.optim.lr) == (30, 128, 0.02)
    assert (config.schedule.name, config.schedule.warmup_epochs, config.schedule.min_factor) == ("cosine", 5, 0.0)
    assert (config.method.temperature, config.method.alpha, config.optim.weight_decay) == (0.2, 0.05, 5e-4)
    key = {"name": "simaugment", "min_scale": 0.08, "jitter": [0.4, 0.4, 0.4, 0.0], "jitter_p": 1.0}
    assert plain(config.method.query_transform) == plain(config.method.key_transform) == key  # no RandAugment


@pytest.mark.parametrize("dataset", ["inat2017", "inat2018"])
@pytest.mark.parametrize(("config_name", "epochs", "milestones"), [
    ("bbn_resnet50", 180, [119, 159]), ("bbn_resnet50_1x", 90, [59, 79]), ("ce_resnet50", 180, [119, 159])])
def test_bbn_inaturalist_recipe_is_the_authors(dataset, config_name, epochs, milestones):
    config = load_config(CONFIGS / dataset / f"{config_name}.yaml")
    assert config.schedule.warmup_epochs == 0  # a plain MultiStepLR in the authors' config
    assert list(config.schedule.milestones) == milestones and config.schedule.gamma == 0.1
    assert config.train.epochs == epochs and config.train.batch_size == 128
    assert (config.optim.lr, config.optim.weight_decay, config.optim.nesterov) == (0.05, 1e-4, True)
    assert plain(config.model.backbone_options) == {"init": "pytorch"}  # no init loop in their ResNet


def test_bbn_imagenet_lt_says_it_is_not_from_the_paper():
    path = CONFIGS / "imagenet_lt" / "bbn_resnet50.yaml"
    assert "NOT FROM THE PAPER" in path.read_text()
    config, inat = plain(load_config(path)), plain(load_config(CONFIGS / "inat2018" / "bbn_resnet50_1x.yaml"))
    assert config.pop("data")["source"] == {"name": "imagenet_lt", "image_size": 224}
    inat.pop("data")
    assert config == inat  # BBN's own large-scale recipe, unchanged


@pytest.mark.parametrize(("config_name", "backbone"), [
    ("paco_resnext50", "moco_resnext50_32x4d"), ("paco_resnext101", "moco_resnext101_32x4d")])
def test_table3_resnext_configs(config_name, backbone):
    config = load_config(CONFIGS / "imagenet_lt" / f"{config_name}.yaml")
    assert config.model.name == backbone and config.method.query_transform.grayscale_blur
    policy = "rand-n3-m10-mstd0.5" if "101" in config_name else "rand-n2-m10-mstd0.5"
    assert config.method.query_transform.policy == policy
    assert (config.optim.lr, config.method.temperature) == ((0.03, 0.2) if "101" in config_name else (0.02, 0.07))
