"""A run's record: what a run directory holds, and the rules that keep it.

Nothing here overwrites or truncates a record silently. Training refuses a directory that
holds a run, or the remains of one, unless told to ``--resume`` it, and ``--resume`` refuses
a directory without ``checkpoints/last.pt``. The run's final report ``eval.json`` is written
by training, or by ``longtail eval`` of the final checkpoint; other checkpoints' reports go
to ``eval_epoch_NNNN.json`` beside it (or ``--output``). A report file is replaced only by
the same report recomputed (see :func:`same_report`); a different one is refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..checkpoints import LAST
from ..config import load_config, plain
from ..data import SOURCES
from ..errors import CheckpointError, NotFound, RunExists
from ..io import TMP_SUFFIX, write_json, write_text

RECORDS = ("config.yaml", "command.txt", "commit.txt", "metrics.jsonl", "eval.json", "summary.json")
NO_RECORD = "no run record"


class NothingToResume(NotFound):
    """``--resume`` of a directory without ``checkpoints/last.pt``."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint evaluated inside a run directory is not a checkpoint of that run."""


class ReportExists(RunExists):
    """A report file already holds a different report."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which epochs are saved and how to continue."""


def contents(run_dir: Path) -> str:
    """What ``run_dir`` holds, for messages: its record files and checkpoints."""
    held = []
    for name in RECORDS:
        path = run_dir / name
        if path.exists():
            epochs = sum(1 for line in path.read_text().splitlines() if line) if name == "metrics.jsonl" else None
            held.append(name if epochs is None else f"{name} ({epochs} epoch{'s' * (epochs != 1)})")
    checkpoints = {p.name for p in (run_dir / "checkpoints").glob("*.pt")}
    if LAST.name in checkpoints:
        held.append(str(LAST))
    others = len(checkpoints - {LAST.name})
    if others:
        held.append(f"{others} other checkpoint{'s' * (others != 1)}")
    return ", ".join(held) if held else NO_RECORD


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to train into ``run_dir`` unless that loses nothing: ``resume`` needs
    ``checkpoints/last.pt``; a new run needs a directory without any run record."""
    run_dir = Path(run_dir)
    if (run_dir / LAST).exists():
        if not resume:
            raise RunExists(f"{run_dir} already holds a run ({contents(run_dir)}); continue it with "
                            f"`longtail train {run_dir} --resume`, or choose another name= or output_dir=")
        return
    held = contents(run_dir)
    if resume and held == NO_RECORD:
        state = "does not exist" if not run_dir.exists() else "holds no run"
        raise NothingToResume(f"cannot resume: {run_dir} {state}; train without --resume to start the run")
    if resume or held != NO_RECORD:
        raise (NothingToResume if resume else RunExists)(
            f"{'cannot resume: ' if resume else ''}{run_dir} holds {held} but no {LAST}, so nothing "
            f"there can be resumed; delete {run_dir} and train again to start that run over, or "
            "choose another name= or output_dir=")


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the half-written files a killed write left in ``run_dir`` (see ``write_atomically``)."""
    stale = [*run_dir.glob(f"*{TMP_SUFFIX}"), *(run_dir / "checkpoints").glob(f"*{TMP_SUFFIX}")]
    for path in stale:
        path.unlink()
    return stale


def drop_epochs_after(path: Path, epoch: int) -> None:
    """Keep the lines of a JSON-lines log whose ``epoch`` is at most ``epoch`` (resuming from
    that epoch's checkpoint: what was logged after it is logged again)."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["epoch"] <= epoch]
        write_text(path, "".join(line + "\n" for line in kept))


def interrupted_message(run_dir: Path, saved_epochs: int, epochs: int) -> str:
    """The one line for Ctrl-C during training, after ``saved_epochs`` epochs are in last.pt."""
    if saved_epochs == 0:
        return (f"interrupted in epoch 1; no epoch is saved yet; delete {run_dir} and train again "
                "to start over")
    where = "the final evaluation" if saved_epochs == epochs else f"epoch {saved_epochs + 1}"
    return (f"interrupted in {where}; epochs 1..{saved_epochs} are saved; continue with "
            f"`longtail train {run_dir} --resume`")


def saved_message(run_dir: Path, saved_epochs: int) -> str:
    """What is safe after a failed checkpoint write, and what to do once there is space."""
    if saved_epochs == 0:
        return f"no epoch is saved yet; free some space, then delete {run_dir} and train again"
    return (f"{LAST} holds epochs 1..{saved_epochs}; free some space, then continue with "
            f"`longtail train {run_dir} --resume`")


# --- evaluation reports --------------------------------------------------------------------


def run_directory(checkpoint: Path) -> Path:
    """The run a checkpoint belongs to: ``RUN`` for ``RUN/checkpoints/x.pt``, else its folder."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def _name(spec: Any) -> str:
    spec = plain(spec)
    return spec if isinstance(spec, str) else spec.get("name")


def check_checkpoint_of_run(checkpoint: Path, config: DictConfig, num_classes: int,
                            data_root: str | None = None) -> DictConfig | None:
    """The config of the run ``checkpoint`` lies in (None outside a run directory), after
    checking that the checkpoint's ``config`` (with ``num_classes``) is of that run: same model,
    same method, same number of classes."""
    saved = run_directory(checkpoint) / "config.yaml"
    if not saved.exists():
        return None
    run = load_config(saved)
    if plain(run.data.source) == plain(config.data.source):
        run_classes = num_classes
    else:  # the data moved, or another dataset: count its classes
        run_classes = SOURCES.build(plain(run.data.source), root=data_root or run.data.root).num_classes
    sides = {"model": (_name(config.model), _name(run.model)), "method": (_name(config.method), _name(run.method)),
             "classes": (num_classes, run_classes)}
    differ = [f"{key} {mine} vs {theirs}" for key, (mine, theirs) in sides.items() if mine != theirs]
    if differ:
        raise CheckpointMismatch(
            f"{checkpoint} is not a checkpoint of the run in {saved.parent}: {'; '.join(differ)} "
            f"(the checkpoint's config vs {saved}); evaluate that run's own checkpoints, or move "
            f"{checkpoint.name} out of {saved.parent} to evaluate it alone")
    return run


def report_path(checkpoint: Path, epoch: int, run: DictConfig | None, variant: str = "",
                output: str | Path | None = None) -> Path:
    """Where ``longtail eval`` writes: ``output`` if given; the run's ``eval{variant}.json`` for
    its final checkpoint (``last.pt`` after the run's last epoch); else ``eval_epoch_NNNN{variant}.json``."""
    if output is not None:
        return Path(output)
    final = run is not None and checkpoint.name == LAST.name and epoch >= run.train.epochs
    stem = "eval" if final else f"eval_epoch_{epoch:04d}"
    return run_directory(checkpoint) / f"{stem}{variant}.json"


def same_report(a: Any, b: Any) -> bool:
    """Whether two reports agree: counts and confusion exactly, percentages to 1e-6
    (GPU kernels may differ in the last bits of a recomputed softmax)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_report(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_report(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, abs_tol=1e-6)
    return a == b


def write_report(path: Path, report: dict) -> bool:
    """Write ``report`` to ``path``; False if ``path`` already holds the same report (left as it
    was); :class:`ReportExists` if it holds anything else."""
    if path.exists():
        try:
            held = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            held = None
        if same_report(held, json.loads(json.dumps(report))):
            return False
        there = f"top-1 {held['top1']:.2f}% there, " if isinstance(held, dict) and "top1" in held else ""
        raise ReportExists(f"{path} already holds a different report ({there}top-1 {report['top1']:.2f}% now) "
                           f"and is kept; write this one elsewhere with --output FILE")
    write_json(path, report)
    return True
