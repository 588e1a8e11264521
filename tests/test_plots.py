"""Comparison figures: the tail order, the smoothing and the group spans are computed right,
and `longtail plot` writes a figure from eval.json reports alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longtail.analysis.plots import group_boundaries, moving_average, plot_comparison, tail_order
from longtail.cli import main


def report(train_counts, per_class, top1=50.0):
    return {"train_counts": train_counts, "per_class": per_class, "top1": top1, "many": 70.0,
            "medium": 50.0, "few": None, "many_threshold": 100, "few_threshold": 20}


def test_tail_order_sorts_by_count_and_keeps_ties_in_class_order():
    assert tail_order([5, 500, 50, 500, 5]).tolist() == [1, 3, 2, 0, 4]


def test_moving_average_shrinks_its_window_at_the_ends():
    values = np.array([0.0, 3.0, 6.0, 9.0, 12.0])
    # window 3: ends average two values, the middle three
    np.testing.assert_allclose(moving_average(values, 3), [1.5, 3.0, 6.0, 9.0, 10.5])
    np.testing.assert_allclose(moving_average(values, 1), values)


def test_group_boundaries_follow_the_thresholds_along_the_tail():
    counts = [30, 500, 10, 150, 101, 100, 20, 19]  # tail order: 500 150 101 | 100 30 20 | 19 10
    spans = group_boundaries(report(counts, [0.0] * 8))
    assert spans == [("many", 0, 3), ("medium", 3, 6), ("few", 6, 8)]


def test_plot_command_writes_a_figure(tmp_path, capsys):
    counts = [500, 200, 90, 40, 15, 5]
    for name, accuracy in {"ce": [90, 80, 50, 30, 10, 0], "bbn": [85, 80, 60, 45, 25, 10]}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval.json").write_text(json.dumps(report(counts, accuracy)))
    out = tmp_path / "figure.png"
    assert main(["plot", str(tmp_path / "ce"), str(tmp_path / "bbn" / "eval.json"), "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "written to" in capsys.readouterr().out


def test_group_bars_leave_out_a_group_without_classes(tmp_path, monkeypatch):
    import matplotlib.figure

    ticks = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, **kwargs: ticks.append(
        [label.get_text() for label in fig.axes[1].get_xticklabels()]))
    # CIFAR-10-LT-like counts: none under the few-shot threshold of 20
    plot_comparison({"ce": report([500, 200, 90, 40], [90.0, 80.0, 50.0, 30.0])}, tmp_path / "f.png")
    plot_comparison({"ce": report([500, 90, 5], [90.0, 50.0, 10.0])}, tmp_path / "f.png")
    assert ticks == [["overall", "many", "medium"], ["overall", "many", "medium", "few"]]


@pytest.mark.parametrize(("content", "message"), [
    (None, "longtail eval"),
    ({"top1": 1.0, "per_class": [1.0]}, "train_counts"),
])
def test_plot_explains_missing_or_old_reports(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "eval.json").write_text(json.dumps(content))
    assert main(["plot", str(tmp_path), "--output", str(tmp_path / "f.png")]) == 2
    assert message in capsys.readouterr().err


def test_plot_refuses_runs_on_different_class_counts(tmp_path, capsys):
    for name, counts in {"a": [100, 10], "b": [50, 10]}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval.json").write_text(json.dumps(report(counts, [50.0, 50.0])))
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(tmp_path / "f.png")]) == 2
    assert "other class counts" in capsys.readouterr().err
