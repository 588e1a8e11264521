"""The engine: one training loop, evaluation, checkpoints, schedules and DDP."""

from .experiment import Experiment, build_experiment, predict
from .metrics import classification_report, format_report
from .trainer import Trainer

__all__ = ["Experiment", "Trainer", "build_experiment", "classification_report", "format_report", "predict"]
