"""The README's results table, built from ``results/``.

Rows are cells: dataset, method and imbalance ratio. The method is a run folder's name without
its ``_irN`` part (``bbn`` for ``bbn_ir100``; ``bbn_sampler_uniform`` for
``bbn_ir50_sampler_uniform``), the imbalance ratio comes from its ``config.yaml``. Seeds: the
folders ``NAME``, ``NAME_seed1``, ``NAME_seed2``, ... of one dataset folder are runs of one cell,
reported as mean ± sample standard deviation over the n runs (and the mean of the other
figures). Their configs must differ only in ``seed`` and in settings that do not change training
(:data:`longtail.config.RUNTIME_KEYS`), and their seeds must differ.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import training_recipe
from ..errors import ConfigError
from ..io import write_text
from .paper_numbers import PAPER, paper_top1

TABLE_BEGIN = "<!-- results-table: written by `longtail results-table --readme README.md` from results/ -->"
TABLE_END = "<!-- /results-table -->"
SEED_SUFFIX = re.compile(r"_seed\d+$")
RATIO_PART = re.compile(r"_ir\d+(?=_|$)")
DATASET_LABELS = {"cifar10_lt": "CIFAR-10-LT", "cifar100_lt": "CIFAR-100-LT"}
# methods the papers' tables do not list on their own (BBN's analyses train them)
METHOD_LABELS = {"ce_rs": "CE-RS", "ce_rw": "CE-RW", "ce_reversed": "CE, reversed sampler"}


@dataclass
class Cell:
    """One row of the table: the runs (seeds) of one dataset, method and imbalance ratio."""

    dataset: str
    name: str  # the folder name without _seedK, e.g. bbn_ir100
    folders: list[Path]
    summaries: list[dict]
    imbalance_ratio: float | None

    @property
    def method(self) -> str:
        return RATIO_PART.sub("", self.name)

    def mean(self, key: str) -> float | None:
        values = [summary.get(key) for summary in self.summaries]
        return None if None in values else statistics.fmean(values)


def recorded_cells(results_dir: Path) -> list[Cell]:
    """Every recorded run (folders with a ``summary.json``), grouped into cells by seed suffix."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for summary_file in sorted(results_dir.glob("*/*/summary.json")):
        folder = summary_file.parent
        groups.setdefault((folder.parent.name, SEED_SUFFIX.sub("", folder.name)), []).append(folder)
    cells = []
    for (dataset, name), folders in groups.items():
        configs = [yaml.safe_load((folder / "config.yaml").read_text()) for folder in folders]
        seeds = [config.get("seed") for config in configs]
        if len(set(seeds)) < len(seeds):
            raise ConfigError(f"the runs of {dataset}/{name} ({', '.join(f.name for f in folders)}) repeat a "
                             f"seed ({seeds}); a _seedK folder must hold a run with another seed")
        for folder, config in zip(folders[1:], configs[1:]):
            if training_recipe(config, ignore=("seed",)) != training_recipe(configs[0], ignore=("seed",)):
                raise ConfigError(f"{folder}/config.yaml differs from {folders[0]}/config.yaml in more than "
                                 "the seed; give the run its own folder name, not a _seedK one")
        summaries = [json.loads((folder / "summary.json").read_text()) for folder in folders]
        cells.append(Cell(dataset, name, folders, summaries, configs[0]["data"].get("imbalance_ratio")))
    datasets, methods = list(DATASET_LABELS), list(PAPER)

    def order(cell: Cell) -> tuple:
        return (datasets.index(cell.dataset) if cell.dataset in datasets else len(datasets), cell.dataset,
                methods.index(cell.method) if cell.method in methods else len(methods), cell.method,
                -(cell.imbalance_ratio or 0), cell.name)

    return sorted(cells, key=order)


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _measured(cell: Cell) -> str:
    top1 = [summary["top1"] for summary in cell.summaries]
    if len(top1) == 1:
        return f"{top1[0]:.2f}"
    return f"{statistics.fmean(top1):.2f} ± {statistics.stdev(top1):.2f} (n={len(top1)})"


def results_table(results_dir: Path, link_from: Path = Path(".")) -> str:
    """The Markdown results table of every recorded run, links relative to ``link_from``, and a
    line naming where the paper figures come from."""
    rows = ["| dataset | method | IR | paper | measured | many | medium | few | wall time | folder |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    compared = set()
    for cell in recorded_cells(results_dir):
        paper = paper_top1(cell.dataset, cell.method, cell.imbalance_ratio)
        label = PAPER[cell.method].label if cell.method in PAPER else METHOD_LABELS.get(cell.method, cell.method)
        if paper is not None:
            compared.add(cell.method)
        wall = cell.mean("wall_time_s")
        links = " ".join(f"[{folder.name}]({Path(os.path.relpath(folder, link_from)).as_posix()})"
                         for folder in cell.folders)
        ratio = "–" if cell.imbalance_ratio is None else f"{cell.imbalance_ratio:g}"
        groups = " | ".join(_figure(cell.mean(key)) for key in ("many", "medium", "few"))
        rows.append(f"| {DATASET_LABELS.get(cell.dataset, cell.dataset)} | {label} | {ratio} | {_figure(paper)} | "
                    f"{_measured(cell)} | {groups} | {'–' if wall is None else f'{wall / 60:.0f} min'} | {links} |")
    if len(rows) == 2:
        rows.append("| – | no recorded runs yet | | | | | | | | |")
    sources: dict[str, list[str]] = {}
    for method in [method for method in PAPER if method in compared]:
        sources.setdefault(PAPER[method].source, []).append(PAPER[method].label)
    cited = "; ".join(f"{source} ({', '.join(labels)})" for source, labels in sources.items())
    return "\n".join(rows) + ("\n\nPaper figures: " + cited + "." if cited else "")


def update_readme(readme: Path, results_dir: Path) -> None:
    """Rewrite the table between the README's results-table markers from ``results_dir``."""
    text = readme.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise ConfigError(f"{readme} lacks the lines {TABLE_BEGIN} and {TABLE_END} that mark where the "
                         "results table goes; add them")
    head, rest = text.split(TABLE_BEGIN, 1)
    tail = rest.split(TABLE_END, 1)[1]
    table = results_table(results_dir, readme.parent)
    write_text(readme, f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}")
