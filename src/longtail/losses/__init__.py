"""Losses by name. Each is a small module ``loss(logits, targets) -> scalar``; losses that
need the training class counts take ``class_counts`` (supplied by the method, not the config).
Losses with per-class weights (:class:`WeightedLoss`) take a ``weights`` schedule from
``CLASS_WEIGHTS``, which the method advances through ``set_epoch`` (:mod:`longtail.epochs`)."""

from .classification import BalancedSoftmax, CrossEntropy
from .focal import FocalLoss
from .ldam import LDAMLoss
from .logit_adjustment import LogitAdjustedLoss
from .registry import LOSSES
from .reweighting import CLASS_WEIGHTS, WeightedLoss

__all__ = ["CLASS_WEIGHTS", "LOSSES", "BalancedSoftmax", "CrossEntropy", "FocalLoss", "LDAMLoss", "LogitAdjustedLoss",
           "WeightedLoss"]
