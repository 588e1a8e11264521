"""What every ``longtail analyze`` command writes: ``NAME.json``, ``NAME.md`` and ``NAME.png``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from ..engine.checkpoint import write_json, write_text


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
