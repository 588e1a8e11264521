"""BBN Section 3 / Figure 2: which manner learns the representation, which the classifier.

Stage 1 trains a network with each manner (CE, RW, RS); stage 2 freezes each network's
features and retrains a new classifier with each manner again (cRT), giving a 3x3 grid of
test top-1 errors. BBN's finding on CIFAR-100-LT IR50: within a representation, RW and RS
classifiers beat CE; within a classifier manner, the CE representation beats RW and RS.

Its runs are reused or resumed as :mod:`.study_runs` says, so the study can be rerun.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..io import write_json, write_text
from .outputs import pyplot
from .study_runs import recipe_data, scaled_schedule, train_or_reuse

MANNERS: dict[str, dict] = {
    "CE": {"loss": "ce", "sampler": "uniform"},
    "RW": {"loss": {"name": "ce", "weights": "inverse_frequency"}, "sampler": "uniform"},
    "RS": {"loss": "ce", "sampler": "class_balanced"},
}


def with_manner(recipe: DictConfig, manner: str, epochs: int, schedule: dict) -> DictConfig:
    """The recipe's standard method with ``manner``'s loss and sampler (its augmentation kept)."""
    config = OmegaConf.merge(recipe, {"schedule": schedule,
                                      "train": {"epochs": epochs, "eval_every": 0}})
    config.method = {"name": "standard", "transform": recipe.method.get("transform", "crop_flip"),
                     **MANNERS[manner]}
    return config


def stage1_config(recipe: DictConfig, manner: str, epochs: int) -> DictConfig:
    """The recipe trained end to end with ``manner`` for ``epochs`` epochs."""
    return with_manner(recipe, manner, epochs,
                       scaled_schedule(recipe.schedule, epochs, recipe.train.epochs))


def stage2_config(recipe: DictConfig, stage1_dir: Path, manner: str, epochs: int) -> DictConfig:
    """A new linear classifier on ``stage1_dir``'s frozen features, trained with ``manner``
    for ``epochs`` epochs at the recipe's learning rate, cosine-decayed without warm-up."""
    config = with_manner(recipe, manner, epochs, {"name": "cosine", "warmup_epochs": 0})
    config.model = {"name": "frozen_features", "run": str(stage1_dir), "head": "linear"}
    return config


def format_table(errors: dict[str, dict[str, float]]) -> str:
    """Markdown table of top-1 errors: one row per representation manner."""
    lines = ["| representation \\ classifier | " + " | ".join(MANNERS) + " |",
             "|---" * (len(MANNERS) + 1) + "|"]
    for rep, row in errors.items():
        lines.append(f"| {rep} | " + " | ".join(f"{row[c]:.2f}" for c in MANNERS) + " |")
    return "\n".join(lines) + "\n"


def paper_pattern(errors: dict[str, dict[str, float]]) -> dict[str, dict[str, bool]]:
    """Which of BBN's two observations hold in ``errors``, cell by cell."""
    return {
        "classifier_RW_RS_beat_CE": {
            rep: row["RW"] < row["CE"] and row["RS"] < row["CE"] for rep, row in errors.items()},
        "representation_CE_beats_RW_RS": {
            cls: errors["CE"][cls] < errors["RW"][cls] and errors["CE"][cls] < errors["RS"][cls]
            for cls in MANNERS},
    }


def plot_heatmap(errors: dict[str, dict[str, float]], title: str, path: Path) -> None:
    """Figure 2's layout: representation manner across, classifier manner down."""
    plt = pyplot()
    names = list(MANNERS)
    grid = [[errors[rep][cls] for rep in names] for cls in names]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(grid, cmap="viridis_r")
    middle = (min(map(min, grid)) + max(map(max, grid))) / 2
    for i, row in enumerate(grid):
        for j, value in enumerate(row):  # dark text on the light (low-error) end of viridis_r
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=11,
                    color="black" if value < middle else "white")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("representation learning manner")
    ax.set_ylabel("classifier learning manner")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="top-1 error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def run_study(recipe: DictConfig, output_dir: Path, epochs: int, classifier_epochs: int,
              log: Callable[[str], None] = print) -> dict:
    """Train (or reuse) the 3 + 9 runs and write ``table.md``, ``results.json``, ``heatmap.png``."""
    output_dir = Path(output_dir)
    errors: dict[str, dict[str, float]] = {}
    for rep in MANNERS:
        stage1_dir = output_dir / f"representation_{rep}"
        train_or_reuse(stage1_config(recipe, rep, epochs), stage1_dir, log)
        errors[rep] = {}
        for cls in MANNERS:
            report = train_or_reuse(stage2_config(recipe, stage1_dir, cls, classifier_epochs),
                                    output_dir / f"representation_{rep}_classifier_{cls}", log)
            errors[rep][cls] = 100.0 - report["top1"]
    name, ratio, data_label = recipe_data(recipe)
    title = f"{data_label}: {epochs} + {classifier_epochs} epochs"
    results = {
        "dataset": name, "imbalance_ratio": ratio,
        "budget": {"representation_epochs": epochs, "classifier_epochs": classifier_epochs},
        "top1_error": errors, "paper_pattern": paper_pattern(errors),
    }
    write_json(output_dir / "results.json", results)
    write_text(output_dir / "table.md", f"Top-1 error (%), {title}\n\n" + format_table(errors))
    plot_heatmap(errors, title, output_dir / "heatmap.png")
    log(f"\n{format_table(errors)}written to {output_dir}/table.md, results.json, heatmap.png")
    return results
