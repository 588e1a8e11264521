"""Recorded runs: the shipped inference weights, loading them, recomputing eval.json from them,
and the README results table built from results/."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import tiny_config
from longtail.analysis.results import recompute_eval
from longtail.analysis.results_table import TABLE_BEGIN, TABLE_END, recorded_cells, results_table, update_readme
from longtail.cli import main
from longtail.config import load_config
from longtail.engine import Trainer
from longtail.engine.distributed import processor
from longtail.models import create, load_pretrained, pretrained_transform
from longtail.models.pretrained import METADATA_KEY, WEIGHTS_FILE, verified_weights

MOCO_TINY = {"name": "moco_resnet20", "dim": 8, "queue_size": 16, "momentum": 0.99}
PACO = {"name": "paco", "alpha": 0.05, "temperature": 0.1, "query_transform": "crop_flip",
        "key_transform": "crop_flip"}
CASES = {  # model, method, train overrides; bbn runs as the CIFAR runs do (bf16, channels_last)
    "standard": ({"name": "resnet20"}, {"name": "standard"}, {}),
    "bbn": ({"name": "bbn_resnet20"}, {"name": "bbn"}, {"precision": "bf16", "channels_last": True}),
    "paco": (MOCO_TINY, PACO, {}),
}


def _train(tiny_npz, tmp_path, case: str) -> Trainer:
    model, method, train = CASES[case]
    config = load_config(base=tiny_config(tiny_npz, name=case, model=model, method=method,
                                          train={"epochs": 2, "num_workers": 0, "threads": 1, **train}))
    trainer = Trainer(config, tmp_path / "runs" / case, log=lambda _: None)
    trainer.fit()
    return trainer


@pytest.mark.parametrize("case", list(CASES))
def test_record_ships_weights_that_reproduce_the_run(case, tiny_npz, tmp_path, capsys):
    trainer = _train(tiny_npz, tmp_path, case)
    run, dest = tmp_path / "runs" / case, tmp_path / "results" / "tiny_lt" / case
    assert main(["record", str(run), str(dest)]) == 0

    weights = dest / "model.safetensors"
    summary = json.loads((dest / "summary.json").read_text())
    assert summary["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert "weights" not in json.loads((run / "summary.json").read_text())  # the run dir is untouched
    assert not list(dest.glob("*.pt")) and not (dest / "checkpoints").exists()
    keys = set(load_file(weights))
    if case == "paco":  # a plain backbone + linear head: no projector, key encoder or queue
        assert keys == set(create("resnet20", num_classes=4).state_dict())
    else:
        assert keys == set(trainer.method.model.state_dict())

    model = load_pretrained(dest)
    assert not model.training
    batch = next(iter(trainer.experiment.test_stream()))
    trainer.method.eval()
    expected = trainer.method.predict(batch.images)
    if case == "bbn":  # trained in channels_last: other conv kernels, same weights
        torch.testing.assert_close(model(batch.images), expected, rtol=1e-4, atol=1e-4)
    else:
        assert torch.equal(model(batch.images), expected)
    transform = pretrained_transform(dest)
    test_images = trainer.experiment.test.images[:len(expected)]
    images = torch.stack([transform(Image.fromarray(image)) for image in test_images])
    torch.testing.assert_close(model(images), expected, rtol=1e-4, atol=1e-4)

    recorded = (dest / "eval.json").read_bytes()
    files = sorted(path.name for path in dest.iterdir())
    capsys.readouterr()
    assert main(["eval", str(dest)]) == 0
    assert "identical" in capsys.readouterr().out
    assert (dest / "eval.json").read_bytes() == recorded and sorted(p.name for p in dest.iterdir()) == files
    report, _, _ = recompute_eval(dest)  # the whole report, ECE too: the very same logits
    assert json.loads(json.dumps(report)) == json.loads(recorded)

    # the analyses read the results folder as they read the run directory
    for target, out in ((run, "from_run"), (dest, "from_results")):
        assert main(["analyze", "weight-norms", str(target), "--labels", case,
                     "--output-dir", str(tmp_path / out)]) == 0
    from_run, from_results = (json.loads((tmp_path / out / "weight_norms.json").read_text())
                              for out in ("from_run", "from_results"))
    assert from_results["curves"] == from_run["curves"] and from_results["runs"][case]["epochs_done"] == 2
    # in the run's precision and memory format (bf16 + channels_last for bbn): the recorded top-1 and ECE
    assert main(["analyze", "calibration", str(dest), "--labels", case, "--device", "cpu",
                 "--output-dir", str(tmp_path / "calibration")]) == 0
    calibration = json.loads((tmp_path / "calibration" / "calibration.json").read_text())["runs"][case]
    assert calibration["top1"] == json.loads(recorded)["top1"]
    assert calibration["overall"]["ece"] == pytest.approx(json.loads(recorded)["ece"], abs=1e-9)


def test_eval_says_when_the_runs_bf16_is_emulated(tiny_npz, tmp_path, capsys, monkeypatch):
    _train(tiny_npz, tmp_path, "bbn")  # trained and recorded in bf16
    run, dest = tmp_path / "runs" / "bbn", tmp_path / "results" / "tiny_lt" / "bbn"
    assert main(["record", str(run), str(dest)]) == 0
    capsys.readouterr()
    for native, target, precision, noted in [(False, dest, [], True), (False, run, [], True),
                                             (False, dest, ["--precision", "fp32"], False),
                                             (True, dest, [], False)]:
        monkeypatch.setattr("longtail.engine.experiment.native_bf16", lambda device, native=native: native)
        assert main(["eval", str(target), *precision]) == 0
        said = capsys.readouterr().err
        assert ("has no native bf16" in said and "--precision fp32" in said) == noted, (native, target, precision)


def test_eval_in_another_precision_never_touches_the_record(tiny_npz, tmp_path, capsys):
    trainer = _train(tiny_npz, tmp_path, "bbn")  # trained and recorded in bf16
    run, dest = tmp_path / "runs" / "bbn", tmp_path / "results" / "tiny_lt" / "bbn"
    assert main(["record", str(run), str(dest)]) == 0
    method, recorded = trainer.method.eval(), json.loads((dest / "eval.json").read_text())
    with torch.no_grad():  # fp32 by hand: no autocast, contiguous tensors
        batches = list(trainer.experiment.test_stream())
        probabilities = torch.cat([method.predict(b.images.contiguous()).float() for b in batches]).softmax(1)
    targets = torch.cat([b.targets for b in batches])
    confidence, predicted = probabilities.max(1)
    correct = (predicted == targets).float()
    bins = (confidence * 15).ceil().clamp(1, 15)  # 15 equal-width bins, as the report's ECE
    expected_ece = 100 * sum((bins == k).float().sum() / len(targets)
                             * (correct[bins == k].mean() - confidence[bins == k].mean()).abs()
                             for k in range(1, 16) if (bins == k).any())

    files = {path.name: path.read_bytes() for path in dest.iterdir()}
    out = tmp_path / "fp32.json"
    assert main(["eval", str(dest), "--precision", "fp32", "--output", str(out)]) == 0
    assert "trained and recorded in bf16" in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in dest.iterdir()} == files
    report = json.loads(out.read_text())
    assert report["top1"] == pytest.approx(100 * correct.mean().item())
    assert report["ece"] == pytest.approx(expected_ece.item(), abs=1e-4)
    assert report["ece"] != recorded["ece"]  # bf16 logits differ in their last bits

    assert main(["eval", str(run), "--precision", "fp32"]) == 0  # beside the run's own eval.json
    assert json.loads((run / "eval_fp32.json").read_text())["ece"] == pytest.approx(report["ece"], abs=1e-4)
    assert json.loads((run / "eval.json").read_text()) == recorded
    assert main(["eval", str(dest), "--precision", "bf16"]) == 0  # its own precision: the usual check
    assert "identical" in capsys.readouterr().out
    if not torch.cuda.is_available():
        assert main(["eval", str(dest), "--precision", "fp16"]) == 2
        assert "--precision fp16 needs CUDA" in capsys.readouterr().err


def test_tampered_weights_and_overwrites_are_refused(tiny_npz, tmp_path, capsys):
    _train(tiny_npz, tmp_path, "standard")
    run, dest = tmp_path / "runs" / "standard", tmp_path / "results" / "tiny_lt" / "ce"
    assert main(["record", str(run), str(dest)]) == 0
    shipped = (dest / "model.safetensors").read_bytes()

    (run / "eval_conventional.json").write_text("{}")
    assert main(["record", str(run), str(dest)]) == 2
    error = capsys.readouterr().err
    assert "already holds a record" in error and "model.safetensors" in error and "--force" in error
    assert not (dest / "eval_conventional.json").exists()
    (run / "eval_conventional.json").unlink()
    (dest / "eval_stale.json").write_text("{}")  # a report of the record being replaced
    assert main(["record", str(run), str(dest), "--force"]) == 0
    assert not (dest / "eval_stale.json").exists() and (dest / "model.safetensors").read_bytes() == shipped

    recorded = json.loads((dest / "eval.json").read_text())
    (dest / "eval.json").write_text(json.dumps({**recorded, "many": recorded["many"] * (1 + 2**-50)}))
    capsys.readouterr()
    assert main(["eval", str(dest)]) == 0  # the same images right, a mean summed in another order
    assert "identical" in capsys.readouterr().out
    (dest / "eval.json").write_text(json.dumps({**recorded, "few": recorded["few"] + 1}))
    capsys.readouterr()
    assert main(["eval", str(dest)]) == 2
    error = capsys.readouterr().err
    assert "differs" in error and "few" in error and "top1" not in error
    here = processor(torch.device("cpu"))  # the summary names the processor that trained the run
    assert here in error and "same kind of processor" in error and "check that the data" in error
    summary = json.loads((dest / "summary.json").read_text())
    assert summary["processor"] == here and torch.backends.cpu.get_cpu_capability() in here
    for trained_on, said in (("Other CPU (AVX2)", f"trained on Other CPU (AVX2), recomputed on {here}: bf16"),
                             (None, "does not name the processor")):  # records made before it was kept
        changed = {**summary, "processor": trained_on} if trained_on else {k: v for k, v in summary.items()
                                                                          if k != "processor"}
        (dest / "summary.json").write_text(json.dumps(changed))
        assert main(["eval", str(dest)]) == 2
        assert said in capsys.readouterr().err
    damaged = bytearray(shipped)
    damaged[-1] ^= 1
    (dest / "model.safetensors").write_bytes(bytes(damaged))
    capsys.readouterr()
    assert main(["eval", str(dest)]) == 2
    assert "SHA-256" in capsys.readouterr().err
    with pytest.raises(ValueError, match="SHA-256"):
        load_pretrained(dest)


def test_unfinished_runs_are_not_recorded(tiny_npz, tmp_path, capsys):
    _train(tiny_npz, tmp_path, "standard")
    run = tmp_path / "runs" / "standard"
    state = torch.load(run / "checkpoints" / "epoch_0001.pt", weights_only=True)
    torch.save(state, run / "checkpoints" / "last.pt")  # as if stopped after epoch 1
    assert main(["record", str(run), str(tmp_path / "dest")]) == 2
    assert "epoch 1 of 2" in capsys.readouterr().err and not (tmp_path / "dest").exists()


def _fake_record(results, dataset, name, top1, seed=0, ratio=100, epochs=200, wall=600.0):
    folder = results / dataset / name
    folder.mkdir(parents=True)
    config = {"seed": seed, "name": f"{dataset}/{name}", "data": {"imbalance_ratio": ratio, "root": "/d"},
              "train": {"epochs": epochs, "threads": seed, "log_classifier_grad_every": 50 * seed}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    summary = {"top1": top1, "many": top1 + 10, "medium": top1, "few": top1 - 10, "wall_time_s": wall}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_results_table_groups_seeds_and_cites_the_paper(tmp_path):
    results = tmp_path / "results"
    _fake_record(results, "cifar100_lt", "bbn_ir100", 41.0, seed=0, wall=3000)
    _fake_record(results, "cifar100_lt", "bbn_ir100_seed1", 42.0, seed=1, wall=3600)
    _fake_record(results, "cifar100_lt", "bbn_ir100_seed2", 43.0, seed=2, wall=4200)
    _fake_record(results, "cifar100_lt", "bbn_ir50_sampler_uniform", 45.5, ratio=50)
    _fake_record(results, "cifar10_lt", "ce_ir10", 86.0, ratio=10)
    _fake_record(results, "cifar10_lt", "ce_rs_ir50", 76.0, ratio=50)
    lines = results_table(results, tmp_path).splitlines()
    assert lines[0].startswith("| dataset | method | IR | paper | measured | many | medium | few | wall time |")
    # CIFAR-10-LT first; mean ± sample std over 3 seeds = 42 ± 1; the mean wall time 3600 s
    assert lines[2].startswith("| CIFAR-10-LT | CE | 10 | 86.39 | 86.00 | 96.00 | 86.00 | 76.00 | 10 min |")
    assert lines[3].startswith("| CIFAR-10-LT | CE-RS | 50 | – | 76.00 |")  # no paper figure, after those with one
    assert lines[4].startswith("| CIFAR-100-LT | BBN | 100 | 42.56 | 42.00 ± 1.00 (n=3) | 52.00 | 42.00 | 32.00 | "
                               "60 min | [bbn_ir100](results/cifar100_lt/bbn_ir100) "
                               "[bbn_ir100_seed1](results/cifar100_lt/bbn_ir100_seed1) ")
    assert lines[5].startswith("| CIFAR-100-LT | bbn_sampler_uniform | 50 | – | 45.50 |")
    assert lines[-1] == "Paper figures: BBN Table 1 (CE, BBN)."

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nintro\n{TABLE_BEGIN}\nold rows\n{TABLE_END}\n\nafter\n")
    update_readme(readme, results)
    text = readme.read_text()
    assert "old rows" not in text and "| CIFAR-10-LT | CE |" in text and text.endswith(f"{TABLE_END}\n\nafter\n")

    _fake_record(results, "cifar100_lt", "bbn_ir100_seed3", 40.0, seed=2)
    with pytest.raises(ValueError, match="repeat a seed"):
        results_table(results)
    shutil.rmtree(results / "cifar100_lt" / "bbn_ir100_seed3")
    _fake_record(results, "cifar100_lt", "bbn_ir100_seed3", 40.0, seed=3, epochs=30)
    with pytest.raises(ValueError, match="more than the seed"):
        results_table(results)


def test_readme_table_is_generated_from_results():
    """The README's table is what `longtail results-table --readme README.md` writes."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    table = readme.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
    assert table == results_table(root / "results", root)


def test_every_run_in_the_results_table_ships_its_final_weights():
    """Each run the README's table links has weights whose SHA-256 its summary.json records
    (verified_weights raises otherwise), written from the last epoch its config trains."""
    root = Path(__file__).resolve().parents[1]
    folders = [folder for cell in recorded_cells(root / "results") for folder in cell.folders]
    assert len(folders) >= 20  # the table of 2026-12-05 links 20 runs
    for folder in folders:
        assert verified_weights(folder), folder
        with safe_open(folder / WEIGHTS_FILE, "pt") as handle:
            epoch = json.loads(handle.metadata()[METADATA_KEY])["epoch"]
        assert epoch == yaml.safe_load((folder / "config.yaml").read_text())["train"]["epochs"], folder


def test_shipped_cifar_weights_load_as_their_recorded_analysis_read_them():
    """load_pretrained on the repository's own records: ten-class models whose classifier rows
    have the norms the recorded weight-norm analysis (BBN Figure 4) measured from them."""

    from longtail.models.parts import classifier_layer

    root = Path(__file__).resolve().parents[1]
    analysis = json.loads((root / "results/analyses/cifar10_lt_ir100_weight_norms/weight_norms.json").read_text())
    order = analysis["class_order"]
    for label, name in (("CE", "cifar10_lt/ce_ir100"), ("BBN", "cifar10_lt/bbn_ir100")):
        model = load_pretrained(name)
        assert not model.training and model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        weight = classifier_layer(model).weight.detach()[order]
        half = weight.shape[1] // 2
        parts = {"CE": weight} if label == "CE" else {
            "BBN ALL": weight, "BBN W_c": weight[:, :half], "BBN W_r": weight[:, half:]}
        for curve, rows in parts.items():
            assert rows.norm(dim=1).tolist() == pytest.approx(analysis["curves"][curve]["norms"], rel=1e-6), curve
