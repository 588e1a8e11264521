"""Methods by name: compositions of a model, streams, a loss and schedules."""

from ..registry import Registry

METHODS = Registry("method", supplied=("model_spec", "num_classes", "class_counts", "epochs"))

# base first: paco imports the engine, whose experiment module imports Method from here.
from .base import Method, StepOutput, StreamSpec  # noqa: E402,I001
from . import bbn, mixup, paco, standard  # noqa: E402,F401

__all__ = ["METHODS", "Method", "StepOutput", "StreamSpec"]
