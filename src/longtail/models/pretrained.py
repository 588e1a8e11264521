"""Shipped weights: the inference part of a finished run, as safetensors in its results folder.

``longtail record`` writes ``model.safetensors`` into ``results/DATASET/NAME`` and its SHA-256
into that folder's ``summary.json``. The file holds only what inference runs, in eval mode:
the model itself, except that for MoCo models (PaCo, SupCon) it is the query backbone and the
classifier, stored as a plain backbone + linear head (no projection heads, momentum encoder or
queue). Its metadata (``"longtail"``, JSON) says what the model was trained on: the number of
classes, the image size and the normalisation mean and std, and the epoch. In Python::

    from longtail.models import load_pretrained, pretrained_transform
    model = load_pretrained("cifar100_lt/paco_ir100_seed1")            # eval mode, on the CPU
    transform = pretrained_transform("cifar100_lt/paco_ir100_seed1")   # PIL image -> normalised tensor
    logits = model(transform(image)[None])

A name is a folder under ``root`` (default: the ``results/`` folder of the longtail checkout this
package is imported from), or the path of any results folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from ..checkpoints import model_weights
from ..config import load_config, plain
from ..data import SOURCES, TRANSFORMS
from ..errors import CheckpointError, NotFound
from ..io import write_atomically
from .moco import MoCo
from .registry import create

WEIGHTS_FILE = "model.safetensors"
METADATA_KEY = "longtail"  # JSON: num_classes, image_size, mean, std, epoch
RESULTS_ROOT = Path(__file__).resolve().parents[3] / "results"  # src/longtail/models/ -> the checkout


def inference_module(model: nn.Module) -> nn.Module:
    """The part of ``model`` that maps images to logits at test time (sharing its parameters)."""
    return model.query_classifier() if isinstance(model, MoCo) else model


def build_model(spec: dict[str, Any], num_classes: int) -> nn.Module:
    """The architecture a model spec names, without downloading pretrained backbone weights:
    trained weights replace them anyway."""
    spec = dict(spec)
    if spec.get("backbone_options"):
        spec["backbone_options"] = {key: value for key, value in spec["backbone_options"].items()
                                    if key != "weights"}
    return create(num_classes=num_classes, **spec)


def export_inference_weights(checkpoint: dict[str, Any], path: Path, data_root: str | None = None) -> str:
    """Write the inference weights of a longtail checkpoint to ``path``; returns their SHA-256.

    The run's data source is opened (``data_root`` or the run's ``data.root``) for the number of
    classes, the image size and the normalisation statistics the weights go with.
    """
    config = OmegaConf.create(checkpoint["config"])
    source = SOURCES.build(plain(config.data.source), root=data_root or config.data.root)
    model = build_model(plain(config.model), source.num_classes)
    model.load_state_dict(model_weights(checkpoint))
    tensors = {key: value.contiguous() for key, value in inference_module(model).state_dict().items()}
    data = {"num_classes": source.num_classes, "image_size": source.image_size, "mean": list(source.mean),
            "std": list(source.std), "epoch": checkpoint["epoch"]}
    # one metadata entry: safetensors writes several in a random order, and the same run should
    # give the same bytes when it is recorded again
    metadata = {METADATA_KEY: json.dumps(data, sort_keys=True)}
    content = save(tensors, metadata)
    write_atomically(path, lambda tmp: tmp.write_bytes(content))
    return hashlib.sha256(content).hexdigest()


def is_results_folder(path: Path) -> bool:
    """Whether ``path`` is a results folder (shipped weights, no checkpoints) rather than a run."""
    return (path / WEIGHTS_FILE).exists() and not (path / "checkpoints").exists()


def recorded_folder(name: str | Path, root: str | Path | None = None) -> Path:
    """The results folder ``name`` names: a path to one, or a folder under ``root``."""
    direct = Path(name).expanduser()
    folder = direct if (direct / WEIGHTS_FILE).exists() else Path(root or RESULTS_ROOT).expanduser() / name
    if not (folder / WEIGHTS_FILE).exists():
        raise NotFound(f"no {WEIGHTS_FILE} in {folder}; name a recorded run such as "
                                f"cifar100_lt/paco_ir100_seed1, or pass root= (the results folder) or a path")
    return folder


def verified_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``folder``'s weights, once their SHA-256 matches its ``summary.json``."""
    path, summary_file = folder / WEIGHTS_FILE, folder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    expected = summary.get("weights", {}).get("sha256")
    if expected is None:
        raise CheckpointError(f"{summary_file} records no SHA-256 for {WEIGHTS_FILE}; record the run "
                         "again with longtail record RUN_DIR DEST --force")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise CheckpointError(f"{path} has SHA-256 {actual[:16]}…, but {summary_file} records "
                         f"{expected[:16]}…: the file was changed or damaged; restore it (git "
                         "checkout) or record the run again")
    return load_file(path)


def _recorded(name: str | Path, root: str | Path | None) -> tuple[Path, DictConfig, dict[str, Any]]:
    folder = recorded_folder(name, root)
    with safe_open(folder / WEIGHTS_FILE, "pt") as handle:
        metadata = handle.metadata() or {}
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} was not written by longtail record (no {METADATA_KEY!r} "
                         "metadata)")
    return folder, load_config(folder / "config.yaml"), json.loads(metadata[METADATA_KEY])


def recorded_num_classes(name: str | Path, root: str | Path | None = None) -> int:
    """The number of classes the recorded run's model predicts."""
    return _recorded(name, root)[2]["num_classes"]


def load_pretrained(name: str | Path, root: str | Path | None = None,
                    device: str | torch.device = "cpu") -> nn.Module:
    """The model of a recorded run, checksum verified, in eval mode on ``device``: it maps
    normalised images (see :func:`pretrained_transform`) to logits.

    ``name``: ``"DATASET/NAME"`` under ``root`` (default: this checkout's ``results/``), or the
    path of a results folder. A stage-2 model (``frozen_features``) needs its stage-1 run as well.
    """
    folder, config, metadata = _recorded(name, root)
    model = inference_module(build_model(plain(config.model), metadata["num_classes"]))
    model.load_state_dict(verified_weights(folder))
    return model.to(device).eval()


def pretrained_transform(name: str | Path, root: str | Path | None = None) -> Callable[[Any], torch.Tensor]:
    """The run's test transform: a PIL image in, the normalised ``(C, H, W)`` tensor the model takes out."""
    _, config, metadata = _recorded(name, root)
    pipeline = TRANSFORMS.build(plain(config.data.test_transform), mean=tuple(metadata["mean"]),
                                std=tuple(metadata["std"]), image_size=metadata["image_size"])
    return pipeline.per_image
