"""Atomic checkpoint and file writes, and safe loading (tensors and plain containers only)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch


def _replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half of it


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    _replace(tmp, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: no arbitrary pickled objects are ever executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise ValueError(f"{path} is not a readable longtail checkpoint ({error})") from error


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    _replace(tmp, path)


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=1) + "\n")


def drop_epochs_after(path: Path, epoch: int) -> None:
    """Keep the lines of a JSON-lines log whose ``epoch`` is at most ``epoch`` (resuming from
    that epoch's checkpoint: what was logged after it is logged again)."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["epoch"] <= epoch]
        write_text(path, "".join(line + "\n" for line in kept))
