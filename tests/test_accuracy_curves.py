"""``longtail analyze accuracy-curves``: the logged test accuracy, final against last-epochs mean and best."""

from __future__ import annotations

import json

import pytest

from longtail.analysis.accuracy_curves import logged_accuracy, read_metrics, summarize
from longtail.cli import main


def write_run(run_dir, top1_by_epoch: dict[int, float]) -> None:
    """A run directory whose metrics.jsonl logged test top-1 at the given epochs (others: training only)."""
    run_dir.mkdir(parents=True)
    lines = []
    for epoch in range(1, max(top1_by_epoch) + 1):
        line = {"epoch": epoch, "loss": 1.0 / epoch}
        if epoch in top1_by_epoch:
            line.update(test_top1=top1_by_epoch[epoch], test_many=top1_by_epoch[epoch] + 5, test_medium=None)
        lines.append(json.dumps(line))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_summary_by_hand(tmp_path):
    write_run(tmp_path / "run", {2: 50.0, 4: 70.0, 6: 60.0, 8: 64.0})
    curve = logged_accuracy(read_metrics(tmp_path / "run"))
    assert curve["epoch"] == [2, 4, 6, 8] and curve["many"] == [55.0, 75.0, 65.0, 69.0]
    assert curve["medium"] == [None] * 4
    summary = summarize(curve, last=2)
    assert summary["final_epoch"] == 8 and summary["final_top1"] == 64.0
    assert summary["last_mean"] == pytest.approx(62.0) and summary["last_std"] == pytest.approx(2.0)
    assert (summary["best_epoch"], summary["best_top1"], summary["best_minus_final"]) == (4, 70.0, 6.0)


def test_command_writes_table_and_figure(tmp_path):
    write_run(tmp_path / "a", {1: 10.0, 2: 30.0, 3: 20.0})
    write_run(tmp_path / "b", {3: 40.0})
    out = tmp_path / "out"
    assert main(["analyze", "accuracy-curves", str(tmp_path / "a"), str(tmp_path / "b"), "--last", "2",
                 "--paper", "35", "--output-dir", str(out)]) == 0
    results = json.loads((out / "accuracy_curves.json").read_text())
    assert results["paper"] == 35 and results["summaries"]["b"]["best_minus_final"] == 0
    assert results["curves"]["a"]["top1"] == [10.0, 30.0, 20.0]
    assert "| a | 20.00 | 25.00 ± 5.00 | 30.00 (2) | 10.00 |" in (out / "accuracy_curves.md").read_text()
    assert (out / "accuracy_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_without_test_accuracy_is_explained(tmp_path, capsys):
    write_run(tmp_path / "a", {1: 10.0})
    (tmp_path / "a" / "metrics.jsonl").write_text('{"epoch": 1, "loss": 2.0}\n')
    assert main(["analyze", "accuracy-curves", str(tmp_path / "a"), "--output-dir", str(tmp_path / "out")]) == 2
    assert "train.eval_every" in capsys.readouterr().err
    assert main(["analyze", "accuracy-curves", str(tmp_path / "missing"), "--output-dir", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
