"""Every shipped config loads and builds its method (data is not needed to build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.config import load_config, plain
from longtail.methods import METHODS

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").rglob("*.yaml"))
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet_lt": 1000, "places_lt": 365, "inat2018": 8142}


def _source_name(config) -> str:
    source = plain(config.data.source)
    return source if isinstance(source, str) else source["name"]


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name != "base.yaml" and p.parent.name != "configs"],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_builds(path):
    config = load_config(path)
    num_classes = NUM_CLASSES[_source_name(config)]
    counts = np.maximum(1, (500 * 0.01 ** (np.arange(num_classes) / (num_classes - 1))).astype(int))
    with torch.device("meta"):  # shapes only: ResNet-50 heads for 8142 classes cost nothing
        method = METHODS.build(plain(config.method), model_spec=plain(config.model), num_classes=num_classes,
                               class_counts=counts, epochs=config.train.epochs)
    assert method.streams()
