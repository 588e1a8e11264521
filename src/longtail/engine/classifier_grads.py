"""PaCo Figure 2's measurement, taken during training: every N optimisation steps, the ℓ2 norm
of each class's row of the gradient of the last classifier layer's weight, one JSON line per
step in ``classifier_grads.jsonl`` (``train.log_classifier_grad_every: N``; 0 is off).

The gradient is read after the optimiser step, which leaves ``.grad`` as backward made it
(SGD adds weight decay to a copy; the fp16 scaler has unscaled it in place).
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ..models.parts import classifier_layer
from ..registry import ConfigError

GRAD_LOG = "classifier_grads.jsonl"


class ClassifierGradLog:
    """Appends ``{"epoch": T, "step": s, "grad_norm": [one norm per class]}`` every ``every`` steps."""

    def __init__(self, model: nn.Module, run_dir: Path, every: int) -> None:
        self.every, self.path = every, Path(run_dir) / GRAD_LOG
        if not every:
            return
        try:
            self.weight = classifier_layer(model).weight
        except ValueError as error:
            raise ConfigError(f"train.log_classifier_grad_every: {error}") from None
        if not self.weight.requires_grad:
            raise ConfigError("train.log_classifier_grad_every: this method never trains its classifier "
                              "(its gradient is always zero); log a method that does, e.g. multitask")

    def after_step(self, step: int, epoch: int) -> None:
        """Record global ``step`` (0-based, in 0-based ``epoch``) if it is one of every N."""
        if not self.every or step % self.every or self.weight.grad is None:
            return
        norms = self.weight.grad.detach().float().norm(dim=1).tolist()  # one device sync per N steps
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"epoch": epoch + 1, "step": step, "grad_norm": norms}) + "\n")
