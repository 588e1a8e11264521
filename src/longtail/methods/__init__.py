"""Methods by name: compositions of a model, streams, a loss and schedules."""

from .base import METHODS, Method, StepOutput, StreamSpec
from .bbn import BBN
from .mixup import Mixup
from .paco import PaCo
from .standard import Standard

__all__ = ["BBN", "METHODS", "Method", "Mixup", "PaCo", "StepOutput", "StreamSpec", "Standard"]
