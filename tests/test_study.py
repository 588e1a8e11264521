"""BBN's representation x classifier study, and the command-line entry points of this issue."""

from __future__ import annotations

import json

import yaml

from longtail.analysis.representation_classifier import format_table, paper_pattern
from longtail.cli import main
from longtail.config import load_config

# Made-up errors with the pattern BBN reports (rows representation, columns classifier)
PATTERNED = {"CE": {"CE": 58.62, "RW": 56.65, "RS": 56.10},
         "RW": {"CE": 64.17, "RW": 60.85, "RS": 60.26},
         "RS": {"CE": 64.46, "RW": 62.04, "RS": 61.52}}


def test_paper_pattern_recognises_the_pattern():
    pattern = paper_pattern(PATTERNED)
    assert all(pattern["classifier_RW_RS_beat_CE"].values())
    assert all(pattern["representation_CE_beats_RW_RS"].values())


def test_paper_pattern_reports_each_failing_cell():
    swapped = {rep: dict(row) for rep, row in PATTERNED.items()}
    swapped["RS"]["RW"] = 50.0  # the RS representation now wins in the RW column
    pattern = paper_pattern(swapped)
    assert pattern["representation_CE_beats_RW_RS"] == {"CE": True, "RW": False, "RS": True}
    assert all(pattern["classifier_RW_RS_beat_CE"].values())


def test_table_has_a_row_per_representation():
    lines = format_table(PATTERNED).splitlines()
    assert lines[0] == "| representation \\ classifier | CE | RW | RS |"
    assert lines[2] == "| CE | 58.62 | 56.65 | 56.10 |"
    assert len(lines) == 5


def test_study_command_runs_the_grid_and_reuses_finished_runs(tiny_recipe, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    out = tmp_path / "study"
    command = ["study", "representation-classifier", str(recipe), "--imbalance-ratio", "3",
               "--epochs", "1", "--classifier-epochs", "1", "--output-dir", str(out)]
    assert main(command) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["budget"] == {"representation_epochs": 1, "classifier_epochs": 1}
    assert results["imbalance_ratio"] == 3
    for rep in ("CE", "RW", "RS"):
        stage1 = load_config(out / f"representation_{rep}" / "config.yaml")
        assert stage1.train.epochs == 1 and stage1.data.imbalance_ratio == 3
        for cls in ("CE", "RW", "RS"):
            run = out / f"representation_{rep}_classifier_{cls}"
            report = json.loads((run / "eval.json").read_text())
            assert results["top1_error"][rep][cls] == 100.0 - report["top1"]
            assert load_config(run / "config.yaml").model.run == str(out / f"representation_{rep}")
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert "| RS |" in (out / "table.md").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/eval.json")}
    assert main(command) == 0  # everything is finished: nothing is trained again
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/eval.json")} == stamps
    longer = [*command[:6], "2", *command[7:]]  # --epochs 2 into the same directory
    assert main(longer) == 2  # refused, not silently reused


def test_eval_command_applies_posthoc_corrections(tiny_recipe, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**tiny_recipe, "output_dir": str(tmp_path / "runs"),
                                      "name": "ce"}))
    assert main(["train", str(recipe), "train.epochs=1"]) == 0
    run = tmp_path / "runs" / "ce"
    assert main(["eval", str(run), "--tau-norm", "0"]) == 0
    assert main(["eval", str(run), "--tau-norm", "1", "--logit-adjust", "1"]) == 0
    plain = json.loads((run / "eval.json").read_text())
    same = json.loads((run / "eval_taunorm0.json").read_text())
    assert same["top1"] == plain["top1"]  # tau = 0 changes nothing
    assert (run / "eval_taunorm1_logitadjust1.json").exists()
