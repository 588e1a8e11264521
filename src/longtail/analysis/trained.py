"""Finished runs as the analyses read them: config, trained weights, data and test predictions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ..checkpoints import checkpoint_file, load_checkpoint
from ..config import load_config
from ..engine import Experiment, build_experiment, predict
from ..engine.distributed import setup
from ..errors import ConfigError, NotFound
from ..models.pretrained import inference_module, is_results_folder, verified_weights


@dataclass
class TrainedRun:
    """A run rebuilt from its record: ``experiment.method`` holds the trained weights (eval mode)."""

    label: str
    path: Path
    experiment: Experiment
    epochs_done: int

    @property
    def config(self) -> DictConfig:
        return self.experiment.config

    @property
    def model(self) -> torch.nn.Module:
        return self.experiment.method.model

    @property
    def class_counts(self) -> np.ndarray:
        return self.experiment.class_counts

    def summary(self) -> dict:
        """What the run is, for the analyses' JSON files."""
        return {"path": str(self.path), "method": self.config.method.name, "model": self.config.model.name,
                "epochs_done": self.epochs_done, "epochs": self.config.train.epochs}


def read_weights(target: Path) -> tuple[DictConfig, dict[str, torch.Tensor], int]:
    """``(config, method state dict, epochs done)`` of a run directory (``config.yaml`` and
    ``checkpoints/last.pt``) or of a checkpoint file (its own config)."""
    checkpoint = checkpoint_file(target)
    if not checkpoint.exists():
        raise NotFound(f"no checkpoint at {checkpoint}; give a run directory, a .pt file or a results "
                       "folder with model.safetensors")
    state = load_checkpoint(checkpoint)
    saved = target / "config.yaml"
    config = load_config(saved) if saved.exists() else OmegaConf.merge(load_config(),
                                                                       OmegaConf.create(state["config"]))
    return config, state["method"], state["epoch"]


def shipped_experiment(folder: Path, data_root: str | None = None) -> tuple[Experiment, int]:
    """The experiment of a results folder with its shipped inference weights (checksum verified)
    loaded, and the epochs it trained. For PaCo and SupCon only the query encoder and classifier
    are shipped; the rest of the method keeps its initial weights."""
    weights = verified_weights(folder)
    config = load_config(folder / "config.yaml")
    if data_root:
        config.data.root = data_root
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("device") == "cpu":
        config.train.device = "cpu"
    experiment = build_experiment(config)
    inference_module(experiment.method.model).load_state_dict(weights)
    return experiment, summary.get("epochs", config.train.epochs)


def load_run(target: str | Path, label: str | None = None, data_root: str | None = None) -> TrainedRun:
    """The run at ``target`` (a run directory, a checkpoint, or a results folder with shipped
    weights) with its trained weights, on the CPU; ``data_root`` replaces the data root it was
    trained with (its data must be found to rebuild the class counts)."""
    target = Path(target)
    if is_results_folder(target):
        experiment, epochs_done = shipped_experiment(target, data_root)
    else:
        config, weights, epochs_done = read_weights(target)
        if data_root:
            config.data.root = data_root
        experiment = build_experiment(config)
        experiment.method.load_state_dict(weights)
    experiment.method.eval()
    return TrainedRun(label or run_name(target), target, experiment, epochs_done)


def run_name(target: Path) -> str:
    """A run's default label: its directory's name (a checkpoint's run directory's)."""
    if target.is_dir():
        return target.name
    return target.parent.parent.name if target.parent.name == "checkpoints" else target.parent.name


def run_labels(targets: list[Path], labels: list[str] | None) -> list[str]:
    """``labels`` (one per run) or the runs' names, checked to be one per run and distinct."""
    labels = labels or [run_name(target) for target in targets]
    if len(labels) != len(targets):
        raise ConfigError(f"--labels gives {len(labels)} names for {len(targets)} runs; give one per run")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two runs share a name ({', '.join(labels)}); tell them apart with --labels")
    return labels


def load_runs(targets: list[str | Path], labels: list[str] | None = None,
              data_root: str | None = None) -> list[TrainedRun]:
    """Several runs of one dataset (the same training class counts, so classes line up)."""
    targets = [Path(target) for target in targets]
    runs = [load_run(target, label, data_root) for target, label in zip(targets, run_labels(targets, labels))]
    for run in runs[1:]:
        if not np.array_equal(run.class_counts, runs[0].class_counts):
            raise ConfigError(f"run {run.label!r} was trained on other class counts than {runs[0].label!r}; "
                             "analyse runs of one dataset and imbalance ratio together")
    return runs


def describe(runs: list[TrainedRun]) -> dict:
    """The header of a per-class analysis's JSON: the runs, their class counts, the head-to-tail
    order and the many/few thresholds (of the first run)."""
    from .plots import tail_order

    data = runs[0].config.data
    return {"runs": {run.label: run.summary() for run in runs}, "train_counts": runs[0].class_counts.tolist(),
            "class_order": tail_order(runs[0].class_counts).tolist(),
            "many_threshold": data.many_threshold, "few_threshold": data.few_threshold}


def device_for(device: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu`` or ``cuda[:N]``."""
    return setup(device).device


def logits_on_test_set(experiment: Experiment, device: torch.device,
                       precision: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (fp32, on the CPU) and labels of the whole test set, in order, computed as the
    trainer computed the run's reports: in its precision and memory format (fp16 falls back to
    fp32 off CUDA), so that the figures match the recorded ones; ``precision`` (fp32, bf16 or
    fp16) computes them in another."""
    train = experiment.config.train
    if precision is None:
        precision = "fp32" if train.precision == "fp16" and device.type != "cuda" else train.precision
    method = experiment.method.to(device)
    if train.channels_last:
        method.to(memory_format=torch.channels_last)
    try:
        return predict(method, experiment.test_stream(), device, precision, train.channels_last)
    finally:
        method.to(memory_format=torch.contiguous_format).cpu()
