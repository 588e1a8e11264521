"""What every ``longtail analyze`` command writes: ``NAME.json``, ``NAME.md`` and ``NAME.png``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..io import write_json, write_text


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def label_class_axis(ax, counts) -> None:
    """The x axis of a per-class figure in head-to-tail order: each class's index and training
    count under its place when there are few enough classes to read them."""
    from .plots import tail_order

    order = tail_order(counts)
    if len(order) <= 20:
        ax.set_xticks(range(len(order)), [f"{c}\n{counts[c]}" for c in order], fontsize=7)
        ax.set_xlabel("class (index, training images), head to tail")
    else:
        ax.set_xlabel(f"class, most ({max(counts)}) to fewest ({min(counts)}) training images")


def plot_class_curves(curves: dict[str, list[float]], counts, ylabel: str, window: int = 1, ax=None):
    """One line per curve over the classes in head-to-tail order; with ``window`` > 1 the raw
    values faintly and their moving average (see :func:`~longtail.analysis.plots.moving_average`).
    Draws on ``ax`` (a panel of a larger figure) or a new figure; returns the figure."""
    from .plots import moving_average

    if ax is None:
        _, ax = pyplot().subplots(figsize=(6, 3.8))
    fig = ax.figure
    for label, values in curves.items():
        if window > 1:
            line, = ax.plot(values, alpha=0.3, linewidth=0.8)
            ax.plot(moving_average(np.asarray(values), window), color=line.get_color(),
                    label=f"{label} (mean of {window})")
        else:
            ax.plot(values, marker="o", markersize=3, label=label)
    label_class_axis(ax, counts)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; floats with two decimals, ``None`` as a dash."""
    def cell(value: Any) -> str:
        if value is None:
            return "–"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_analysis(output_dir: str | Path, name: str, results: dict, table: str, figure=None) -> list[Path]:
    """Write ``results`` (with the command that made them) as JSON, ``table`` as Markdown and
    ``figure`` (a matplotlib figure, closed afterwards) as PNG; returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / f"{name}.json", output_dir / f"{name}.md"]
    write_json(written[0], {"command": shlex.join(["longtail", *sys.argv[1:]]), **results})
    write_text(written[1], table)
    if figure is not None:
        written.append(output_dir / f"{name}.png")
        tmp = written[-1].with_name(f"{name}.tmp.png")  # atomic, as the other two files
        figure.savefig(tmp, dpi=150)
        pyplot().close(figure)
        tmp.replace(written[-1])
    return written
