"""The analyses of trained runs, on tiny runs trained once for the whole module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, write_tiny_npz
from longtail.analysis.weight_norms import classifier_norms
from longtail.checkpoints import load_checkpoint
from longtail.cli import main
from longtail.config import load_config
from longtail.engine import Trainer
from longtail.models import create

# Class counts 60, 37, 23, 15 (IR 4): class 0 many-shot (> 40), 1 and 2 medium, 3 few (< 20).
# 135 training images in batches of 16: 8 steps an epoch, 16 in all, the gradient logged at 8.
RUNS = {
    "ce": {},
    "rs": {"method": {"sampler": "class_balanced"}, "train": {"log_classifier_grad_every": 0}},
    "bbn": {"model": {"name": "bbn_resnet20"}, "method": {"name": "bbn"}},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    npz = write_tiny_npz(root / "tiny.npz", per_class=60, test_per_class=10)
    for name, sections in RUNS.items():
        train = {"epochs": 2, "threads": 1, "log_classifier_grad_every": 2, **sections.get("train", {})}
        config = load_config(base=tiny_config(npz, **{**sections, "train": train}))
        Trainer(config, root / name, log=lambda _: None).fit()
    return {name: root / name for name in RUNS}


def saved_weight(run: Path, key: str) -> torch.Tensor:
    return load_checkpoint(run / "checkpoints" / "last.pt")["method"][key]


# --- weight norms (BBN Figure 4) ---------------------------------------------------------------


def test_classifier_norms_by_hand():
    model = create("resnet20", num_classes=2)
    bbn = create("bbn_resnet20", num_classes=2)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.weight[0, :2] = torch.tensor([3.0, 4.0])
        model.head.weight[1, 5] = 1.0
        bbn.classifier.weight.zero_()
        bbn.classifier.weight[0, 0], bbn.classifier.weight[0, 64] = 3.0, 4.0  # 64: ResNet-20's width
        bbn.classifier.weight[1, 70] = 2.0
    np.testing.assert_allclose(classifier_norms(model)["W"], [5.0, 1.0])
    norms = classifier_norms(bbn)
    np.testing.assert_allclose(norms["W_c"], [3.0, 0.0])
    np.testing.assert_allclose(norms["W_r"], [4.0, 2.0])
    np.testing.assert_allclose(norms["ALL"], [5.0, 2.0])


def test_weight_norms_command(runs, tmp_path):
    out = tmp_path / "norms"
    assert main(["analyze", "weight-norms", str(runs["ce"]), str(runs["bbn"]), "--labels", "CE", "BBN",
                 "--output-dir", str(out)]) == 0
    results = json.loads((out / "weight_norms.json").read_text())
    assert results["train_counts"] == [60, 37, 23, 15] and results["class_order"] == [0, 1, 2, 3]
    assert set(results["curves"]) == {"CE", "BBN W_c", "BBN W_r", "BBN ALL"}
    ce = saved_weight(runs["ce"], "model.head.weight").norm(dim=1).numpy()
    np.testing.assert_allclose(results["curves"]["CE"]["norms"], ce, rtol=1e-6)
    assert results["curves"]["CE"]["std"] == pytest.approx(ce.std(), rel=1e-6)
    bbn = saved_weight(runs["bbn"], "model.classifier.weight")
    np.testing.assert_allclose(results["curves"]["BBN W_r"]["norms"], bbn[:, 64:].norm(dim=1).numpy(), rtol=1e-6)
    whole = np.square(results["curves"]["BBN W_c"]["norms"]) + np.square(results["curves"]["BBN W_r"]["norms"])
    np.testing.assert_allclose(np.square(results["curves"]["BBN ALL"]["norms"]), whole, rtol=1e-5)
    assert (out / "weight_norms.png").read_bytes()[:4] == b"\x89PNG"
    assert "| BBN ALL |" in (out / "weight_norms.md").read_text()


def test_runs_must_be_told_apart(runs, tmp_path, capsys):
    assert main(["analyze", "weight-norms", str(runs["ce"]), str(runs["ce"]), "--output-dir", str(tmp_path)]) == 2
    assert "--labels" in capsys.readouterr().err


def test_a_directory_without_checkpoint_is_named(tmp_path, capsys):
    assert main(["analyze", "weight-norms", str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 2
    assert f"no checkpoint at {tmp_path / 'checkpoints' / 'last.pt'}" in capsys.readouterr().err


# --- calibration and head/tail confusion -------------------------------------------------------


def test_reliability_and_group_confusion_by_hand():
    from longtail.analysis.calibration import calibration_report

    # classes 0 many (count 150), 1 medium (50), 2 few (5)
    logits = torch.log(torch.tensor([
        [0.9, 0.05, 0.05],  # y 0, right, confidence 0.9
        [0.7, 0.2, 0.1],  # y 2 (few), predicted 0 (many), confidence 0.7
        [0.2, 0.7, 0.1],  # y 2 (few), predicted 1 (medium), confidence 0.7
        [0.1, 0.8, 0.1],  # y 1 (medium), right, confidence 0.8
    ]))
    report = calibration_report(logits, torch.tensor([0, 2, 2, 1]), np.array([150, 50, 5]), 100, 20, bins=10)
    assert report["top1"] == pytest.approx(50.0)
    # bins (0.6, 0.7]: two wrong at 0.7; (0.7, 0.8]: right at 0.8; (0.8, 0.9]: right at 0.9
    assert report["overall"]["count"] == [0, 0, 0, 0, 0, 0, 2, 1, 1, 0]
    assert report["overall"]["ece"] == pytest.approx(100 * (2 * 0.7 + 0.2 + 0.1) / 4)
    assert report["few"]["ece"] == pytest.approx(70.0) and report["many"]["ece"] == pytest.approx(10.0)
    assert report["group_confusion"]["few"] == {"many": 50.0, "medium": 50.0, "few": 0.0}
    assert report["group_confusion"]["medium"] == {"many": 0.0, "medium": 100.0, "few": 0.0}


def test_calibration_command_matches_the_runs_reports(runs, tmp_path):
    out = tmp_path / "calibration"
    assert main(["analyze", "calibration", str(runs["ce"]), str(runs["rs"]), "--device", "cpu",
                 "--output-dir", str(out)]) == 0
    results = json.loads((out / "calibration.json").read_text())
    for name in ("ce", "rs"):
        trained = json.loads((runs[name] / "eval.json").read_text())  # same fp32 logits at the end of training
        report = results["runs"][name]
        assert report["overall"]["ece"] == pytest.approx(trained["ece"], abs=1e-9)
        assert report["top1"] == pytest.approx(trained["top1"])
        assert sum(report["overall"]["count"]) == trained["num_test"] == 40
        # every few-shot test image (class 3) lands in one group's class: the row sums to 100
        assert sum(report["group_confusion"]["few"].values()) == pytest.approx(100.0)
        confusion = np.array(trained["confusion"])
        assert report["group_confusion"]["few"]["many"] == pytest.approx(100 * confusion[3, 0] / 10)
    assert (out / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert "| rs |" in (out / "calibration.md").read_text()


# --- compactness (BBN Figure 6) ----------------------------------------------------------------


def test_intra_class_distances_by_hand():
    from longtail.analysis.compactness import intra_class_distances

    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [2.0, 0.0], [5.0, 0.0]])
    # class 0: unit vectors (1,0), (0,1), centroid (.5,.5): both at sqrt(.5); class 1: both (1,0): 0
    distances = intra_class_distances(features, torch.tensor([0, 0, 1, 1]), 3)
    assert distances[:2] == pytest.approx([np.sqrt(0.5), 0.0])
    assert np.isnan(distances[2])  # no images


def test_compactness_command(runs, tmp_path):
    out = tmp_path / "compactness"
    assert main(["analyze", "compactness", str(runs["ce"]), str(runs["bbn"]), "--device", "cpu",
                 "--output-dir", str(out)]) == 0
    results = json.loads((out / "compactness.json").read_text())
    assert set(results["curves"]) == {"ce", "bbn", "bbn (conventional)", "bbn (rebalancing)"}
    for curve in results["curves"].values():
        distances = np.array(curve["distances"])
        assert len(distances) == 4 and ((distances > 0) & (distances < 2)).all()  # unit vectors: at most 2 apart
        assert curve["many"] == pytest.approx(distances[0]) and curve["few"] == pytest.approx(distances[3])
        assert curve["medium"] == pytest.approx(distances[1:3].mean())
    assert (out / "compactness.png").read_bytes()[:4] == b"\x89PNG"


# --- ensembles (BBN Table 6) -------------------------------------------------------------------


def test_ensemble_averages_probabilities():
    from longtail.analysis.ensemble import ensemble_logits

    a, b = torch.log(torch.tensor([[0.6, 0.4]])), torch.log(torch.tensor([[0.0, 1.0]]))
    np.testing.assert_allclose(ensemble_logits([a, b]).exp().numpy(), [[0.3, 0.7]], rtol=1e-6)


def test_ensemble_command(runs, tmp_path):
    out = tmp_path / "ensemble"
    assert main(["analyze", "ensemble", str(runs["ce"]), str(runs["rs"]), "--pair", str(runs["ce"]), str(runs["ce"]),
                 "--also", str(runs["bbn"]), "--device", "cpu", "--output-dir", str(out)]) == 0
    entries = json.loads((out / "ensemble.json").read_text())["entries"]
    assert list(entries) == ["ce", "rs", "bbn", "ce + rs", "ce + ce"]
    for name in ("ce", "rs", "bbn"):
        assert entries[name]["top1"] == pytest.approx(json.loads((runs[name] / "eval.json").read_text())["top1"])
    assert entries["ce + ce"]["top1"] == entries["ce"]["top1"]  # a model with itself is the model
    plain, bbn = create("resnet20", num_classes=4), create("bbn_resnet20", num_classes=4)
    assert entries["ce"]["parameters"] == sum(p.numel() for p in plain.parameters())
    assert entries["ce + rs"]["parameters"] == 2 * entries["ce"]["parameters"]
    # BBN: one more copy of the last block, and classifier weights for the other half of the feature
    extra = sum(p.numel() for p in bbn.rebalancing.parameters()) + 64 * 4
    assert entries["bbn"]["parameters"] == entries["ce"]["parameters"] + extra
    assert "| ce + rs |" in (out / "ensemble.md").read_text() and not (out / "ensemble.png").exists()


# --- classifier gradients (PaCo Figure 2) ------------------------------------------------------


def test_grad_log_records_every_nth_step_by_hand(tmp_path):
    from longtail.engine.classifier_grads import ClassifierGradLog

    model = create("resnet20", num_classes=2)
    log = ClassifierGradLog(model, tmp_path, every=3)
    model.head.weight.grad = torch.zeros_like(model.head.weight)
    model.head.weight.grad[0, :2] = torch.tensor([3.0, 4.0])
    for step in range(5):  # steps 0 and 3 are logged
        log.after_step(step, epoch=step // 4)
    lines = [json.loads(line) for line in (tmp_path / "classifier_grads.jsonl").read_text().splitlines()]
    assert lines == [{"epoch": 1, "step": 0, "grad_norm": [5.0, 0.0]}, {"epoch": 1, "step": 3, "grad_norm": [5.0, 0.0]}]


def test_grad_log_refuses_a_frozen_classifier(configure):
    from longtail.registry import ConfigError

    config = configure("model.name=moco_resnet20", "method.name=supcon", "train.log_classifier_grad_every=1")
    with pytest.raises(ConfigError, match="never trains its classifier"):
        Trainer(config, Path("unused"), log=lambda _: None)


def test_training_logs_the_gradient_and_a_resume_keeps_one_line_a_step(tmp_path):
    npz = write_tiny_npz(tmp_path / "tiny.npz", per_class=60, test_per_class=10)
    config = load_config(base=tiny_config(npz, train={"epochs": 2, "threads": 1, "log_classifier_grad_every": 3}))
    run = tmp_path / "run"
    Trainer(config, run, log=lambda _: None).fit()
    log = run / "classifier_grads.jsonl"
    uninterrupted = log.read_text()
    assert [json.loads(line)["step"] for line in uninterrupted.splitlines()] == [0, 3, 6, 9, 12, 15]
    (run / "checkpoints" / "epoch_0001.pt").replace(run / "checkpoints" / "last.pt")  # as if stopped after epoch 1
    Trainer(config, run, resume=True, log=lambda _: None).fit()
    assert log.read_text() == uninterrupted  # steps of epoch 2 dropped and logged again, identically


def test_classifier_grad_command(runs, tmp_path):
    out = tmp_path / "grads"
    assert main(["analyze", "classifier-grad", str(runs["ce"]), str(runs["bbn"]), "--output-dir", str(out)]) == 0
    curves = json.loads((out / "classifier_grad.json").read_text())["curves"]
    lines = (runs["ce"] / "classifier_grads.jsonl").read_text().splitlines()
    records = [json.loads(line)["grad_norm"] for line in lines]
    assert len(records) == curves["ce"]["steps_logged"] == curves["bbn"]["steps_logged"] == 8
    np.testing.assert_allclose(curves["ce"]["grad_norm"], np.mean(records, axis=0))  # class order is 0..3 here
    assert curves["ce"]["many_over_few"] == pytest.approx(curves["ce"]["many"] / curves["ce"]["few"])
    assert curves["ce"]["medium"] == pytest.approx(np.mean(records, axis=0)[1:3].mean())
    # tiny_config's schedule: 1 warm-up epoch, its milestone (3) past the 2 epochs; 4 steps logged in each
    epochs = np.array([json.loads(line)["epoch"] for line in lines])
    phases = curves["ce"]["phases"]
    assert [(p["phase"], p["epochs"], p["steps_logged"]) for p in phases] == [
        ("warm-up", [1, 1], 4), ("lr x1", [2, 2], 4)]
    second = np.mean(np.array(records)[epochs == 2], axis=0)
    assert phases[1]["many_over_few"] == pytest.approx(second[0] / second[3])
    assert curves["ce"]["many_over_few_by_epoch"]["2"] == pytest.approx(second[0] / second[3])  # JSON keys
    assert (out / "classifier_grad.png").read_bytes()[:4] == b"\x89PNG"


def test_classifier_grad_explains_a_run_without_log(runs, tmp_path, capsys):
    assert main(["analyze", "classifier-grad", str(runs["rs"]), "--output-dir", str(tmp_path)]) == 2
    assert "train.log_classifier_grad_every=N" in capsys.readouterr().err


# --- bf16 against fp32 gradients (issue 15) ----------------------------------------------------


def test_gradient_parts_split_bbn_classifier_by_hand():
    from longtail.analysis.grad_precision import gradient_parts, relative

    bbn = create("bbn_resnet20", num_classes=3)
    weight, bias = bbn.classifier.weight, bbn.classifier.bias
    (2 * weight[:, :64].sum() + 3 * weight[:, 64:].sum() + bias.sum()).backward()  # 64: ResNet-20's width
    parts = gradient_parts(bbn)
    assert set(parts) == {"classifier W_c", "classifier W_r", "classifier bias"}  # no gradient elsewhere
    assert torch.equal(parts["classifier W_c"], torch.full((3 * 64,), 2.0))
    assert torch.equal(parts["classifier W_r"], torch.full((3 * 64,), 3.0))
    assert torch.equal(parts["classifier bias"], torch.ones(3))
    model = create("resnet20", num_classes=3)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    sizes = {part: grad.numel() for part, grad in gradient_parts(model).items()}
    assert sizes == {"backbone": sum(p.numel() for p in model.backbone.parameters()), "head": 64 * 3 + 3}
    assert relative(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 4.0])) == pytest.approx(np.hypot(2, 3) / 5)
    assert relative(torch.ones(2), torch.zeros(2)) is None


def test_fp32_against_itself_is_exact_even_with_a_random_adaptor(tiny_run):
    from longtail.analysis.grad_precision import compare_precisions
    from longtail.analysis.trained import load_run

    # Beta(0.2, 0.2) draws α anew in every forward: both passes must draw the same one
    run = load_run(tiny_run("model.name=bbn_resnet20", "method.name=bbn", "method.adaptor=beta"))
    rows = compare_precisions(run, [1, 2], batches=2, precision="fp32", device=torch.device("cpu"))
    for row in rows:
        assert row["relative_error"] == dict.fromkeys(row["relative_error"], 0.0)
        assert all(change > 0 for change in row["batch_to_batch"].values())  # two batches, two gradients
        assert 0 < row["logs"]["alpha"] < 1 and row["logs"]["alpha"] != 0.5  # a draw, not the mean


def test_grad_precision_command(runs, tmp_path, capsys):
    out = tmp_path / "precision"
    assert main(["analyze", "grad-precision", str(runs["ce"]), str(runs["bbn"]), "--batches", "2",
                 "--output-dir", str(out)]) == 0
    results = json.loads((out / "grad_precision.json").read_text())["results"]
    assert [row["epoch"] for row in results["bbn"]] == [1, 2]  # default_epochs(2): first and last
    assert [row["logs"]["alpha"] for row in results["bbn"]] == [1.0, 0.75]  # 1 − ((T − 1) / 2)²
    first, last = results["bbn"]
    assert first["relative_error"]["rebalancing"] is None  # α = 1: the branch gets no gradient
    for row in (*results["ce"], last):
        assert all(0 < error < 0.5 for error in row["relative_error"].values())  # bf16: off, but not far
    assert set(results["ce"][0]["relative_error"]) == {"backbone", "head"}
    table = (out / "grad_precision.md").read_text()
    assert "### bbn" in table and "| 1 | 1 |" in table and "–" in table
    assert main(["analyze", "grad-precision", str(runs["ce"]), "--epochs", "3", "--output-dir", str(out)]) == 2
    assert "--epochs [3]: ce has epochs 1 to 2" in capsys.readouterr().err
