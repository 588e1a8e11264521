"""The runs of a multi-run study: each in its own directory under the study's, a finished one
(``eval.json``) reused, an interrupted one resumed from its checkpoint, one of another recipe
or budget refused, so that a study can simply be run again. Settings that do not change what is
trained (:data:`longtail.config.RUNTIME_KEYS`: threads, device, run name, ...) may differ, so a
run that ``longtail train`` made can stand in a study's folder (a link to it will do)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..checkpoints import LAST
from ..config import training_recipe
from ..errors import RunExists


def scaled_schedule(schedule: DictConfig, epochs: int, recipe_epochs: int) -> dict:
    """The recipe's warm-up and milestones shrunk in proportion to a shorter budget.

    A warm-up that shrinks to one epoch is none (its first epoch already runs at the full rate):
    with the CIFAR recipes' 5 of 200 epochs, that is every budget under 60 epochs, e.g. the
    Figure 2 study's 30 and the 50-epoch ablations.
    """
    ratio = epochs / recipe_epochs
    warmup = max(1, round(schedule.warmup_epochs * ratio)) if schedule.warmup_epochs else 0
    return {"warmup_epochs": warmup, "milestones": [round(m * ratio) for m in schedule.milestones]}


def recipe_data(recipe: DictConfig) -> tuple[str, float | None, str]:
    """``(dataset name, imbalance ratio, label)`` of a study's recipe, e.g. ``cifar10 IR50``."""
    source = OmegaConf.to_container(recipe.data.source)
    name = source if isinstance(source, str) else source["name"]
    ratio = recipe.data.imbalance_ratio
    return name, ratio, f"{name}{f' IR{ratio:g}' if ratio else ''}"


def train_or_reuse(config: DictConfig, run_dir: Path, log: Callable[[str], None]) -> dict:
    """The run's test report: read if it finished, else trained (resumed if interrupted)."""
    from ..engine import Trainer
    from ..engine.distributed import setup
    from ..engine.experiment import resolve_precision

    saved = run_dir / "config.yaml"
    if saved.exists():  # the saved config holds the precision that train.precision=auto became
        precision, _ = resolve_precision(config.train.precision, setup(config.train.device).device)
        held = training_recipe(OmegaConf.load(saved))
        wanted = training_recipe(OmegaConf.merge(config, {"train": {"precision": precision}}))
        if held != wanted:
            differ = ", ".join(sorted(key for key in held.keys() | wanted.keys() if held.get(key) != wanted.get(key)))
            raise RunExists(f"{run_dir} holds a run of another budget or recipe (its {differ} differ); "
                            "choose another --output-dir")
    finished = run_dir / "eval.json"
    if finished.exists():
        log(f"{run_dir}: finished, reusing its eval.json")
        return json.loads(finished.read_text())
    log(f"{run_dir}: training {config.train.epochs} epochs")
    return Trainer(config, run_dir, resume=(run_dir / LAST).exists(), log=log).fit()
