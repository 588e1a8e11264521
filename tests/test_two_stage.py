"""Decoupled training: frozen stage-1 features, a new classifier (cRT) or learnt scales (LWS),
and the post-hoc corrections (tau-normalisation, logit adjustment)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.engine import Trainer, build_experiment
from longtail.models import create
from longtail.models.heads import LinearHead, PriorAdjusted, tau_normalised
from longtail.models.two_stage import apply_posthoc, load_stage1


@pytest.fixture
def stage1(configure, tmp_path: Path) -> Path:
    """A finished two-epoch CE run on the tiny long-tailed data."""
    run = tmp_path / "stage1"
    Trainer(configure(), run, log=lambda _: None).fit()
    return run


def stage2_overrides(stage1: Path, model: str = "frozen_features") -> list[str]:
    return [f"model={{name: {model}, run: '{stage1}'}}", "method.sampler=class_balanced"]


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
    before = load_stage1(stage1, 4)
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
    images = torch.from_numpy(np.load(tiny_recipe["data"]["source"]["path"])["x_test"])
    images = images.permute(0, 3, 1, 2).float() / 255
    reference = load_stage1(stage1, 4).eval()
    trained = trainer.method.model.eval()
    with torch.no_grad():
        assert torch.equal(trained.features(images), reference.features(images))
    assert not torch.equal(trained.head.weight, initial_head)  # the classifier did learn
    assert json.loads((tmp_path / "crt" / "eval.json").read_text())["top1"] == report["top1"]


def test_lws_starts_from_the_stage1_classifier_and_learns_only_scales(configure, stage1):
    method = build_experiment(configure(*stage2_overrides(stage1, "lws"))).method.eval()
    reference = load_stage1(stage1, 4).eval()
    images = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(method.model(images), reference(images))
    assert [n for n, p in method.named_parameters() if p.requires_grad] == ["model.head.scales"]


def test_apply_posthoc_on_a_trained_model(stage1):
    model = load_stage1(stage1, 4).eval()
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
        load_stage1(tmp_path / "nowhere", 4)


def test_cosine_head_computes_in_fp32_under_autocast():
    torch.manual_seed(0)
    model = create("resnet20", num_classes=3, head="cosine").eval()
    features = torch.randn(4, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cosines = model.head(features)
    assert cosines.dtype == torch.float32
    assert torch.allclose(cosines, model.head(features), atol=0)
