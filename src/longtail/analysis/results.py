"""Recorded results: a finished run's record in ``results/DATASET/NAME`` (its small files and
its inference weights), and its test report recomputed from those weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from ..checkpoints import LAST, load_checkpoint
from ..engine.distributed import processor, setup
from ..engine.metrics import classification_report
from ..errors import CheckpointError, NotFound, RunExists
from ..io import write_atomically, write_json
from ..models.pretrained import WEIGHTS_FILE, export_inference_weights
from .trained import logits_on_test_set, shipped_experiment

RECORDED = ("config.yaml", "command.txt", "commit.txt", "metrics.jsonl", "eval.json", "summary.json", "train.log",
            "classifier_grads.jsonl")


def record_files(folder: Path) -> list[str]:
    """The files of a record (what :func:`record` writes) present in ``folder``."""
    names = [*RECORDED, WEIGHTS_FILE]
    return [name for name in names if (folder / name).exists()] + sorted(p.name for p in folder.glob("eval_*.json"))


def record(run_dir: Path, destination: Path, force: bool = False, data_root: str | None = None) -> list[str]:
    """Record a finished run in ``destination``; returns the names written.

    Copies the run's text files (never checkpoints) and the variant reports ``longtail eval``
    wrote (``eval_<variant>.json``: one BBN branch, post-hoc, an earlier epoch), and writes
    the final epoch's
    inference weights (``model.safetensors``) with their SHA-256 in the copied ``summary.json``.
    An existing record in ``destination`` is replaced only with ``force``.
    """
    if not (run_dir / "eval.json").exists():
        raise NotFound(f"{run_dir} has no eval.json: the run has not finished; finish it with "
                       f"`longtail train {run_dir} --resume` first")
    checkpoint = run_dir / LAST
    if not checkpoint.exists():
        raise NotFound(f"{run_dir} has no {LAST} to take the weights from")
    state = load_checkpoint(checkpoint)
    epochs = OmegaConf.create(state["config"]).train.epochs
    if state["epoch"] != epochs:
        raise CheckpointError(f"{checkpoint} is from epoch {state['epoch']} of {epochs}; finish the run "
                         f"(longtail train {run_dir} --resume) before recording it")
    existing = record_files(destination)
    if existing and not force:
        raise RunExists(f"{destination} already holds a record ({', '.join(existing)}); "
                              "pass --force to replace it")
    destination.mkdir(parents=True, exist_ok=True)
    # The weights first (the step that needs the data, so a failure leaves the record as it was),
    # summary.json last: a record cut short in between fails its checksum instead of passing.
    sha256 = export_inference_weights(state, destination / WEIGHTS_FILE, data_root)
    copied = [name for name in RECORDED if name != "summary.json" and (run_dir / name).exists()]
    copied += sorted(path.name for path in run_dir.glob("eval_*.json"))
    for name in copied:
        write_atomically(destination / name, lambda tmp, name=name: shutil.copy2(run_dir / name, tmp))
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    summary["weights"] = {"file": WEIGHTS_FILE, "sha256": sha256,
                          "bytes": (destination / WEIGHTS_FILE).stat().st_size}
    write_json(destination / "summary.json", summary)
    written = [*copied, WEIGHTS_FILE, "summary.json"]
    for stale in set(existing) - set(written):  # e.g. a variant report of the record replaced
        (destination / stale).unlink()
    return written


def recompute_eval(folder: Path, data_root: str | None = None,
                   precision: str | None = None) -> tuple[dict, dict, str]:
    """``(recomputed, recorded, processor)``: the test report of a results folder's shipped weights
    (checksum verified first), computed as the trainer computed its final one (same config,
    precision and memory format; on the CPU when the run was) or in another ``precision``; the
    folder's ``eval.json``; and the processor that recomputed it (see :func:`processors_note`)."""
    experiment, _ = shipped_experiment(folder, data_root)
    config = experiment.config
    device = setup(config.train.device).device
    logits, targets = logits_on_test_set(experiment, device, precision)
    report = classification_report(logits, targets, experiment.class_counts, config.data.many_threshold,
                                   config.data.few_threshold)
    return report, json.loads((folder / "eval.json").read_text()), processor(device)


def processors_note(folder: Path, recomputed_on: str) -> str:
    """Which processors trained and recomputed a results folder's report, for a recomputation that
    differs: bf16 kernels differ between kinds of processor and can flip a few predictions."""
    trained_on = json.loads((folder / "summary.json").read_text()).get("processor")
    if trained_on is None:
        return (f"recomputed on {recomputed_on}; its summary.json does not name the processor that trained "
                "it: on another kind of CPU or GPU, bf16 kernels can flip a few predictions")
    if trained_on == recomputed_on:
        return (f"trained and recomputed on {recomputed_on}: the same kind of processor, so check that the "
                "data is the run's own")
    return (f"trained on {trained_on}, recomputed on {recomputed_on}: bf16 kernels differ between them and "
            "can flip a few predictions")
