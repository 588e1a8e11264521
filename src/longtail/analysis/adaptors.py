"""BBN Figure 7: α against the epoch ratio T/T_max for every adaptor of the registry.

A pure function of :data:`~longtail.methods.bbn.ADAPTORS`: each adaptor is built for
``epochs`` epochs and moved through them with ``set_epoch``, exactly as training does, so
the curves include the authors' progress ``(T − 1) / T_div`` and their rounding of T_div.
The paper leaves the Beta adaptor out for its randomness; it is drawn here as its mean,
dashed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..methods.bbn import ADAPTORS
from .outputs import markdown_table, pyplot, write_analysis


def adaptor_curves(epochs: int = 200) -> dict[str, dict]:
    """For every registered adaptor: α in each 1-based epoch T = 1..epochs (the mean for a
    stochastic one) and whether it is stochastic."""
    curves = {}
    for name in ADAPTORS.names():
        adaptor = ADAPTORS.build(name, epochs=epochs)
        alphas = []
        for epoch in range(epochs):
            adaptor.set_epoch(epoch)
            alphas.append(adaptor.value if adaptor.stochastic else adaptor())
        curves[name] = {"alpha": alphas, "stochastic": adaptor.stochastic, "divisor": adaptor.divisor}
    return curves


def plot_adaptors(curves: dict[str, dict], epochs: int):
    """Figure 7's axes: T/T_max across, α up."""
    plt = pyplot()
    ratio = np.arange(1, epochs + 1) / epochs
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, curve in curves.items():
        label = f"{name} (mean; α ~ Beta drawn every step)" if curve["stochastic"] else name
        style = {"linestyle": (0, (4, 3)), "zorder": 3} if curve["stochastic"] else {}  # over equal_weight
        ax.plot(ratio, curve["alpha"], label=label, **style)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch ratio T / T_max")
    ax.set_ylabel("α")
    ax.set_title(f"BBN adaptors over {epochs} epochs", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def analyze(output_dir: str | Path, epochs: int = 200) -> list[Path]:
    """Write ``adaptors.{json,md,png}``: every adaptor's α per epoch, and Figure 7."""
    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")
    curves = adaptor_curves(epochs)
    marks = sorted({1, max(1, epochs // 4), max(1, epochs // 2), max(1, 3 * epochs // 4), epochs})
    table = (f"α of each BBN adaptor at epoch T of {epochs} (stochastic adaptors: the mean)\n\n"
             + markdown_table(["adaptor", *(f"T={t}" for t in marks)],
                              [[name, *(float(curve["alpha"][t - 1]) for t in marks)]
                               for name, curve in curves.items()]))
    results = {"epochs": epochs, "progress": "alpha of 1-based epoch T uses t = (T - 1) / divisor",
               "adaptors": curves}
    return write_analysis(output_dir, "adaptors", results, table, plot_adaptors(curves, epochs))
