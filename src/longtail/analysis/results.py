"""Recorded results: copy a run's small files into ``results/`` and tabulate them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

RECORDED = ("config.yaml", "command.txt", "commit.txt", "metrics.jsonl", "eval.json", "summary.json", "train.log",
            "classifier_grads.jsonl")
TABLE_MARK = "RESULTS_TABLE"


def record(run_dir: Path, destination: Path) -> list[str]:
    """Copy a finished run's text files (never checkpoints) into ``destination``, including the
    variant reports ``longtail eval`` wrote (``eval_<variant>.json``: one BBN branch, post-hoc)."""
    if not (run_dir / "eval.json").exists():
        raise FileNotFoundError(f"{run_dir} has no eval.json: the run has not finished")
    destination.mkdir(parents=True, exist_ok=True)
    copied = [name for name in RECORDED if (run_dir / name).exists()]
    copied += sorted(path.name for path in run_dir.glob("eval_*.json"))
    for name in copied:
        shutil.copy2(run_dir / name, destination / name)
    return copied


def results_table(results_dir: Path) -> str:
    """Markdown rows: paper vs measured top-1 (and many/medium/few) for every recorded run."""
    paper_file = results_dir / "paper_numbers.yaml"
    paper = yaml.safe_load(paper_file.read_text()) if paper_file.exists() else {}
    rows = []
    for summary_file in sorted(results_dir.glob("*/*/summary.json")):
        key = summary_file.parent.relative_to(results_dir).as_posix()
        summary = json.loads(summary_file.read_text())
        dataset, method = key.split("/")
        cells = [f"{summary[k]:.2f}" if summary.get(k) is not None else "–" for k in ("many", "medium", "few")]
        reference = f"{paper[key]:.2f}" if key in paper else "–"
        rows.append(f"| {dataset} | {method} | {reference} | {summary['top1']:.2f} | "
                    f"{' | '.join(cells)} | [results/{key}](results/{key}) |")
    return "\n".join(rows) if rows else "| – | no recorded runs yet | | | | | | |"


def update_readme(readme: Path, results_dir: Path) -> None:
    """Replace the rows between the results table header and the next blank line."""
    lines = readme.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| dataset | method | paper"))
    start = header + 2
    end = start
    while end < len(lines) and (lines[end].startswith("|") or lines[end] == TABLE_MARK):
        end += 1
    lines[start:end] = results_table(results_dir).splitlines()
    readme.write_text("\n".join(lines) + "\n")
