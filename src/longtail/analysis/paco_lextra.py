"""PaCo Figure 4 (Section 3.4.1, Eq. 6): the term PaCo adds to multi-task learning,

    L_extra(P_sup) = −log P_sup − αK* log(1 − P_sup),   K* = q* · length(queue),

for a balanced dataset whose classes all have frequency q*. Its minimum lies where the
derivative −1/P + αK*/(1 − P) vanishes, at P_sup = 1 / (1 + αK*): with the paper's ImageNet
values (q* = 0.001, queue 8192, α = 0.05, αK* ≈ 0.41) about 0.71, as the paper says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .outputs import markdown_table, pyplot, write_analysis


def extra_loss(p_sup: np.ndarray, alpha_k: float) -> np.ndarray:
    """Eq. 6 at probabilities ``p_sup`` in (0, 1)."""
    return -np.log(p_sup) - alpha_k * np.log1p(-p_sup)


def lextra_curve(alpha: float = 0.05, queue: int = 8192, q_star: float = 0.001,
                 points: int = 100_000) -> dict:
    """L_extra on ``points`` values of P_sup spread evenly over (0, 1), with its numerical
    argmin and the closed form 1 / (1 + αK*)."""
    if not 0 < q_star <= 1 or queue < 1 or alpha <= 0:
        raise ConfigError(f"need alpha > 0, queue >= 1 and 0 < q* <= 1, got alpha {alpha}, "
                         f"queue {queue}, q* {q_star}")
    alpha_k = alpha * q_star * queue
    p_sup = (np.arange(points) + 0.5) / points
    loss = extra_loss(p_sup, alpha_k)
    best = int(np.argmin(loss))
    return {"alpha": alpha, "queue": queue, "q_star": q_star, "K_star": q_star * queue,
            "alpha_K_star": alpha_k, "argmin": float(p_sup[best]), "minimum": float(loss[best]),
            "argmin_closed_form": 1 / (1 + alpha_k), "p_sup": p_sup, "loss": loss}


def plot_lextra(curve: dict):
    """The curve with its minimum marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(curve["p_sup"], curve["loss"])
    ax.axvline(curve["argmin"], color="0.5", linestyle=":")
    ax.annotate(f"min at P_sup = {curve['argmin']:.3f}", (curve["argmin"], curve["minimum"]),
                xytext=(0.3, 0.75), textcoords="axes fraction", arrowprops={"arrowstyle": "->"})
    ax.set_ylim(0, max(6.0, 2 * curve["minimum"]))
    ax.set_xlim(0, 1)
    ax.set_xlabel("P_sup")
    ax.set_ylabel("L_extra")
    ax.set_title(f"α = {curve['alpha']:g}, queue {curve['queue']}, q* = {curve['q_star']:g} "
                 f"(αK* = {curve['alpha_K_star']:.4g})", fontsize=9)
    fig.tight_layout()
    return fig


def analyze(output_dir: str | Path, alpha: float = 0.05, queue: int = 8192, q_star: float = 0.001) -> list[Path]:
    """Write ``paco_lextra.{json,md,png}``: Figure 4 and where its minimum lies."""
    curve = lextra_curve(alpha, queue, q_star)
    keys = ("alpha", "queue", "q_star", "K_star", "alpha_K_star", "argmin", "argmin_closed_form", "minimum")
    results = {key: curve[key] for key in keys}
    results["paper_argmin"] = 0.71
    # every 100th point: enough to redraw the curve
    results["curve"] = {"p_sup": curve["p_sup"][::100].tolist(), "loss": curve["loss"][::100].tolist()}
    table = ("PaCo's L_extra (Eq. 6): where it is smallest (paper: 0.71 for ImageNet's values)\n\n"
             + markdown_table(["α", "queue", "q*", "αK*", "argmin P_sup", "1 / (1 + αK*)", "L_extra there"],
                              [[f"{alpha:g}", queue, f"{q_star:g}",
                                *(f"{curve[key]:.4f}" for key in ("alpha_K_star", "argmin", "argmin_closed_form",
                                                                  "minimum"))]]))
    return write_analysis(output_dir, "paco_lextra", results, table, plot_lextra(curve))
