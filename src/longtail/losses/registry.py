"""The loss registry: ``loss: {name: ldam, max_margin: 0.5}`` in a config builds ``LDAMLoss``.

A loss is a module ``loss(logits, targets) -> scalar``; one that needs the training class counts
takes a ``class_counts`` argument, which the method supplies (a config may not set it).
"""

from ..registry import Registry

LOSSES = Registry("loss")
