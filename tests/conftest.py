"""Shared fixtures: small datasets made on the fly (tests never need downloaded data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(1)  # tests are tiny; one thread avoids oversubscribing the CPU
    yield


@pytest.fixture
def tiny_npz(tmp_path):
    """A 4-class, 8x8 RGB dataset whose class is readable from the mean colour."""
    rng = np.random.default_rng(0)
    per_class, classes = 60, 4

    def make(n):
        labels = np.repeat(np.arange(classes), n)
        base = (labels[:, None, None, None] * 60 + 20).astype(np.int16)
        noise = rng.integers(-15, 16, size=(len(labels), 8, 8, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8), labels

    x_train, y_train = make(per_class)
    x_test, y_test = make(10)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             classes=np.array(["a", "b", "c", "d"]))
    return path


def tiny_config(npz_path, **sections):
    """A base config dict for a fast run on ``tiny_npz``."""
    config = {
        "name": "tiny",
        "data": {"source": {"name": "npz", "path": str(npz_path)}, "imbalance_ratio": 4,
                 "many_threshold": 40, "few_threshold": 20},
        "model": {"name": "resnet20"},
        "method": {"name": "standard"},
        "optim": {"lr": 0.05},
        "schedule": {"warmup_epochs": 1, "milestones": [3], "gamma": 0.1},
        "train": {"epochs": 4, "batch_size": 16, "eval_every": 0, "checkpoint_every": 1,
                  "progress": False, "precision": "fp32", "channels_last": False},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config
