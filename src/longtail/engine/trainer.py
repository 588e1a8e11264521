"""The one training loop every method runs in.

A run directory holds everything needed to repeat or continue the run: ``config.yaml``,
``command.txt``, ``commit.txt``, ``metrics.jsonl`` (one line per epoch), ``train.log`` (what
training printed, each start and resume headed by its command), ``eval.json`` (the final epoch's
test report), ``summary.json``, ``checkpoints/`` and ``train.lock`` (held while training).
Randomness is derived from ``(seed, epoch, rank)`` at the start of every epoch
(:mod:`longtail.seeding`), so a checkpoint needs only the epoch counter besides model and
optimizer state for ``--resume`` to continue exactly. How the record is kept (refusals, Ctrl-C,
a full disk) is in :mod:`.records`.

Under ``torchrun`` only rank 0 touches the run directory: it writes every record, and on
``--resume`` it reads the checkpoint and sends it to the other ranks, so the other machines of a
multi-node job need no copy of the run directory. When torchrun restarts a failed job
(``--max-restarts``), the trainer continues the run that job was training, from its last
checkpoint (or from the start if it saved none), as if given ``--resume``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoints import LAST, load_checkpoint, load_weights, save_checkpoint, trained_by
from ..config import plain
from ..errors import CheckpointError, ConfigError
from ..io import DiskFull, write_json, write_text
from ..methods import StepOutput
from ..optimizers import build_optimizer
from ..seeding import seed_global
from .classifier_grads import GRAD_LOG, ClassifierGradLog
from .distributed import Runtime, broadcast_from_main, processor, restart_advice, setup, torchrun_job
from .experiment import Experiment, autocast, build_experiment, predict, resolve_precision
from .lock import held_by_job, run_lock
from .metrics import classification_report, format_report
from .records import (
    Interrupted,
    check_run_dir,
    drop_epochs_after,
    interrupted_message,
    remove_stale_temporaries,
    saved_message,
    write_report,
)
from .schedules import lr_factor

TRAIN_LOG = "train.log"


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the [tensorboard] extra is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


class Trainer:
    """Trains ``experiment.method`` as ``config.train`` says, writing into ``run_dir``.

    ``resume`` continues from ``run_dir/checkpoints/last.pt``, which must exist; without it,
    ``run_dir`` must hold no run record (:func:`~.records.check_run_dir`). A torchrun restart of
    the job that was training ``run_dir`` resumes it without being asked (see the module).
    """

    def __init__(self, config: DictConfig, run_dir: Path, resume: bool = False,
                 runtime: Runtime | None = None, log=print) -> None:
        self.config, self.run_dir, self.log = config, Path(run_dir), log
        self.runtime = runtime or setup(config.train.device)
        # Resolved before config.yaml is written, so the record and --resume name the precision used.
        config.train.precision, self.precision_note = resolve_precision(config.train.precision,
                                                                        self.runtime.device)
        self.restarted = False  # by torchrun, continuing the run of its job
        if self.runtime.is_main:  # before the data is loaded: refusals come at once
            resume = self._resumes(resume)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        seed_global(config.seed, "init")  # model initialisation
        self.experiment: Experiment = build_experiment(config)
        self.method = self.experiment.method.to(self.runtime.device)
        if config.train.channels_last:
            self.method.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.method, plain(config.optim))
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.train.precision == "fp16")
        self.start_epoch, self.elapsed = 0, 0.0
        state = broadcast_from_main(load_checkpoint(self.run_dir / LAST) if self.runtime.is_main and resume else None)
        if state is not None:
            self._restore(state)
        self.saved_epochs = self.start_epoch  # the epochs last.pt holds
        self.classifier_grads = ClassifierGradLog(
            self.method.model, self.run_dir, config.train.log_classifier_grad_every if self.runtime.is_main else 0)

    def _resumes(self, resume: bool) -> bool:
        """Whether this run continues from ``last.pt``: if asked, or if these are restarted workers
        of the torchrun job that was training it; otherwise :func:`~.records.check_run_dir` refuses
        what would lose a record."""
        # The lock says which job trained the run last. TORCHELASTIC_RESTART_COUNT cannot: torchrun
        # also restarts the healthy machines' workers when another machine's fail, without counting.
        job, advice = torchrun_job(), restart_advice()
        if advice:
            self.log(advice)
        if job is not None and held_by_job(self.run_dir, job):
            self.restarted = True
            resume = (self.run_dir / LAST).exists()
            self.log("torchrun restarted this job: " + (
                "continuing from its last checkpoint" if resume else "it saved no epoch, so it starts over"))
            return resume
        check_run_dir(self.run_dir, resume)
        return resume

    # --- state -------------------------------------------------------------------------------

    def _state(self, epoch: int) -> dict:
        return {
            "epoch": epoch, "elapsed": self.elapsed, "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "config": OmegaConf.to_yaml(self.config),
        }

    def _save(self, epochs_done: int) -> None:
        """``last.pt`` after every epoch (what --resume reads); a kept copy every checkpoint_every."""
        state = self._state(epochs_done)
        folder = self.run_dir / "checkpoints"
        every = self.config.train.checkpoint_every
        try:
            save_checkpoint(state, self.run_dir / LAST)
            self.saved_epochs = epochs_done
            if every and epochs_done % every == 0:
                save_checkpoint(state, folder / f"epoch_{epochs_done:04d}.pt")
        except DiskFull as error:
            raise DiskFull(f"{error}; {saved_message(self.run_dir, self.saved_epochs)}") from None

    def _restore(self, state: dict) -> None:
        load_weights(self.method, state["method"],
                     f"{self.run_dir}/checkpoints/last.pt ({trained_by(state['config'])})",
                     f"this config's model ({trained_by(self.config)})",
                     "--resume continues a run as it was configured: drop the overrides that change "
                     "its model or method, or start a new run with another name= or output_dir=")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as error:  # torch's message: another number or size of parameter groups
            raise CheckpointError(f"{self.run_dir}/checkpoints/last.pt: its optimizer state does not fit "
                                  f"this config's optim ({error}); --resume with the run's own optim "
                                  "settings") from None
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.elapsed = state["epoch"], state["elapsed"]
        if self.runtime.is_main:
            self.log(f"resuming {self.run_dir} after epoch {self.start_epoch}")

    def _prepare_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stale_files = remove_stale_temporaries(self.run_dir)
        write_text(self.run_dir / "config.yaml", OmegaConf.to_yaml(self.config))
        command, commit = shlex.join(["longtail", *sys.argv[1:]]), git_commit()
        started = f"{command} (commit {commit})"
        if self.start_epoch:  # a resumed run keeps the record of how it started
            resumed = f"resumed after epoch {self.start_epoch}" + (" (torchrun restart)" if self.restarted else "")
            command = f"{(self.run_dir / 'command.txt').read_text()}{resumed}: {command}"
            commit = f"{(self.run_dir / 'commit.txt').read_text()}{resumed}: {commit}"
            started = f"{resumed}: {started}"
        write_text(self.run_dir / "command.txt", command + "\n")
        write_text(self.run_dir / "commit.txt", commit + "\n")
        self._append_to_log(started)
        for stale in stale_files:
            self._say(f"removed {stale}, left half-written when an earlier run was stopped")
        for log in ("metrics.jsonl", GRAD_LOG):
            drop_epochs_after(self.run_dir / log, self.start_epoch)

    def _append_to_log(self, text: str) -> None:
        with open(self.run_dir / TRAIN_LOG, "a") as handle:  # appended: a resume continues it
            handle.write(text + "\n")

    def _say(self, text: str) -> None:
        """Print ``text`` and keep it in the run's ``train.log`` (main process, run dir prepared)."""
        self.log(text)
        self._append_to_log(text)

    # --- loop --------------------------------------------------------------------------------

    def fit(self) -> dict:
        """Train to ``train.epochs`` and return the final test report; the main process holds the
        run directory's lock meanwhile (see :mod:`.lock`). Ctrl-C raises
        :class:`~.records.Interrupted`, whose message says what is saved.
        """
        try:
            with run_lock(self.run_dir, torchrun_job()) if self.runtime.is_main else nullcontext():
                return self._fit()
        except KeyboardInterrupt as interrupt:
            # Free the interrupted epoch's batch iterators now, so DataLoader workers stop here.
            traceback.clear_frames(interrupt.__traceback__)
            raise Interrupted(interrupted_message(self.run_dir, self.saved_epochs,
                                                  self.config.train.epochs)) from None

    def _fit(self) -> dict:
        config, runtime = self.config, self.runtime
        train = config.train
        if runtime.is_main:
            self._prepare_run_dir()
            if self.precision_note:
                self._say(self.precision_note)
        streams = self.experiment.train_streams(runtime.world_size, runtime.rank,
                                                pin_memory=runtime.device.type == "cuda")
        steps = min(len(stream) for stream in streams.values())
        if steps == 0:
            raise ConfigError(f"the training set ({len(self.experiment.train)} images) is smaller "
                              f"than one batch of {train.batch_size}; lower train.batch_size")
        step_module = self.method
        if runtime.world_size > 1:
            step_module = DistributedDataParallel(self.method, broadcast_buffers=False)
        writer = _tensorboard(self.run_dir) if runtime.is_main else None
        test_stream = self.experiment.test_stream()
        schedule = OmegaConf.to_container(config.schedule)  # read once, not on every step
        report = None
        for epoch in range(self.start_epoch, train.epochs):
            started = time.perf_counter()
            seed_global(config.seed, "global", epoch, runtime.rank)
            for stream in streams.values():
                stream.set_epoch(epoch)
            self.method.set_epoch(epoch)
            self.method.train()
            record = {"epoch": epoch + 1}
            loss_sum, seen, step_logs = torch.zeros((), device=runtime.device), 0, {}
            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{train.epochs}", leave=False,
                       disable=not (train.progress and runtime.is_main and sys.stderr.isatty()))
            for step, batch_list in enumerate(zip(*streams.values())):
                if step == steps:
                    break
                factor = lr_factor(epoch=epoch, progress=step / steps, epochs=train.epochs, **schedule)
                for group in self.optimizer.param_groups:
                    group["lr"] = config.optim.lr * factor
                batches = {name: batch.to(runtime.device, train.channels_last)
                           for name, batch in zip(streams, batch_list)}
                output = self.step(step_module, batches)
                self.classifier_grads.after_step(epoch * steps + step, epoch)
                loss_sum += output.loss.detach()
                for key, value in output.logs.items():  # plain floats: no device sync
                    step_logs[key] = step_logs.get(key, 0.0) + value
                seen += sum(len(batch.targets) for batch in batches.values())
                bar.update()
            bar.close()
            seconds = time.perf_counter() - started
            record.update({key: total / steps for key, total in step_logs.items()})
            record.update(lr=self.optimizer.param_groups[0]["lr"], loss=loss_sum.item() / steps,
                          images_per_s=seen * runtime.world_size / seconds, epoch_s=seconds)
            last = epoch + 1 == train.epochs
            if runtime.is_main and (last or (train.eval_every and (epoch + 1) % train.eval_every == 0)):
                report = self.evaluate(test_stream)
                record.update({f"test_{k}": report[k] for k in ("top1", "many", "medium", "few")})
            self.elapsed += time.perf_counter() - started
            if runtime.is_main:
                self._log_epoch(record, writer)
                self._save(epoch + 1)
        if writer is not None:
            writer.close()
        if runtime.is_main and report is None:  # resumed a run that had already finished
            report = self.evaluate(test_stream)
        if runtime.is_main:
            self._finish(report)
        return report

    def step(self, step_module: torch.nn.Module, batches: dict) -> StepOutput:
        """One optimisation step on batches already on the device."""
        with autocast(self.config.train.precision, self.runtime.device):
            output = step_module(batches)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(output.loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return output

    def evaluate(self, test_stream) -> dict:
        logits, targets = predict(self.method, test_stream, self.runtime.device,
                                  self.config.train.precision, self.config.train.channels_last)
        return classification_report(logits, targets, self.experiment.class_counts,
                                     self.config.data.many_threshold, self.config.data.few_threshold)

    def _log_epoch(self, record: dict, writer) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        extra = "".join(f" {k} {v:.3f}" for k, v in record.items()
                        if k not in ("epoch", "lr", "loss", "images_per_s", "epoch_s") and v is not None)
        self._say(f"epoch {record['epoch']}/{self.config.train.epochs} loss {record['loss']:.4f} "
                  f"lr {record['lr']:.5f} {record['images_per_s']:.0f} img/s{extra}")
        if writer is not None:
            for key, value in record.items():
                if key != "epoch" and value is not None:
                    writer.add_scalar(key, value, record["epoch"])

    def _finish(self, report: dict) -> None:
        if self.start_epoch == self.config.train.epochs:  # resumed after the end: recompute, never replace
            write_report(self.run_dir / "eval.json", report)
        else:
            write_json(self.run_dir / "eval.json", report)
        write_json(self.run_dir / "summary.json", {
            "epochs": self.config.train.epochs, "wall_time_s": round(self.elapsed, 1),
            "wall_time_h": round(self.elapsed / 3600, 3), "top1": report["top1"],
            "many": report["many"], "medium": report["medium"], "few": report["few"],
            "train_images": len(self.experiment.train), "device": str(self.runtime.device),
            "processor": processor(self.runtime.device),  # the final epochs' one, if a resume moved the run
            "torch": torch.__version__, "threads": torch.get_num_threads(),
        })
        self._say(format_report(report, f"final epoch ({self.config.train.epochs}) on the test set:"))
