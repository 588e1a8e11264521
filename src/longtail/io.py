"""Atomic file writes: a reader sees a file's old content or its new one, never part of either.

Every record longtail writes (configs, logs, reports, checkpoints, shipped weights) goes through
:func:`write_atomically`, so a crash, Ctrl-C or a full disk never leaves a truncated file.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UserError

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


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=1) + "\n")


def read_jsonl(path: Path) -> list[Any]:
    """The values of a JSON-lines file (``metrics.jsonl``, the gradient log), blank lines skipped."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]
