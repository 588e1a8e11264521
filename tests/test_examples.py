"""The README's library example runs as written, on data the test makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import write_tiny_npz

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_training_loop.py"


def _example():
    spec = importlib.util.spec_from_file_location("own_training_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("loss,sampler", [("balanced_softmax", "reversed"), ("paco", "class_balanced")])
def test_own_training_loop_example(tmp_path, capsys, loss, sampler):
    with np.load(write_tiny_npz(tmp_path / "tiny.npz", per_class=40, test_per_class=10)) as data:
        arrays = dict(data)
    report = _example().train_and_report(arrays, imbalance_ratio=4, epochs=2, loss_name=loss,
                                         sampler_name=sampler, batch_size=16)
    # IR 4 over 4 classes of 40: 40, 25, 15, 10 training images; 10 test images a class
    assert report["train_counts"] == [40, 25, 15, 10]
    assert report["num_test"] == 40
    assert 0 <= report["top1"] <= 100 and report["few"] is not None
    assert f"{loss}, {sampler} sampler, IR 4, 2 epochs:" in capsys.readouterr().out
