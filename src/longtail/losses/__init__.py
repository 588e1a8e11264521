"""Losses by name. Each is a small module ``loss(logits, targets) -> scalar``; losses that
need the training class counts take ``class_counts`` (supplied by the method, not the config)."""

from ..registry import Registry

LOSSES = Registry("loss")

from . import classification  # noqa: E402,F401

__all__ = ["LOSSES"]
