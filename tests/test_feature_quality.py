"""BBN Table 5 as a command: a classifier retrained on each run's frozen features (both branches
of a BBN run), reused when finished, refused on another dataset's runs before anything trains."""

from __future__ import annotations

import json

import pytest
import yaml

from longtail.analysis.feature_quality import paper_pattern
from longtail.analysis.paper_numbers import BBN_FEATURE_ERRORS
from longtail.cli import main
from longtail.config import load_config

BBN = ("model.name=bbn_resnet20", "method.name=bbn")


@pytest.fixture
def crt_recipe(tiny_recipe, tmp_path):
    """The tiny recipe as a cRT stage 2: class-balanced sampling, one epoch."""
    recipe = {**tiny_recipe, "method": {"sampler": "class_balanced"},
              "train": {**tiny_recipe["train"], "epochs": 1}}
    path = tmp_path / "crt.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_one_classifier_per_representation_and_two_for_a_bbn_run(crt_recipe, tiny_run, tmp_path):
    ce, bbn = tiny_run(), tiny_run(*BBN)
    out = tmp_path / "table5"
    command = ["study", "feature-quality", str(crt_recipe), "--runs", str(ce), str(bbn),
               "--labels", "CE", "BBN", "--output-dir", str(out)]
    assert main(command) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["representations"]
    assert list(rows) == ["CE", "BBN-CB", "BBN-RB"]
    for label, folder, run, features in [("CE", "ce", ce, None), ("BBN-CB", "bbn_cb", bbn, "conventional"),
                                         ("BBN-RB", "bbn_rb", bbn, "rebalancing")]:
        config = load_config(out / folder / "config.yaml")
        assert config.model.run == str(run) and config.model.get("features") == features
        assert config.method.sampler == "class_balanced" and config.train.epochs == 1
        report = json.loads((out / folder / "eval.json").read_text())
        assert rows[label]["top1_error"] == pytest.approx(100.0 - report["top1"])
        assert rows[label]["many"] == report["many"]
    table = (out / "table.md").read_text()
    assert "| BBN-CB |" in table and "| 58.89 |" in table and "| 58.62 |" in table
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/eval.json")}
    assert main(command) == 0  # all finished: nothing is trained again
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/eval.json")} == stamps


def test_runs_of_another_imbalance_ratio_are_refused_before_training(crt_recipe, tiny_run, tmp_path, capsys):
    out = tmp_path / "table5"
    assert main(["study", "feature-quality", str(crt_recipe), "--imbalance-ratio", "3",
                 "--runs", str(tiny_run()), "--output-dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert "npz IR4" in error and "npz IR3" in error
    assert not out.exists()


@pytest.mark.parametrize("labels, problem", [(["CE"], "1 labels for 2 runs"), (["A", "A"], "share a label")])
def test_labels_must_name_each_run_once(crt_recipe, tiny_run, tmp_path, capsys, labels, problem):
    assert main(["study", "feature-quality", str(crt_recipe), "--runs", str(tiny_run()), str(tiny_run()),
                 "--labels", *labels, "--output-dir", str(tmp_path / "out")]) == 2
    assert problem in capsys.readouterr().err


def test_paper_pattern_on_the_papers_and_on_cifar10_figures():
    assert paper_pattern(BBN_FEATURE_ERRORS) == {"ce_beats_rw_and_rs": True, "bbn_rb_beats_rw_and_rs": True,
                                                 "bbn_cb_beats_rw_and_rs": True}
    # CIFAR-10-LT IR50 as recorded: the conventional branch's features are the weakest
    measured = {"CE": 20.06, "RW": 22.75, "RS": 23.97, "BBN-CB": 26.02, "BBN-RB": 20.59}
    assert paper_pattern(measured) == {"ce_beats_rw_and_rs": True, "bbn_rb_beats_rw_and_rs": True,
                                       "bbn_cb_beats_rw_and_rs": False}
    assert paper_pattern({"CE": 20.0, "RW": 22.0}) == {}  # nothing to compare without RS
