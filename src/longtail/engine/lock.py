"""The lock of a run directory, held by the process that trains it.

The trainer holds an exclusive ``flock`` on ``RUN_DIR/train.lock`` while it trains. The kernel
drops the lock when that process ends in any way (finished, crashed, killed), so a held lock
means a live trainer: ``longtail runs`` reads it to tell running runs from interrupted ones, and
a second trainer on the same directory is refused instead of interleaving its writes. The
file names its holder and the torchrun job the holder belongs to, which is how a job that
torchrun restarts after a failure recognises the runs it was training (see ``Trainer``).
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RunExists

LOCK_FILE = "train.lock"


class RunLocked(RunExists):
    """Another live process is training this run directory."""


@contextmanager
def run_lock(run_dir: Path, job: str | None = None) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the duration of the block; refuse if another process holds it.

    The lock file names the holder, and ``job`` (a torchrun job, see :func:`held_by_job`).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunLocked(f"{run_dir} is being trained right now ({holder}); wait for that run to end, "
                        "or choose another name= or output_dir=") from None
    try:
        handle.truncate(0)
        job_note = f" (torchrun job {job})" if job else ""
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}{job_note}\n")  # for the message above
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir``'s lock (is training it)."""
    path = run_dir / LOCK_FILE
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def held_by_job(run_dir: Path, job: str) -> bool:
    """Whether ``run_dir``'s lock was last taken by a worker of torchrun job ``job``."""
    path = run_dir / LOCK_FILE
    return path.exists() and path.read_text().rstrip().endswith(f" (torchrun job {job})")
