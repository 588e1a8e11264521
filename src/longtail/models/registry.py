"""The model registry: configs name a model (``model: {name: bbn_resnet32}``), this builds it.

Models register where they are defined: a backbone's plain classifier (``resnet32``) in
``classifier.py``, ``bbn_<backbone>`` in ``bbn.py``, ``moco_<backbone>`` in ``moco.py`` (families
over every registered backbone), stage 2 in ``two_stage.py``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..registry import Registry

MODELS = Registry("model")


def create(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a registered model, e.g. ``create("bbn_resnet32", num_classes=100)``."""
    return MODELS.build({"name": name, **options}, num_classes=num_classes)
