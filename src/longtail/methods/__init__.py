"""Methods by name: compositions of a model, streams, a loss and schedules."""

from .base import METHODS, Method, StepOutput, StreamSpec
from .bbn import BBN
from .contrastive import ContrastiveMethod
from .mixup import Mixup
from .multitask import MultiTask
from .paco import PaCo
from .standard import Standard
from .supcon import SupCon

__all__ = ["BBN", "METHODS", "ContrastiveMethod", "Method", "Mixup", "MultiTask", "PaCo", "StepOutput", "StreamSpec",
           "Standard", "SupCon"]
