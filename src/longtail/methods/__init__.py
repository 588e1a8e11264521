"""Methods by name: compositions of a model, streams, a loss and schedules."""

from ..registry import Registry

METHODS = Registry("method")


from . import bbn, mixup, standard  # noqa: E402,F401
from .base import Method, StepOutput, StreamSpec  # noqa: E402

__all__ = ["METHODS", "Method", "StepOutput", "StreamSpec"]
