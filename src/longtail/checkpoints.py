"""What a longtail checkpoint holds and where a run keeps it: the one module that knows the layout.

A checkpoint is a ``torch.save``\\ d dict: ``epoch`` (epochs done), ``method`` (the method's state
dict; the model's entries start with ``model.``), ``optimizer``, ``scaler``, ``elapsed`` and
``config`` (the run's config as YAML text). A run directory keeps the latest one in
``checkpoints/last.pt``. Loading never unpickles Python objects (``weights_only=True``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from .errors import CheckpointError, NotFound
from .io import write_atomically

LAST = Path("checkpoints") / "last.pt"
MODEL_PREFIX = "model."  # the method's state-dict entries of its model


def checkpoint_file(target: str | Path) -> Path:
    """The checkpoint a path names: a run directory's ``checkpoints/last.pt``, or the file itself."""
    target = Path(target).expanduser()
    return target / LAST if target.is_dir() else target


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


def model_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's own state dict from a checkpoint (its ``method`` entries under ``model.``)."""
    return {key.removeprefix(MODEL_PREFIX): value for key, value in state["method"].items()
            if key.startswith(MODEL_PREFIX)}


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
