"""Atomic checkpoint and file writes, and safe loading (tensors and plain containers only)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def _replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half of it


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` writes the content to a temporary sibling, which then replaces ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    _replace(tmp, path)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: no arbitrary pickled objects are ever executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise ValueError(f"{path} is not a readable longtail checkpoint ({error})") from error


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=1) + "\n")
