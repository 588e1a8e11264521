"""Shared fixtures: tiny long-tailed data made on the fly (tests never need downloaded data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.config import load_config


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(1)  # tests are tiny; one thread avoids oversubscribing the CPU
    yield

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


def make_tiny_recipe(folder: Path) -> dict:
    """A complete, fast config: long-tailed (IR 4) tiny data in ``folder``, ResNet-20, two epochs."""
    data = write_tiny_npz(folder / "tiny.npz")
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
def tiny_recipe(tmp_path: Path) -> dict:
    """The tiny recipe (:func:`make_tiny_recipe`) with its data in this test's ``tmp_path``."""
    return make_tiny_recipe(tmp_path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """``tiny_run(*overrides)``: the directory of a finished run of the tiny recipe with those
    ``key=value`` overrides (e.g. ``"model.name=bbn_resnet20", "method.name=bbn"``), trained
    once per test session and shared by every test that asks for the same overrides."""
    from longtail.engine import Trainer

    folder = tmp_path_factory.mktemp("tiny_runs")
    recipe, finished = make_tiny_recipe(folder), {}

    def run(*overrides: str) -> Path:
        if overrides not in finished:
            run_dir = folder / f"run{len(finished)}"
            Trainer(load_config(base=recipe, overrides=list(overrides)), run_dir, log=lambda _: None).fit()
            finished[overrides] = run_dir
        return finished[overrides]

    return run


@pytest.fixture
def configure(tiny_recipe: dict):
    """``configure(*overrides)``: the tiny recipe with ``key=value`` overrides, as the CLI does."""
    return lambda *overrides: load_config(base=tiny_recipe, overrides=list(overrides))


@pytest.fixture
def tiny_npz(tmp_path):
    """60 training and 10 test images a class: IR 4 gives counts 60, 37, 23, 15."""
    return write_tiny_npz(tmp_path / "tiny.npz", per_class=60, test_per_class=10)


def reference_indices(targets, num_classes, ratio):
    """The long-tailed subset as REFERENCE.md states it, with the global numpy RNG seeded 0."""
    n_max = len(targets) // num_classes
    np.random.seed(0)
    kept = []
    for c in range(num_classes):
        n = int(n_max * (1 / ratio) ** (c / (num_classes - 1)))
        idx = np.where(targets == c)[0]
        np.random.shuffle(idx)
        kept.append(idx[:n])
    return np.concatenate(kept)


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
