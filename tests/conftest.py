"""Tiny long-tailed data for end-to-end tests (never the real CIFAR files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.config import load_config

NUM_CLASSES = 4


def write_tiny_npz(path: Path, per_class: int = 24, test_per_class: int = 6) -> Path:
    """8x8 RGB images whose colour depends on the class, plus noise: easy to learn a little."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        targets = np.repeat(np.arange(NUM_CLASSES), n)
        colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])
        images = colours[targets][:, None, None, :] + rng.integers(-40, 40, (len(targets), 8, 8, 3))
        return images.clip(0, 255).astype(np.uint8), targets

    x_train, y_train = split(per_class)
    x_test, y_test = split(test_per_class)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> dict:
    """A complete, fast config: long-tailed (IR 4) tiny data, ResNet-20, two epochs."""
    data = write_tiny_npz(tmp_path / "tiny.npz")
    return {
        "seed": 0,
        "data": {"source": {"name": "npz", "path": str(data)}, "imbalance_ratio": 4,
                 "many_threshold": 15, "few_threshold": 8},
        "model": {"name": "resnet20"},
        "optim": {"lr": 0.05},
        "schedule": {"warmup_epochs": 0, "milestones": []},
        "train": {"epochs": 2, "batch_size": 8, "precision": "fp32", "channels_last": False,
                  "device": "cpu", "eval_every": 0, "checkpoint_every": 1, "progress": False,
                  "threads": 1},
    }


@pytest.fixture
def configure(tiny_recipe: dict):
    """``configure(*overrides)``: the tiny recipe with ``key=value`` overrides, as the CLI does."""
    return lambda *overrides: load_config(base=tiny_recipe, overrides=list(overrides))
