"""The training engine: schedules, configs, checkpoints and exact resumption."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_config
from longtail.analysis.runs import run_status
from longtail.checkpoints import load_checkpoint, save_checkpoint
from longtail.config import load_config, plain
from longtail.engine import Trainer
from longtail.engine.schedules import lr_factor, schedule_phases
from longtail.registry import ConfigError

BBN_RECIPE = dict(name="multistep", epochs=200, warmup_epochs=5, milestones=[120, 160], gamma=0.01)


def test_multistep_with_warmup():
    factors = [lr_factor(epoch=e, progress=0.0, **BBN_RECIPE) for e in (0, 1, 4, 5, 119, 120, 159, 160, 199)]
    assert factors == pytest.approx([0.2, 0.4, 1.0, 1.0, 1.0, 0.01, 0.01, 1e-4, 1e-4])


def _lr_by_epoch(config_path: str, epochs: list[int]) -> list[float]:
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / config_path)
    schedule = plain(config.schedule)
    return [config.optim.lr * lr_factor(epoch=e, progress=0.5, epochs=config.train.epochs, **schedule)
            for e in epochs]


@pytest.mark.parametrize("dataset", ["cifar10_lt", "cifar100_lt"])
def test_bbn_configs_follow_the_authors_schedule(dataset):
    # REFERENCE.md: 1-based epochs 1-4 at 0.0467, 0.06, 0.0733, 0.0867; 0.1 for 5-119;
    # 0.001 for 120-159; 1e-5 from 160 (0-based epoch = 1-based - 1).
    lrs = _lr_by_epoch(f"{dataset}/bbn.yaml", [0, 1, 2, 3, 4, 118, 119, 158, 159, 199])
    assert lrs == pytest.approx([0.1 * 7 / 15, 0.06, 0.1 * 11 / 15, 0.1 * 13 / 15, 0.1, 0.1, 1e-3, 1e-3,
                                 1e-5, 1e-5])


def test_paco_cifar_config_follows_the_authors_lr_events():
    # paco_cifar.py, 0-based e: 0.05 (e + 1) / 10 for e <= 10; 0.05 to e = 320; x0.1 to 360; x0.01 after.
    lrs = _lr_by_epoch("cifar100_lt/paco.yaml", [0, 9, 10, 11, 320, 321, 360, 361, 399])
    assert lrs == pytest.approx([0.005, 0.05, 0.055, 0.05, 0.05, 0.005, 0.005, 5e-4, 5e-4])


def test_ldam_drw_keeps_ldams_schedule():
    # LDAM-DRW's code: lr 0.1 (T / 5) for 1-based T <= 5, x0.01 after T = 160, x1e-4 after 180.
    lrs = _lr_by_epoch("cifar100_lt/ldam_drw.yaml", [0, 4, 5, 159, 160, 179, 180])
    assert lrs == pytest.approx([0.02, 0.1, 0.1, 0.1, 1e-3, 1e-3, 1e-5])


@pytest.mark.parametrize("native, precision, trained_in, said", [
    (True, "auto", "bf16", r"train.precision=auto: bf16 "),
    (False, "auto", "fp32", r"train.precision=auto: fp32 \(cpu without native bf16"),
    (False, "bf16", "bf16", r"warning: train.precision=bf16 on a cpu without native bf16: .*add train.precision=fp32"),
    (True, "bf16", "bf16", None),
    (False, "fp32", "fp32", None),
])
def test_precision_follows_the_devices_native_bf16(configure, tmp_path, monkeypatch, native, precision,
                                                   trained_in, said):
    # auto picks bf16 only where the device computes it natively; an explicit bf16 is kept, with a
    # warning where it would be emulated; the record names the precision the run trained in.
    monkeypatch.setattr("longtail.engine.experiment.native_bf16", lambda device: native)
    printed = []
    Trainer(configure("train.epochs=1", f"train.precision={precision}"), tmp_path / "run", log=printed.append).fit()
    assert load_config(tmp_path / "run" / "config.yaml").train.precision == trained_in
    notes = [line for line in printed if "precision" in line]
    if said is None:
        assert notes == []
    else:
        assert len(notes) == 1 and re.match(said, notes[0]), notes
        assert notes[0] in (tmp_path / "run" / "train.log").read_text()


def test_cosine_after_warmup():
    recipe = dict(BBN_RECIPE, name="cosine", epochs=15)
    assert lr_factor(epoch=5, progress=0.0, **recipe) == pytest.approx(1.0)
    assert lr_factor(epoch=10, progress=0.0, **recipe) == pytest.approx(0.5)
    assert lr_factor(epoch=14, progress=1.0, **recipe) == pytest.approx(0.0, abs=1e-12)


def test_schedule_phases_by_hand():
    # PaCo's CIFAR recipe: 11 warm-up epochs, x0.1 after 321 and 361 epochs, 400 in all
    assert schedule_phases("multistep", 400, 11, [361, 321], 0.1) == [
        ("warm-up", 1, 11), ("lr x1", 12, 321), ("lr x0.1", 322, 361), ("lr x0.01", 362, 400)]
    # a milestone inside the warm-up lowers the first level; one at or past the end is no phase
    assert schedule_phases("multistep", 10, 3, [2, 10], 0.5) == [("warm-up", 1, 3), ("lr x0.5", 4, 10)]
    # cosine: 195 post-warm-up epochs in quarters cut at 5 + 48, 5 + 97, 5 + 146
    assert schedule_phases("cosine", 200, 5, [], 0.1) == [
        ("warm-up", 1, 5), ("cosine 1/4", 6, 53), ("cosine 2/4", 54, 102), ("cosine 3/4", 103, 151),
        ("cosine 4/4", 152, 200)]
    assert schedule_phases("cosine", 2, 0, [], 0.1) == [("cosine 1/2", 1, 1), ("cosine 2/2", 2, 2)]
    with pytest.raises(ConfigError, match="unknown schedule.name"):
        schedule_phases("step", 10, 0, [], 0.1)


def test_config_layers_and_errors(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 7}\noptim: {lr: 0.3}\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\noptim: {lr: 0.2}\n")
    config = load_config(tmp_path / "child.yaml", ["train.batch_size=64"])
    assert (config.train.epochs, config.optim.lr, config.train.batch_size) == (7, 0.2, 64)
    with pytest.raises(ConfigError, match=r"train\.epoch.*valid keys here: .*epochs"):
        load_config(tmp_path / "child.yaml", ["train.epoch=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_method_option_typo_is_named(tiny_npz, tmp_path):
    config = load_config(base=tiny_config(tiny_npz, method={"name": "standard", "sampelr": "uniform"}))
    with pytest.raises(ConfigError, match="no option 'sampelr'; valid options: .*sampler"):
        Trainer(config, tmp_path / "run")


def test_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def crash(state, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the half-written temporary is gone


def test_checkpoints_load_without_arbitrary_pickle(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"epoch": 1, "payload": Trainer}, path)  # a class object needs full unpickling
    with pytest.raises(ValueError, match="not a readable longtail checkpoint"):
        load_checkpoint(path)


def test_run_directory_contents(tiny_npz, tmp_path):
    config = load_config(base=tiny_config(tiny_npz, train={"epochs": 2}))
    report = Trainer(config, tmp_path / "run").fit()
    run = tmp_path / "run"
    for name in ("config.yaml", "command.txt", "commit.txt", "metrics.jsonl", "eval.json",
                 "summary.json", "checkpoints/last.pt"):
        assert (run / name).exists(), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt", "last.pt"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert "test_top1" in lines[-1]  # the final epoch is always evaluated
    assert json.loads((run / "eval.json").read_text())["top1"] == report["top1"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(config, run)


def _cli(*args):
    return [sys.executable, "-m", "longtail.cli", *args]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tiny_npz, tmp_path):
    config_file = tmp_path / "tiny.yaml"
    config = tiny_config(tiny_npz, train={"epochs": 6, "threads": 1})
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    whole = tmp_path / "whole"
    subprocess.run(_cli("train", str(config_file), f"output_dir={whole}"), check=True,
                   env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli("train", str(config_file), f"output_dir={killed}"),
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "tiny" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "tiny" / "eval.json").exists(), "the run finished before it was killed"
    assert run_status(killed / "tiny", "tiny").status == "interrupted"  # the kernel dropped its lock
    subprocess.run(_cli("train", str(killed / "tiny"), "--resume"), check=True, env=env,
                   capture_output=True)

    def final(run):
        return json.loads((run / "tiny" / "eval.json").read_text())

    assert final(killed)["per_class"] == final(whole)["per_class"]
    assert final(killed)["top1"] == final(whole)["top1"]
    command = (killed / "tiny" / "command.txt").read_text().splitlines()
    assert len(command) == 2 and command[1].startswith("resumed after epoch ") and "--resume" in command[1]
    losses = [[json.loads(line)["loss"] for line in (run / "tiny" / "metrics.jsonl").read_text().splitlines()]
              for run in (whole, killed)]
    assert losses[0] == losses[1]
