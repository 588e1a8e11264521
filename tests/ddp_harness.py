"""Train configs and record, on every rank, what DDP must keep identical to one process.

For each config, ``RecordingTrainer`` keeps the samples each stream drew every epoch, the labels
of every step's batches and (MoCo models) the keys each step computed; the script saves them
with the final method state as ``OUT/NAME_rankR.pt``, and every file the rank opened for
writing, created, renamed or removed under ``RUNS`` as ``OUT/writes_rankR.json``. With
``--kill-rank R --kill-epoch E`` rank R kills itself (SIGKILL) in torchrun's first attempt once
epoch E is saved, before training on::

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_harness.py OUT RUNS CONFIG.yaml...

The tests also use ``RecordingTrainer`` in their own process for the single-process runs.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import time
from pathlib import Path

import torch

from longtail.checkpoints import LAST, load_checkpoint
from longtail.config import load_config
from longtail.engine import Trainer

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class RecordingSampler:
    """A sampler that keeps a copy of every epoch's draw."""

    def __init__(self, sampler, draws: list) -> None:
        self.sampler, self.draws = sampler, draws

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        drawn = list(self.sampler)
        self.draws.append(drawn)
        return iter(drawn)


class RecordingTrainer(Trainer):
    """A trainer whose ``record`` holds ``draws`` (stream -> one list per epoch), ``targets``
    (stream -> labels, one dict per step) and ``keys`` (one tensor per step, MoCo models)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record = {"draws": {}, "targets": [], "keys": []}
        make_streams = self.experiment.train_streams

        def recorded_streams(*args, **kwargs):
            streams = make_streams(*args, **kwargs)
            for name, stream in streams.items():  # in-memory streams read stream.sampler each epoch
                stream.sampler = RecordingSampler(stream.sampler, self.record["draws"].setdefault(name, []))
            return streams

        self.experiment.train_streams = recorded_streams
        model = self.method.model
        if hasattr(model, "contrast_step"):
            contrast_step = model.contrast_step

            def recorded_step(*args):
                step = contrast_step(*args)
                self.record["keys"].append(step.keys.clone())
                return step

            model.contrast_step = recorded_step

    def step(self, step_module, batches):
        self.record["targets"].append({name: batch.targets.tolist() for name, batch in batches.items()})
        return super().step(step_module, batches)

    def die_at(self, epoch: int) -> None:
        """SIGKILL this process at the start of 0-based ``epoch``, once rank 0 has saved it."""
        set_epoch = self.method.set_epoch

        def dying(current: int) -> None:
            if current == epoch:
                while not ((self.run_dir / LAST).exists()
                           and load_checkpoint(self.run_dir / LAST)["epoch"] >= epoch):
                    time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGKILL)
            set_epoch(current)

        self.method.set_epoch = dying


def record_writes(root: Path) -> list[str]:
    """From now on, every path under ``root`` this process opens for writing, creates, renames
    or removes (Python's audit events, which cover torch.save and tensorboard too)."""
    root_text, writes = os.path.abspath(root), []

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, writing = args[0], isinstance(args[2], int) and args[2] & WRITE_FLAGS
        elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate"):
            path, writing = args[0], True
        else:
            return
        if writing and isinstance(path, (str, os.PathLike)) and os.path.abspath(path).startswith(root_text):
            writes.append(f"{event} {os.fspath(path)}")

    sys.addaudithook(hook)
    return writes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path, help="where the records go")
    parser.add_argument("runs", type=Path, help="output_dir of the runs")
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--kill-rank", type=int)
    parser.add_argument("--kill-epoch", type=int)
    parser.add_argument("--hang-timeout", type=float, default=240, help="seconds; then print the stacks and exit")
    args = parser.parse_args()
    faulthandler.dump_traceback_later(args.hang_timeout, exit=True)  # a hang fails the test, with its stacks
    rank = int(os.environ.get("RANK", 0))
    writes = record_writes(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.configs:
        config = load_config(path, [f"output_dir={args.runs}"])
        trainer = RecordingTrainer(config, args.runs / config.name)
        if rank == args.kill_rank and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0":  # first attempt
            trainer.die_at(args.kill_epoch)
        trainer.fit()
        torch.save({"record": trainer.record, "state": trainer.method.state_dict()},
                   args.out / f"{config.name}_rank{rank}.pt")
    (args.out / f"writes_rank{rank}.json").write_text(json.dumps(writes))


if __name__ == "__main__":
    main()
