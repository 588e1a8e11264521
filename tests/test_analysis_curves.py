"""The analyses that are pure functions: BBN's adaptor curves (Figure 7) and PaCo's L_extra (Figure 4)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from longtail.analysis.adaptors import adaptor_curves
from longtail.analysis.paco_lextra import extra_loss, lextra_curve
from longtail.cli import main


def test_adaptor_curves_follow_the_papers_formulas():
    curves = adaptor_curves(epochs=200)
    assert set(curves) == {"beta", "cosine_decay", "equal_weight", "linear_decay", "parabolic_decay",
                           "parabolic_increment"}
    t = np.arange(200) / 200  # 1-based epoch T uses t = (T - 1) / T_max
    np.testing.assert_allclose(curves["parabolic_decay"]["alpha"], 1 - t**2)
    np.testing.assert_allclose(curves["linear_decay"]["alpha"], 1 - t)
    np.testing.assert_allclose(curves["cosine_decay"]["alpha"], np.cos(np.pi / 2 * t))
    np.testing.assert_allclose(curves["parabolic_increment"]["alpha"], t**2)
    assert curves["equal_weight"]["alpha"] == [0.5] * 200
    assert curves["beta"]["stochastic"] and curves["beta"]["alpha"] == [0.5] * 200
    assert not any(curve["stochastic"] for name, curve in curves.items() if name != "beta")


def test_adaptor_curves_keep_the_authors_rounding_of_180_epochs():
    curves = adaptor_curves(epochs=180)  # T_div = 200: alpha stops near 0.2, not 0
    assert curves["parabolic_decay"]["divisor"] == 200
    assert curves["parabolic_decay"]["alpha"][-1] == pytest.approx(1 - (179 / 200) ** 2)


def test_adaptors_command_writes_figure_and_tables(tmp_path):
    assert main(["analyze", "adaptors", "--epochs", "10", "--output-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "adaptors.json").read_text())
    assert results["epochs"] == 10 and len(results["adaptors"]["linear_decay"]["alpha"]) == 10
    assert (tmp_path / "adaptors.png").read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "adaptors.md").read_text()
    assert "| linear_decay | 1.00 |" in table and "T=10" in table
    assert results["command"].startswith("longtail")


def test_extra_loss_by_hand():
    # at P_sup = 1/2: -log(1/2) - c log(1/2) = (1 + c) log 2
    assert extra_loss(np.array([0.5]), 0.41)[0] == pytest.approx(1.41 * math.log(2))


@pytest.mark.parametrize(("alpha", "queue", "q_star"), [(0.05, 8192, 0.001), (0.1, 1024, 0.01), (0.02, 4096, 0.0005)])
def test_lextra_argmin_is_the_closed_form(alpha, queue, q_star):
    curve = lextra_curve(alpha, queue, q_star)
    alpha_k = alpha * queue * q_star
    assert curve["alpha_K_star"] == pytest.approx(alpha_k)
    assert curve["argmin"] == pytest.approx(1 / (1 + alpha_k), abs=1e-4)  # grid spacing 1e-5
    assert curve["argmin_closed_form"] == pytest.approx(1 / (1 + alpha_k))


def test_lextra_command_reports_the_papers_071(tmp_path):
    assert main(["analyze", "paco-lextra", "--output-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "paco_lextra.json").read_text())
    assert results["alpha_K_star"] == pytest.approx(0.4096)  # the paper's "0.41"
    assert round(results["argmin"], 2) == 0.71
    assert (tmp_path / "paco_lextra.png").exists() and "0.7094" in (tmp_path / "paco_lextra.md").read_text()


def test_lextra_refuses_impossible_values(tmp_path, capsys):
    assert main(["analyze", "paco-lextra", "--q-star", "2", "--output-dir", str(tmp_path)]) == 2
    assert "q*" in capsys.readouterr().err
