"""BBN's representation x classifier study, and the command-line entry points of this issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from longtail.analysis.representation_classifier import format_table, paper_pattern
from longtail.analysis.study_runs import train_or_reuse
from longtail.cli import main
from longtail.config import load_config
from longtail.errors import RunExists

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


def test_a_study_reuses_a_run_trained_elsewhere_with_other_runtime_settings(tiny_recipe, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe))
    assert main(["train", str(recipe), "train.epochs=1", f"output_dir={tmp_path / 'runs'}", "name=plain",
                 "train.threads=1", "train.eval_every=1", "train.checkpoint_every=0"]) == 0
    trained = tmp_path / "runs" / "plain"
    stamp = (trained / "eval.json").stat().st_mtime_ns
    study_run = tmp_path / "study" / "bbn"
    study_run.parent.mkdir()
    study_run.symlink_to(trained)  # e.g. the lane-trained run standing in a study's folder
    report = train_or_reuse(load_config(recipe, ["train.epochs=1"]), study_run, log=lambda line: None)
    assert report == json.loads((trained / "eval.json").read_text())
    assert (trained / "eval.json").stat().st_mtime_ns == stamp  # read, not trained again
    with pytest.raises(RunExists, match=r"its optim differ"):
        train_or_reuse(load_config(recipe, ["train.epochs=1", "optim.lr=0.5"]), study_run, log=lambda line: None)


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


# --- BBN Tables 3 and 4 -------------------------------------------------------------------------

def test_the_paper_numbers_show_the_paper_pattern_and_a_swap_breaks_it():
    from longtail.analysis.bbn_ablations import paper_pattern
    from longtail.analysis.paper_numbers import BBN_ADAPTOR_ERRORS, BBN_SAMPLER_ERRORS

    tables = {"sampler": dict(BBN_SAMPLER_ERRORS), "adaptor": dict(BBN_ADAPTOR_ERRORS)}
    assert all(paper_pattern(tables).values())
    tables["adaptor"]["equal_weight"] = 18.0  # between linear decay (18.55) and cosine decay (18.04)
    tables["sampler"]["class_balanced"] = 17.0
    assert paper_pattern(tables) == {"reversed_beats_uniform_and_balanced": False,
                                     "decays_beat_the_other_adaptors": False,
                                     "parabolic_increment_worst": True, "parabolic_decay_best": True}


def test_full_budget_ablations_are_the_table_3_and_4_configs():
    from longtail.analysis.bbn_ablations import ablation_config, variants

    root = Path(__file__).resolve().parents[1] / "configs" / "cifar10_lt"
    recipe = load_config(root / "bbn.yaml", ["data.imbalance_ratio=50"])
    files = {"bbn": "bbn_adaptor_parabolic_decay", "sampler_uniform": "bbn_sampler_uniform",
             "sampler_class_balanced": "bbn_sampler_class_balanced"}
    assert len(variants()) == 8
    for name, (sampler, adaptor) in variants().items():
        config = OmegaConf.to_container(ablation_config(recipe, sampler, adaptor, 200))
        expected = OmegaConf.to_container(load_config(root / f"{files.get(name, 'bbn_' + name)}.yaml"))
        for node in (config, expected):
            node["train"].pop("eval_every")
        assert config == expected, name


def test_bbn_ablations_command_trains_eight_runs_at_a_scaled_budget(tiny_recipe, tmp_path, capsys):
    recipe = tmp_path / "bbn.yaml"
    bbn = {**tiny_recipe, "model": {"name": "bbn_resnet20"}, "method": {"name": "bbn"},
           "schedule": {"warmup_epochs": 2, "milestones": [6], "gamma": 0.1},
           "train": {**tiny_recipe["train"], "epochs": 8}}
    recipe.write_text(yaml.safe_dump(bbn))
    out = tmp_path / "ablations"
    command = ["study", "bbn-ablations", str(recipe), "--epochs", "2", "--output-dir", str(out)]
    assert main(command) == 0
    results = json.loads((out / "results.json").read_text())
    runs = {"sampler": {"uniform": "sampler_uniform", "class_balanced": "sampler_class_balanced", "reversed": "bbn"},
            "adaptor": {a: "bbn" if a == "parabolic_decay" else f"adaptor_{a}" for a in
                        ("equal_weight", "beta", "parabolic_increment", "linear_decay", "cosine_decay",
                         "parabolic_decay")}}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted({*runs["sampler"].values(),
                                                                         *runs["adaptor"].values()})
    for table, column in runs.items():
        for variant, run in column.items():
            config = load_config(out / run / "config.yaml")
            assert config.train.epochs == 2 and list(config.schedule.milestones) == [2]  # 6 of 8 -> 1.5 -> 2
            assert config.schedule.warmup_epochs == 1
            assert (config.method.rebalancing_sampler if table == "sampler" else config.method.adaptor) == variant
            report = json.loads((out / run / "eval.json").read_text())
            assert results["top1_error"][table][variant] == 100.0 - report["top1"]
    assert "| Beta(0.2, 0.2) |" in (out / "table.md").read_text()
    assert results["budget"] == {"epochs": 2, "recipe_epochs": 8}

    recipe.write_text(yaml.safe_dump(tiny_recipe))  # a CE recipe: refused before any run
    capsys.readouterr()
    assert main([*command[:-1], str(tmp_path / "other")]) == 2
    assert "need a BBN recipe" in capsys.readouterr().err and not (tmp_path / "other").exists()


@pytest.mark.parametrize("native", [True, False])
def test_a_study_reuses_its_auto_precision_run(tiny_recipe, tmp_path, monkeypatch, native):
    monkeypatch.setattr("longtail.engine.experiment.native_bf16", lambda device: native)
    auto = load_config(base=tiny_recipe, overrides=["train.epochs=1", "train.precision=auto"])
    study_run = tmp_path / "study" / "ce"
    first = train_or_reuse(auto, study_run, log=lambda line: None)
    assert load_config(study_run / "config.yaml").train.precision == ("bf16" if native else "fp32")
    stamp = (study_run / "eval.json").stat().st_mtime_ns
    again = load_config(base=tiny_recipe, overrides=["train.epochs=1", "train.precision=auto"])
    assert train_or_reuse(again, study_run, log=lambda line: None) == first
    assert (study_run / "eval.json").stat().st_mtime_ns == stamp  # reused, not trained again
    other = "fp32" if native else "bf16"
    with pytest.raises(RunExists, match=r"its train differ"):
        train_or_reuse(load_config(base=tiny_recipe, overrides=["train.epochs=1", f"train.precision={other}"]),
                       study_run, log=lambda line: None)
