"""Atomic checkpoint and file writes, and safe loading (tensors and plain containers only)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import CheckpointError, NotFound, UserError

TMP_SUFFIX = ".tmp"  # a file being written; one left behind is the remains of a killed write


class DiskFull(UserError, OSError):
    """No space was left to write a file; the file it was to replace is intact."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` writes the content to a temporary sibling, which then replaces ``path``.

    Readers see the old file or the new one, never part of either. On any failure (a full
    disk, Ctrl-C) the temporary is removed and ``path`` keeps what it held; a full disk
    raises :class:`DiskFull`.
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX file systems
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            free = shutil.disk_usage(path.parent).free / 2**20
            kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
            raise DiskFull(f"the disk is full: no space left to write {path} ({free:.0f} MiB free there); "
                           f"{kept}") from None
        raise


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file object, so that a full disk raises ENOSPC
            torch.save(state, handle)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: no arbitrary pickled objects are ever executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise NotFound(f"no checkpoint at {path}; give the path of an existing .pt file") from None
    except Exception as error:
        first = str(error).strip().splitlines()[:1]
        if first and first[0].startswith("Weights only load failed"):  # torch's advice would follow
            reason = "it holds Python objects besides tensors, which longtail never unpickles"
        else:
            reason = f"{type(error).__name__}: {first[0]}" if first else type(error).__name__
        raise CheckpointError(f"{path} is not a readable longtail checkpoint ({reason}); it is damaged "
                              "or was not written by longtail: use another one, e.g. a kept "
                              "checkpoints/epoch_NNNN.pt") from error


def trained_by(config: DictConfig | str) -> str:
    """``model NAME, method NAME`` of a config, or of the config text a checkpoint holds."""
    node = OmegaConf.create(config) if isinstance(config, str) else config
    names = []
    for part in ("model", "method"):
        spec = OmegaConf.select(node, part)
        names.append(f"{part} {spec if isinstance(spec, str) else OmegaConf.select(spec, 'name')}")
    return ", ".join(names)


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], saved: str, built: str,
                 fix: str) -> None:
    """``module.load_state_dict(weights)``, or a :class:`CheckpointError` that sums up how they
    differ (counts and the first three names) where torch would list every key.

    ``saved`` says where the weights come from and which model they belong to, ``built`` which
    model ``module`` is, and ``fix`` what the user can do.
    """
    expected = module.state_dict()
    differences = {
        "missing from the checkpoint": [key for key in expected if key not in weights],
        "unexpected": [key for key in weights if key not in expected],
        "of another shape (saved vs built)": [
            f"{key} {tuple(weights[key].shape)} vs {tuple(expected[key].shape)}"
            for key in expected if key in weights and weights[key].shape != expected[key].shape],
    }
    found = [f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
             for what, keys in differences.items() if keys]
    if found:
        raise CheckpointError(f"the weights in {saved} do not fit {built}: {len(expected)} weights "
                              f"expected, {'; '.join(found)}. {fix}")
    module.load_state_dict(weights)


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=1) + "\n")


def drop_epochs_after(path: Path, epoch: int) -> None:
    """Keep the lines of a JSON-lines log whose ``epoch`` is at most ``epoch`` (resuming from
    that epoch's checkpoint: what was logged after it is logged again)."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["epoch"] <= epoch]
        write_text(path, "".join(line + "\n" for line in kept))
