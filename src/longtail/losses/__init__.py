"""Losses by name. Each is a small module ``loss(logits, targets) -> scalar``; losses that
need the training class counts take ``class_counts`` (supplied by the method, not the config).
Losses with per-class weights (:class:`WeightedLoss`) take a ``weights`` schedule from
``CLASS_WEIGHTS``, which the method advances through ``set_epoch`` (:mod:`longtail.epochs`)."""

from ..registry import Registry

LOSSES = Registry("loss")

from . import classification, focal, ldam, logit_adjustment  # noqa: E402,F401
from .reweighting import CLASS_WEIGHTS, WeightedLoss  # noqa: E402

__all__ = ["CLASS_WEIGHTS", "LOSSES", "WeightedLoss"]
