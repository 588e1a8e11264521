"""Decoupled training: one stage-2 model entry (frozen features of a CE, SupCon or BBN run, or
of a results folder, with a new classifier (cRT) or learnt scales (LWS)), and the post-hoc
corrections (tau-normalisation, logit adjustment)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.analysis.results import record
from longtail.checkpoints import load_checkpoint
from longtail.engine import Trainer, build_experiment
from longtail.errors import ConfigError
from longtail.models import create
from longtail.models.heads import LinearHead, PriorAdjusted, tau_normalised
from longtail.models.two_stage import apply_posthoc, load_trained

BBN = ("model.name=bbn_resnet20", "method.name=bbn")
SUPCON = ("model={name: moco_resnet20, dim: 8, queue_size: 16, momentum: 0.99}", "method.name=supcon",
          "method.query_transform=crop_flip", "method.key_transform=crop_flip", "train.epochs=1")


@pytest.fixture
def stage1(tiny_run) -> Path:
    """A finished two-epoch CE run on the tiny long-tailed data."""
    return tiny_run()


def stage2_overrides(stage1: Path, *options: str) -> list[str]:
    return [f"model={{name: frozen_features, run: '{stage1}', {', '.join(options)}}}", "method.sampler=class_balanced"]


def tiny_test_images(tiny_recipe) -> torch.Tensor:
    images = torch.from_numpy(np.load(tiny_recipe["data"]["source"]["path"])["x_test"])
    return images.permute(0, 3, 1, 2).float() / 255


def test_tau_zero_normalisation_leaves_logits_unchanged():
    torch.manual_seed(0)
    head, features = LinearHead(8, 5), torch.randn(3, 8)
    assert torch.equal(tau_normalised(head, 0.0)(features), head(features))


def test_tau_one_normalisation_gives_unit_class_weights():
    torch.manual_seed(0)
    head = LinearHead(8, 5)
    with torch.no_grad():
        head.weight.mul_(torch.arange(1.0, 6.0)[:, None])  # class norms differ by up to 5x
    normalised = tau_normalised(head, 1.0)
    for row, original in zip(normalised.weight.tolist(), head.weight.tolist(), strict=True):
        norm = math.sqrt(sum(w * w for w in original))
        assert row == pytest.approx([w / norm for w in original], rel=1e-5)
    assert torch.equal(normalised.bias, head.bias)


def test_posthoc_logit_adjustment_subtracts_tau_log_prior():
    counts = np.array([6, 3, 1])
    torch.manual_seed(0)
    head, features = LinearHead(4, 3), torch.randn(2, 4)
    log_prior = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    adjusted = PriorAdjusted(head, log_prior, tau=2.0)(features)
    expected = head(features) - 2.0 * torch.tensor([math.log(n / 10) for n in counts])
    assert torch.allclose(adjusted, expected, atol=1e-6)


def test_crt_reinitialises_the_classifier_and_freezes_the_features(configure, stage1):
    method = build_experiment(configure(*stage2_overrides(stage1))).method
    before = load_trained(stage1, 4)
    assert not torch.equal(method.model.head.weight, before.head.weight)
    assert [n for n, p in method.named_parameters() if p.requires_grad] == [
        "model.head.weight", "model.head.bias"]
    method.train()
    assert not method.model.backbone.backbone.training  # batch norm keeps stage-1 statistics
    assert method.model.head.training


def test_crt_features_stay_bit_identical_through_training(configure, tiny_recipe, stage1, tmp_path):
    config = configure(*stage2_overrides(stage1), "train.epochs=3")
    trainer = Trainer(config, tmp_path / "crt", log=lambda _: None)
    initial_head = trainer.method.model.head.weight.detach().clone()
    report = trainer.fit()
    images = tiny_test_images(tiny_recipe)
    reference = load_trained(stage1, 4).eval()
    trained = trainer.method.model.eval()
    with torch.no_grad():
        assert torch.equal(trained.features(images), reference.features(images))
    assert not torch.equal(trained.head.weight, initial_head)  # the classifier did learn
    assert json.loads((tmp_path / "crt" / "eval.json").read_text())["top1"] == report["top1"]


def test_lws_starts_from_the_stage1_classifier_and_learns_only_scales(configure, stage1):
    method = build_experiment(configure(*stage2_overrides(stage1, "head: lws"))).method.eval()
    reference = load_trained(stage1, 4).eval()
    images = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(method.model(images), reference(images))
    assert [n for n, p in method.named_parameters() if p.requires_grad] == ["model.head.scales"]


@pytest.mark.parametrize("features, width", [("all", 128), ("conventional", 64), ("rebalancing", 64)])
def test_stage2_on_a_bbn_run_trains_a_classifier_on_the_chosen_branch(configure, tiny_recipe, tiny_run, tmp_path,
                                                                       features, width):
    """BBN Table 5: BBN-CB (trunk + conventional block), BBN-RB (trunk + re-balancing block), or
    both branches' features concatenated; ResNet-20 gives 64 features a branch."""
    bbn_run = tiny_run(*BBN)
    trainer = Trainer(configure(*stage2_overrides(bbn_run, f"features: {features}"), "train.epochs=1"),
                      tmp_path / features, log=lambda _: None)
    model = trainer.method.model
    assert model.head.in_features == width
    assert [n for n, p in trainer.method.named_parameters() if p.requires_grad] == [
        "model.head.weight", "model.head.bias"]
    head_before = model.head.weight.detach().clone()
    trainer.fit()
    bbn = load_trained(bbn_run, 4).eval()
    images = tiny_test_images(tiny_recipe)
    with torch.no_grad():
        branches = {branch: bbn.branch_features(images, branch) for branch in ("conventional", "rebalancing")}
        expected = torch.cat(list(branches.values()), 1) if features == "all" else branches[features]
        assert torch.equal(model.eval().features(images), expected)  # frozen through training
    assert not torch.equal(model.head.weight, head_before)


def test_lws_on_a_bbn_run_starts_from_its_inference_logits(configure, tiny_run):
    """At alpha = 0.5 BBN's classifier reads [f_c ; f_r]: LWS with unit scales is BBN itself."""
    bbn_run = tiny_run(*BBN)
    method = build_experiment(configure(*stage2_overrides(bbn_run, "head: lws"))).method.eval()
    images = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(method.model(images), load_trained(bbn_run, 4).eval()(images, 0.5))
    with pytest.raises(ConfigError, match="features: all"):
        build_experiment(configure(*stage2_overrides(bbn_run, "head: lws", "features: rebalancing")))


def test_a_branch_of_a_network_without_branches_is_refused(configure, stage1):
    with pytest.raises(ConfigError, match="branch of BBN.*features: all"):
        build_experiment(configure(*stage2_overrides(stage1, "features: conventional")))
    with pytest.raises(ConfigError, match="unknown features 'rebalanced'"):
        build_experiment(configure(*stage2_overrides(stage1, "features: rebalanced")))


def test_lws_outside_stage2_is_refused():
    with pytest.raises(ConfigError, match="stage 2"):
        create("resnet20", num_classes=3, head="lws")


def test_supcon_stage2_keeps_the_query_backbone_frozen(configure, tiny_run, tmp_path):
    """SupCon's linear probe: a new linear head on the MoCo query backbone of the stage-1 run."""
    supcon_run = tiny_run(*SUPCON)
    stage1_state = load_checkpoint(supcon_run / "checkpoints" / "last.pt")["method"]
    trainer = Trainer(configure(*stage2_overrides(supcon_run), "method.sampler=uniform", "train.epochs=1"),
                      tmp_path / "probe", log=lambda _: None)
    head_before = trainer.method.model.head.weight.detach().clone()
    trainer.fit()
    backbone = trainer.method.model.backbone.backbone.state_dict()
    assert len(backbone) > 50
    for key, value in backbone.items():  # weights and batch-norm statistics both untouched
        assert torch.equal(value, stage1_state[f"model.backbone.{key}"]), key
    assert not torch.equal(trainer.method.model.head.weight, head_before)


def test_stage2_from_a_results_folder_uses_its_shipped_weights(configure, stage1, tiny_recipe, tmp_path):
    folder = tmp_path / "results" / "tiny" / "ce"
    record(stage1, folder)
    method = build_experiment(configure(*stage2_overrides(folder))).method.eval()
    images = tiny_test_images(tiny_recipe)
    with torch.no_grad():
        assert torch.equal(method.model.features(images), load_trained(stage1, 4).eval().features(images))
    with pytest.raises(ValueError, match="trained on 4 classes, but this data has 3"):
        load_trained(folder, 3)


def test_apply_posthoc_on_a_trained_model(stage1):
    model = load_trained(stage1, 4).eval()
    images = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        before = model(images)
        apply_posthoc(model, np.array([24, 15, 9, 6]), tau_norm=0.0, logit_adjust=1.0)
        after = model(images)
    prior = torch.log(torch.tensor([24, 15, 9, 6]) / 54.0)
    assert torch.allclose(after, before - prior, atol=1e-5)


def test_tau_normalisation_needs_a_linear_head():
    model = create("resnet20", num_classes=3, head="cosine")
    with pytest.raises(ValueError, match="linear head"):
        apply_posthoc(model, np.array([3, 2, 1]), tau_norm=1.0)


def test_missing_stage1_run_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="stage-1"):
        load_trained(tmp_path / "nowhere", 4)


def test_cosine_head_computes_in_fp32_under_autocast():
    torch.manual_seed(0)
    model = create("resnet20", num_classes=3, head="cosine").eval()
    features = torch.randn(4, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cosines = model.head(features)
    assert cosines.dtype == torch.float32
    assert torch.allclose(cosines, model.head(features), atol=0)
