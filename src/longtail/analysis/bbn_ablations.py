"""BBN Tables 3 and 4: the re-balancing branch's sampler and the adaptor that generates α.

Eight runs of one BBN recipe at one budget: BBN itself (reversed sampler, parabolic decay), the
uniform and class-balanced re-balancing samplers (Table 3), and the five other adaptors
(Table 4). The paper's CIFAR-10-LT IR50 findings: the reversed sampler beats the other two; the
three decays beat equal weight, the Beta draw and the parabolic increment, the increment is
the worst and parabolic decay the best. Runs are reused or resumed as :mod:`.study_runs` says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..io import write_json, write_text
from .paper_numbers import BBN_ADAPTOR_ERRORS, BBN_SAMPLER_ERRORS
from .study_runs import recipe_data, scaled_schedule, train_or_reuse

MAIN = ("reversed", "parabolic_decay")  # BBN's own sampler and adaptor
SAMPLERS = {"uniform": "Uniform sampler", "class_balanced": "Balanced sampler",
            "reversed": "Reversed sampler (BBN)"}
ADAPTORS = {"equal_weight": ("Equal weight", "0.5"), "beta": ("β-distribution", "Beta(0.2, 0.2)"),
            "parabolic_increment": ("Parabolic increment", "(T/T_max)²"),
            "linear_decay": ("Linear decay", "1 − T/T_max"), "cosine_decay": ("Cosine decay", "cos(π/2 · T/T_max)"),
            "parabolic_decay": ("Parabolic decay (BBN)", "1 − (T/T_max)²")}
DECAYS = ("linear_decay", "cosine_decay", "parabolic_decay")


def variants() -> dict[str, tuple[str, str]]:
    """Run name -> (re-balancing sampler, adaptor): BBN itself once, then one change each."""
    runs = {"bbn": MAIN}
    runs.update({f"sampler_{s}": (s, MAIN[1]) for s in SAMPLERS if s != MAIN[0]})
    runs.update({f"adaptor_{a}": (MAIN[0], a) for a in ADAPTORS if a != MAIN[1]})
    return runs


def ablation_config(recipe: DictConfig, sampler: str, adaptor: str, epochs: int) -> DictConfig:
    """The BBN recipe with this re-balancing sampler and adaptor, trained ``epochs`` epochs (the
    recipe's warm-up and lr milestones scaled to them)."""
    if recipe.method.name != "bbn":
        raise ConfigError(f"the BBN ablations need a BBN recipe such as configs/cifar10_lt/bbn.yaml, "
                          f"got method {recipe.method.name!r}")
    schedule = scaled_schedule(recipe.schedule, epochs, recipe.train.epochs)
    return OmegaConf.merge(recipe, {"method": {"rebalancing_sampler": sampler, "adaptor": adaptor},
                                    "schedule": schedule, "train": {"epochs": epochs, "eval_every": 0}})


def errors_by_table(errors: dict[str, float]) -> dict[str, dict[str, float]]:
    """The runs' top-1 errors as the two tables: by sampler and by adaptor (BBN in both)."""
    return {"sampler": {s: errors["bbn" if s == MAIN[0] else f"sampler_{s}"] for s in SAMPLERS},
            "adaptor": {a: errors["bbn" if a == MAIN[1] else f"adaptor_{a}"] for a in ADAPTORS}}


def paper_pattern(tables: dict[str, dict[str, float]]) -> dict[str, bool]:
    """Which of the paper's findings hold in ``tables`` (top-1 errors, lower is better)."""
    samplers, adaptors = tables["sampler"], tables["adaptor"]
    others = [a for a in adaptors if a not in DECAYS]
    return {
        "reversed_beats_uniform_and_balanced": samplers["reversed"] < min(samplers["uniform"],
                                                                          samplers["class_balanced"]),
        "decays_beat_the_other_adaptors": max(adaptors[a] for a in DECAYS) < min(adaptors[a] for a in others),
        "parabolic_increment_worst": adaptors["parabolic_increment"] == max(adaptors.values()),
        "parabolic_decay_best": adaptors["parabolic_decay"] == min(adaptors.values()),
    }


def format_tables(tables: dict[str, dict[str, float]]) -> str:
    """Tables 3 and 4 in Markdown, measured next to the paper's CIFAR-10-LT IR50 figures."""
    lines = ["| sampler (Table 3) | top-1 error | paper |", "|---|---|---|"]
    lines += [f"| {SAMPLERS[s]} | {e:.2f} | {BBN_SAMPLER_ERRORS[s]:.2f} |" for s, e in tables["sampler"].items()]
    lines += ["", "| adaptor (Table 4) | α | top-1 error | paper |", "|---|---|---|---|"]
    lines += [f"| {ADAPTORS[a][0]} | {ADAPTORS[a][1]} | {e:.2f} | {BBN_ADAPTOR_ERRORS[a]:.2f} |"
              for a, e in tables["adaptor"].items()]
    return "\n".join(lines) + "\n"


def run_ablations(recipe: DictConfig, output_dir: Path, epochs: int,
                  log: Callable[[str], None] = print) -> dict:
    """Train (or reuse) the eight runs and write ``table.md`` and ``results.json``."""
    output_dir = Path(output_dir)
    configs = {name: ablation_config(recipe, sampler, adaptor, epochs)
               for name, (sampler, adaptor) in variants().items()}  # every config checked first
    errors = {name: 100.0 - train_or_reuse(config, output_dir / name, log)["top1"]
              for name, config in configs.items()}
    tables = errors_by_table(errors)
    name, ratio, data_label = recipe_data(recipe)
    title = f"BBN ablations, {data_label}, {epochs} of {recipe.train.epochs} epochs"
    results = {"dataset": name, "imbalance_ratio": ratio,
               "budget": {"epochs": epochs, "recipe_epochs": recipe.train.epochs},
               "top1_error": tables, "paper_top1_error": {"sampler": BBN_SAMPLER_ERRORS, "adaptor": BBN_ADAPTOR_ERRORS},
               "paper_pattern": paper_pattern(tables)}
    write_json(output_dir / "results.json", results)
    write_text(output_dir / "table.md", f"Top-1 error (%), {title}\n\n" + format_tables(tables))
    log(f"\n{format_tables(tables)}written to {output_dir}/table.md, results.json")
    return results
