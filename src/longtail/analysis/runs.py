"""Where every run under a folder stands (``longtail runs DIR``).

A run is a folder with a ``config.yaml`` (at any depth under DIR; a run's own sub-folders are
not searched). Epochs done are the epochs ``metrics.jsonl`` logged, out of ``train.epochs``. Status:

- ``finished``: it has an ``eval.json`` and ``metrics.jsonl`` reached ``train.epochs``;
- ``running``: a process holds its ``train.lock`` (the trainer does while it trains). A run
  without that file (started by a longtail that did not write it) counts as running while its
  ``metrics.jsonl`` or ``checkpoints/last.pt`` changed within :data:`LEGACY_QUIET_S` seconds or
  three of its longest logged epochs, whichever is longer;
- ``interrupted``: otherwise; ``longtail train RUN_DIR --resume`` continues it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..engine.lock import LOCK_FILE, is_locked
from ..errors import NotFound
from ..io import read_jsonl

LEGACY_QUIET_S = 600


@dataclass
class RunStatus:
    name: str  # the run's folder, relative to the folder searched
    method: str
    dataset: str
    imbalance_ratio: float | None
    epochs_done: int
    epochs: int
    status: str  # finished | running | interrupted
    report: dict | None  # eval.json, when finished


def _component(spec) -> str:
    return spec.get("name", "?") if isinstance(spec, dict) else str(spec)


def _recently_changed(run_dir: Path, epochs: list[dict]) -> bool:
    window = max([LEGACY_QUIET_S, *(3 * epoch.get("epoch_s", 0) for epoch in epochs)])
    changed = [path.stat().st_mtime for path in (run_dir / "metrics.jsonl", run_dir / "checkpoints" / "last.pt")
               if path.exists()]
    return bool(changed) and time.time() - max(changed) < window


def run_status(run_dir: Path, name: str) -> RunStatus:
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    metrics = run_dir / "metrics.jsonl"
    epochs = read_jsonl(metrics) if metrics.exists() else []
    done, total = (epochs[-1]["epoch"] if epochs else 0), config.get("train", {}).get("epochs", 0)
    report = None
    if (run_dir / "eval.json").exists() and done >= total:
        status, report = "finished", json.loads((run_dir / "eval.json").read_text())
    elif is_locked(run_dir) or (not (run_dir / LOCK_FILE).exists() and _recently_changed(run_dir, epochs)):
        status = "running"
    else:
        status = "interrupted"
    data = config.get("data", {})
    return RunStatus(name, method_label(config.get("method", {})), _component(data.get("source", "?")),
                     data.get("imbalance_ratio"), done, total, status, report)


def method_label(method) -> str:
    """``standard/ce``, with what tells CE runs apart: ``standard/ce,weights=inverse_frequency`` (RW),
    ``standard/ce,sampler=class_balanced`` (RS); no spaces, so a table row splits on them."""
    label = _component(method)
    if not isinstance(method, dict):
        return label
    if "loss" in method:
        label += f"/{_component(method['loss'])}"
        if isinstance(method["loss"], dict) and method["loss"].get("weights"):
            label += f",weights={_component(method['loss']['weights'])}"
    if method.get("sampler", "uniform") != "uniform":
        label += f",sampler={_component(method['sampler'])}"
    return label


def find_runs(folder: Path) -> list[RunStatus]:
    """Every run under ``folder`` (``folder`` itself if it is one), sorted by path."""
    if not folder.is_dir():
        raise NotFound(f"{folder} is not a folder; give the folder that holds the runs, e.g. runs/")
    runs: list[Path] = []
    for config in sorted(folder.rglob("config.yaml"), key=lambda path: len(path.parts)):  # outer runs first
        if not any(run in config.parents for run in runs):  # not a sub-folder of a run
            runs.append(config.parent)
    return [run_status(run, run.relative_to(folder).as_posix()) for run in sorted(runs)]


def format_runs(runs: list[RunStatus]) -> str:
    """An aligned text table, one line per run."""
    header = ("run", "method", "dataset", "IR", "epochs", "status", "top-1", "many", "medium", "few")
    rows = [header]
    for run in runs:
        figures = [f"{run.report[key]:.2f}" if run.report and run.report.get(key) is not None else "–"
                   for key in ("top1", "many", "medium", "few")]
        ratio = "–" if run.imbalance_ratio is None else f"{run.imbalance_ratio:g}"
        rows.append((run.name, run.method, run.dataset, ratio, f"{run.epochs_done}/{run.epochs}", run.status,
                     *figures))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {3, 4, 6, 7, 8, 9}  # right-aligned columns
    return "\n".join("  ".join(cell.rjust(width) if i in numeric else cell.ljust(width)
                               for i, (cell, width) in enumerate(zip(row, widths))).rstrip() for row in rows)
