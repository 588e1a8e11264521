"""The command line as a user meets it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import tiny_config
from longtail.analysis.results_table import TABLE_BEGIN, TABLE_END
from longtail.cli import main, parse_args
from longtail.errors import DataError


def test_datasets_lists_classes_and_total(capsys):
    assert main(["datasets", "digits", "--imbalance-ratio", "10", "--many", "60", "--few", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11
    counts = [int(line.split()[2]) for line in lines[:10]]
    assert counts[0] >= 10 * counts[-1] >= counts[0] - 9  # n_min = int(n_max / 10)
    assert lines[-1].startswith(f"total {sum(counts)} training images in 10 classes")


def test_missing_dataset_says_where_and_how(tmp_path, capsys):
    assert main(["datasets", "cifar100", "--data-root", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "cifar100.npz") in error and "download" in error and "LONGTAIL_DATA" in error


def test_labels_out_of_range_are_refused(tmp_path, capsys):
    x = np.zeros((4, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=np.array([0, 1, 2, 3]), x_test=x,
             y_test=np.array([0, 1, 2, 3]), classes=np.array(["a", "b"]))
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": {"name": "npz", "path": str(tmp_path / "bad.npz")}}}))
    assert main(["train", str(config), f"output_dir={tmp_path}"]) == 2
    assert "labels outside 0..1" in capsys.readouterr().err


def test_unreadable_image_is_named(tmp_path, capsys):
    Image.new("RGB", (4, 4)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "train.txt").write_text("good.png 0\nbad.png 1\n")
    (tmp_path / "test.txt").write_text("good.png 0\n")
    from longtail.data import SOURCES

    source = SOURCES.build({"name": "filelist", "train_list": "train.txt", "test_list": "test.txt"},
                           root=str(tmp_path))
    assert source.train.load(0).shape == (3, 4, 4)
    with pytest.raises(DataError, match="bad.png"):
        source.train.load(1)


def test_train_eval_record(tiny_npz, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_npz, train={"epochs": 2})))
    assert main(["train", str(config), f"output_dir={tmp_path / 'runs'}"]) == 0
    run = tmp_path / "runs" / "tiny"
    trained = json.loads((run / "eval.json").read_text())
    (run / "eval.json").unlink()
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "eval.json").read_text())["per_class"] == trained["per_class"]
    assert "top-1" in capsys.readouterr().out
    assert main(["eval", str(run), "--logit-adjust", "1"]) == 0

    results = tmp_path / "results"
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{TABLE_BEGIN}\n{TABLE_END}\n\nafter\n")
    assert main(["record", str(run), str(results / "tiny_lt" / "ce"), "--readme", str(readme)]) == 0
    assert not list((results / "tiny_lt" / "ce").glob("*.pt"))
    assert (results / "tiny_lt" / "ce" / "eval_logitadjust1.json").exists()
    text = readme.read_text()
    assert f"| tiny_lt | CE | 4 | – | {trained['top1']:.2f} |" in text and text.endswith("after\n")


def test_overrides_may_follow_the_options():
    args = parse_args(["train", "c.yaml", "a.b=1", "--data-root", "D", "train.epochs=100", "--resume", "x=2"])
    assert args.overrides == ["a.b=1", "train.epochs=100", "x=2"]
    assert args.data_root == "D" and args.resume


@pytest.mark.parametrize("argv", [
    ["train", "c.yaml", "--bogus"],  # an unknown option
    ["train", "c.yaml", "--data-root", "D", "stray"],  # a stray word, not key=value
    ["eval", "run", "train.epochs=1"],  # eval takes no overrides
])
def test_unrecognized_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "unrecognized arguments" in capsys.readouterr().err


def test_demo_compares_the_methods_and_draws_the_tail(tmp_path, capsys):
    from longtail.cli import DEMO_METHODS, main

    figure = tmp_path / "tail.png"
    assert main(["demo", "train.epochs=1", "train.threads=1", "--output", str(figure)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("method"):].splitlines()
    assert [row.rsplit(maxsplit=4)[0] for row in table[1:1 + len(DEMO_METHODS)]] == list(DEMO_METHODS)
    assert list(DEMO_METHODS)[:2] == ["CE", "Balanced Softmax"] and {"BBN", "PaCo"} <= set(DEMO_METHODS)
    assert figure.stat().st_size > 10_000 and figure.read_bytes()[:4] == b"\x89PNG"
