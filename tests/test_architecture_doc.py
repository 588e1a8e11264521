"""docs/architecture.md: its examples run as written, and its map names every part of longtail."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from test_structure import RANKS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_examples_run_in_order_and_train_with_every_new_component(tmp_path):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) == 6  # loss, sampler, model, method, dataset, the run
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # a fresh interpreter: the examples' registrations stay out of this session's registries
    done = subprocess.run([sys.executable, "-c", "\n\n".join(blocks)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / "architecture_example"
    assert json.loads((run_dir / "eval.json").read_text())["num_test"] == 40
    config = (run_dir / "config.yaml").read_text()
    assert all(name in config for name in ("stripes", "tiny_cnn", "two_samplers", "label_smoothing", "inverse_sqrt"))


def test_the_map_names_every_part_of_longtail():
    text = DOC.read_text()
    package = ROOT / "src" / "longtail"
    parts = {p.stem for p in package.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    assert set(RANKS) <= parts
    table = "\n".join(line for line in text.splitlines() if line.startswith("| "))
    assert {part for part in parts if f"`{part}" not in table} == set()
