"""`longtail runs DIR` and the run directory's lock."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from conftest import tiny_config
from longtail.analysis.runs import method_label
from longtail.cli import main
from longtail.config import load_config
from longtail.engine import Trainer
from longtail.engine.lock import LOCK_FILE, RunLocked, run_lock


def _table(capsys, folder) -> dict[str, list[str]]:
    capsys.readouterr()
    assert main(["runs", str(folder)]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "method", "dataset", "IR", "epochs", "status", "top-1", "many", "medium", "few"]
    return {row.split()[0]: row.split()[1:] for row in rows}


def test_runs_tells_finished_running_and_interrupted_apart(tiny_npz, tmp_path, capsys):
    finished = tmp_path / "runs" / "cifar" / "finished"
    config = load_config(base=tiny_config(tiny_npz, train={"epochs": 2, "threads": 1}))
    Trainer(config, finished, log=lambda _: None).fit()
    report = json.loads((finished / "eval.json").read_text())
    # What a run killed after its first epoch leaves: one epoch logged, no eval.json or summary.json.
    partial = tmp_path / "runs" / "partial"
    shutil.copytree(finished, partial)
    (partial / "eval.json").unlink()
    (partial / "summary.json").unlink()
    metrics = (partial / "metrics.jsonl").read_text().splitlines()
    (partial / "metrics.jsonl").write_text(metrics[0] + "\n")
    (tmp_path / "runs" / "notes").mkdir()  # not a run: no config.yaml

    table = _table(capsys, tmp_path / "runs")
    figures = [f"{report[key]:.2f}" for key in ("top1", "many", "medium", "few")]
    assert table == {"cifar/finished": ["standard", "npz", "4", "2/2", "finished", *figures],
                     "partial": ["standard", "npz", "4", "1/2", "interrupted", "–", "–", "–", "–"]}

    with run_lock(partial):  # what the trainer holds while it trains
        assert _table(capsys, tmp_path / "runs")["partial"][4] == "running"
        with pytest.raises(RunLocked, match="being trained right now"):
            Trainer(load_config(partial / "config.yaml"), partial, resume=True, log=lambda _: None).fit()
    assert _table(capsys, tmp_path / "runs")["partial"][4] == "interrupted"

    # A run from before the lock file: running while its files change, interrupted once quiet.
    (partial / LOCK_FILE).unlink()
    assert _table(capsys, tmp_path / "runs")["partial"][4] == "running"
    for name in ("metrics.jsonl", "checkpoints/last.pt"):
        os.utime(partial / name, (0, 0))
    assert _table(capsys, tmp_path / "runs")["partial"][4] == "interrupted"


def test_a_second_trainer_on_a_running_run_is_refused(tiny_npz, tmp_path, capsys):
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(tiny_npz, train={"epochs": 1, "threads": 1})))
    run = tmp_path / "runs" / "tiny"
    with run_lock(run):
        assert main(["train", str(config_file), f"output_dir={tmp_path / 'runs'}"]) == 2
    assert "being trained right now (pid" in capsys.readouterr().err
    assert not (run / "checkpoints").exists()
    assert main(["train", str(config_file), f"output_dir={tmp_path / 'runs'}"]) == 0  # released


@pytest.mark.parametrize("method, label", [
    ({"name": "standard", "loss": "ce", "sampler": "uniform"}, "standard/ce"),
    ({"name": "standard", "loss": {"name": "ce", "weights": "inverse_frequency"}, "sampler": "uniform"},
     "standard/ce,weights=inverse_frequency"),
    ({"name": "standard", "loss": "ce", "sampler": "class_balanced"}, "standard/ce,sampler=class_balanced"),
    ({"name": "standard", "loss": {"name": "ldam", "weights": {"name": "deferred", "switch_epoch": 160}},
      "sampler": {"name": "deferred", "after": "class_balanced"}}, "standard/ldam,weights=deferred,sampler=deferred"),
    ({"name": "bbn", "conventional_sampler": "uniform", "rebalancing_sampler": "reversed"}, "bbn"),
])
def test_the_method_column_tells_re_weighting_and_re_sampling_runs_apart(method, label):
    assert method_label(method) == label
