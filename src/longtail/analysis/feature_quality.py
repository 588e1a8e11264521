"""BBN Table 5: how good a trained network's representation is, as the test error of a new linear
classifier retrained on its frozen features (the Section 3 protocol, cRT).

Each stage-1 run gives one representation; a BBN run gives two, its conventional branch
(``BBN-CB``: trunk + conventional block) and its re-balancing branch (``BBN-RB``), each with a
classifier of its own, as the paper retrains them "separately ... on these two branches". The
stage-2 recipe (e.g. ``configs/cifar100_lt/crt.yaml``: class-balanced sampling, 10 epochs,
cosine learning rate) is the same for every representation. The paper's findings on
CIFAR-100-LT IR50: BBN-CB's features are about as good as CE's (58.89 against 58.62% error), and
BBN-RB's are better than RW's and RS's. Runs are reused or resumed as :mod:`.study_runs` says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import load_config
from ..errors import ConfigError, NotFound
from ..io import write_json, write_text
from .paper_numbers import BBN_FEATURE_ERRORS
from .study_runs import recipe_data, train_or_reuse

BRANCH_TAGS = {"conventional": "CB", "rebalancing": "RB"}


def stage1_config(run: Path) -> DictConfig:
    """The saved config of a run directory or results folder."""
    saved = run / "config.yaml"
    if not saved.exists():
        raise NotFound(f"no config.yaml in {run}; give a finished run directory or a results folder")
    return load_config(saved)


def representations(runs: list[tuple[Path, DictConfig]], labels: list[str]) -> dict[str, tuple[Path, str]]:
    """Label -> (stage-1 run, features) for runs and their configs: one per run, two for a BBN run
    (``LABEL-CB``, ``LABEL-RB``)."""
    if len(labels) != len(runs):
        raise ConfigError(f"{len(labels)} labels for {len(runs)} runs; give one label per run")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two runs share a label ({', '.join(labels)}); give distinct --labels")
    chosen: dict[str, tuple[Path, str]] = {}
    for (run, config), label in zip(runs, labels):
        if config.method.name == "bbn":
            chosen.update({f"{label}-{tag}": (run, branch) for branch, tag in BRANCH_TAGS.items()})
        else:
            chosen[label] = (run, "all")
    return chosen


def check_same_data(recipe: DictConfig, run: Path, config: DictConfig) -> None:
    """Refuse a stage-1 run (``config``) of another dataset or imbalance ratio than the stage-2
    recipe's, before anything trains (its classifier would be retrained on other images)."""
    trained = recipe_data(config)
    wanted = recipe_data(recipe)
    if trained[:2] != wanted[:2]:
        raise ConfigError(f"{run} was trained on {trained[2]}, but the classifier recipe uses {wanted[2]}; "
                          f"give runs of {wanted[2]} or set --imbalance-ratio / the recipe's data to theirs")


def crt_config(recipe: DictConfig, run: Path, features: str) -> DictConfig:
    """The stage-2 recipe on ``run``'s frozen ``features`` (test accuracy only at the end); ``all``
    is left as the model's default, so that a run ``longtail train`` made with the same
    ``model.run`` is the same recipe and is reused."""
    model = {"name": "frozen_features", "run": str(run), **({} if features == "all" else {"features": features})}
    return OmegaConf.merge(recipe, {"model": model, "train": {"eval_every": 0}})


def format_table(rows: dict[str, dict]) -> str:
    """Markdown: each representation's error and groups, next to the paper's CIFAR-100-LT IR50 figure."""
    groups = [g for g in ("many", "medium", "few") if any(row[g] is not None for row in rows.values())]
    lines = ["| representation | top-1 error | " + " | ".join(f"{g}-shot accuracy" for g in groups)
             + " | paper error (CIFAR-100-LT IR50) |", "|---" * (len(groups) + 3) + "|"]
    for label, row in rows.items():
        paper = BBN_FEATURE_ERRORS.get(label)
        lines.append(f"| {label} | {row['top1_error']:.2f} | " + " | ".join(f"{row[g]:.2f}" for g in groups)
                     + f" | {'–' if paper is None else f'{paper:.2f}'} |")
    return "\n".join(lines) + "\n"


def paper_pattern(errors: dict[str, float]) -> dict[str, bool]:
    """The paper's comparisons that ``errors`` (by Table 5's labels) can answer."""
    checks = {"ce_beats_rw_and_rs": ("CE", ("RW", "RS")), "bbn_rb_beats_rw_and_rs": ("BBN-RB", ("RW", "RS")),
              "bbn_cb_beats_rw_and_rs": ("BBN-CB", ("RW", "RS"))}
    return {name: errors[best] < min(errors[other] for other in others)
            for name, (best, others) in checks.items() if best in errors and all(o in errors for o in others)}


def run_study(recipe: DictConfig, runs: list[str | Path], output_dir: Path, labels: list[str] | None = None,
              log: Callable[[str], None] = print) -> dict:
    """Retrain (or reuse) a classifier on every representation; write ``table.md`` and ``results.json``."""
    configs = [(Path(run), stage1_config(Path(run))) for run in runs]
    chosen = representations(configs, labels or [run.name for run, _ in configs])
    for run, config in configs:  # every run checked before the first one trains
        check_same_data(recipe, run, config)
    output_dir = Path(output_dir)
    rows = {}
    for label, (run, features) in chosen.items():
        report = train_or_reuse(crt_config(recipe, run, features),
                                output_dir / label.lower().replace("-", "_"), log)
        rows[label] = {"run": str(run), "features": features, "top1_error": 100.0 - report["top1"],
                       **{group: report[group] for group in ("many", "medium", "few")}}
    name, ratio, data_label = recipe_data(recipe)
    title = (f"Feature quality (BBN Table 5's protocol), {data_label}: a new linear classifier trained "
             f"{recipe.train.epochs} epochs on each representation's frozen features; top-1 error (%) "
             "on the test set, final epoch")
    errors = {label: row["top1_error"] for label, row in rows.items()}
    results = {"dataset": name, "imbalance_ratio": ratio, "classifier_epochs": recipe.train.epochs,
               "representations": rows, "paper_top1_error": BBN_FEATURE_ERRORS, "paper_pattern": paper_pattern(errors)}
    write_json(output_dir / "results.json", results)
    write_text(output_dir / "table.md", f"{title}\n\n{format_table(rows)}")
    log(f"\n{format_table(rows)}written to {output_dir}/table.md, results.json")
    return results
