"""How far bf16 autocast moves one training step's gradients from fp32's, part by part.

Issue 15 asks whether bf16 training costs BBN accuracy: its classifier reads ``2α·f_c`` and
``2(1−α)·f_r``, and α falls to 0.01 by the last epoch. Training again in fp32 takes hours; this
measures the suspected cause directly. From a trained run's weights, on a few training batches
drawn as the run draws them, the method's loss is back-propagated once in fp32 and once under
autocast, from the same weights, buffers and random draws. Per part of the model it reports the
relative error ``‖g_bf16 − g_fp32‖ / ‖g_fp32‖``, and, as the scale that error competes with,
how far the fp32 gradient moves from one batch to the next. Each measurement is taken in the
state of several epochs (``Method.set_epoch``: BBN's α, DRW's weights, ...). Floating point
keeps its relative precision at any scale, so a small α should leave the error where CE has it.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from itertools import islice
from pathlib import Path

import torch
from torch import nn

from ..engine.experiment import autocast
from ..errors import ConfigError
from ..methods import Method
from ..models import BilateralBranchNetwork
from .outputs import markdown_table, write_analysis
from .trained import TrainedRun, describe, device_for, load_runs


def gradient_parts(model: nn.Module) -> dict[str, torch.Tensor]:
    """The gradients now in ``model``, flattened per part: one part per top-level sub-module
    (BBN: trunk, conventional, rebalancing, classifier), BBN's classifier weight split into the
    columns reading each branch (W_c, W_r) as its Figure 4 splits it, and its bias."""
    parts: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, parameter in model.named_parameters():
        if parameter.grad is None:
            continue
        grad = parameter.grad.detach().float()
        if isinstance(model, BilateralBranchNetwork) and name.startswith("classifier."):
            if name == "classifier.weight":
                parts["classifier W_c"].append(grad[:, :model.feature_dim].flatten())
                parts["classifier W_r"].append(grad[:, model.feature_dim:].flatten())
            else:
                parts["classifier bias"].append(grad.flatten())
        else:
            parts[name.split(".")[0]].append(grad.flatten())
    return {part: torch.cat(grads).cpu() for part, grads in parts.items()}


def step_gradients(method: Method, batches: dict, precision: str, device: torch.device,
                   seed: int) -> tuple[dict[str, torch.Tensor], dict[str, float], float]:
    """One training step's gradients per part (see :func:`gradient_parts`), its logs and loss;
    ``seed`` fixes the step's random draws (a Beta adaptor's α, dropout)."""
    torch.manual_seed(seed)
    method.zero_grad(set_to_none=True)
    with autocast(precision, device):
        output = method(batches)
    output.loss.backward()
    return gradient_parts(method.model), output.logs, float(output.loss.detach())


def relative(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """``‖a − b‖ / ‖b‖``; None where ``b`` is zero (BBN's re-balancing branch at α = 1)."""
    scale = b.double().norm()
    return float((a.double() - b.double()).norm() / scale) if scale else None


def mean(values: list[float | None]) -> float | None:
    """The mean, or None when a value is None (no gradient to compare with)."""
    return None if None in values else sum(values) / len(values)


def compare_precisions(run: TrainedRun, epochs: list[int], batches: int, precision: str,
                       device: torch.device) -> list[dict]:
    """For each 1-based epoch in ``epochs``: the mean over ``batches`` training batches of each
    part's relative error under ``precision``, the batch-to-batch relative change in fp32, the
    step's logs (BBN: α) and both losses."""
    experiment, channels_last = run.experiment, run.config.train.channels_last
    method = experiment.method.to(device).train()
    if channels_last:
        method.to(memory_format=torch.channels_last)
    state = copy.deepcopy(method.state_dict())  # every pass starts here: BN statistics, queues
    streams = experiment.train_streams()
    rows = []
    try:
        for epoch in epochs:
            method.set_epoch(epoch - 1)
            for stream in streams.values():
                stream.set_epoch(epoch - 1)
            error, change, losses, previous = defaultdict(list), defaultdict(list), defaultdict(list), None
            for step, drawn in enumerate(islice(zip(*streams.values()), batches)):
                batch = {name: part.to(device, channels_last) for name, part in zip(streams, drawn)}
                grads = []
                for name in ("fp32", precision):
                    method.load_state_dict(state)
                    grad, logs, loss = step_gradients(method, batch, name, device, seed=step)
                    grads.append(grad)
                    losses[name].append(loss)
                exact, approximate = grads
                for part, reference in exact.items():
                    error[part].append(relative(approximate[part], reference))
                    if previous is not None:
                        change[part].append(relative(reference, previous[part]))
                previous = exact
            rows.append({"epoch": epoch, "logs": logs, "batches": batches,
                         "loss": {name: mean(values) for name, values in losses.items()},
                         "relative_error": {part: mean(v) for part, v in error.items()},
                         "batch_to_batch": {part: mean(v) for part, v in change.items()}})
    finally:
        method.load_state_dict(state)
        method.to(memory_format=torch.contiguous_format).cpu().eval()
    return rows


def default_epochs(total: int) -> list[int]:
    """The first, middle, three-quarter and last epoch of a run of ``total`` epochs."""
    return sorted({1, max(1, total // 2), max(1, 3 * total // 4), total})


def percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def run_table(label: str, rows: list[dict], precision: str) -> str:
    parts = list(rows[0]["relative_error"])
    logged = sorted({key for row in rows for key in row["logs"]})
    header = ["epoch", *logged, *(f"{part}: {precision} error %" for part in parts),
              *(f"{part}: next batch %" for part in parts)]
    body = [[row["epoch"], *(f"{row['logs'][key]:.4g}" for key in logged),
             *(percent(row["relative_error"][part]) for part in parts),
             *(percent(row["batch_to_batch"].get(part)) for part in parts)] for row in rows]
    return f"### {label}\n\n" + markdown_table(header, body)


def analyze(runs: list[str | Path], output_dir: str | Path, labels: list[str] | None = None,
            data_root: str | None = None, device: str = "auto", epochs: list[int] | None = None,
            batches: int = 4, precision: str = "bf16") -> list[Path]:
    """Write ``grad_precision.{json,md}`` for ``runs``: per run, epoch and part of the model, how
    far a step's gradient under ``precision`` is from fp32's, next to how far the next batch's is."""
    if batches < 1:
        raise ConfigError(f"--batches {batches}: measure on at least one batch")
    trained = load_runs(runs, labels, data_root)
    for run in trained:
        outside = [epoch for epoch in epochs or () if not 1 <= epoch <= run.config.train.epochs]
        if outside:
            raise ConfigError(f"--epochs {outside}: {run.label} has epochs 1 to {run.config.train.epochs}")
    target = device_for(device)
    results = {run.label: compare_precisions(run, epochs or default_epochs(run.config.train.epochs), batches,
                                             precision, target) for run in trained}
    table = (f"Relative error ‖g_{precision} − g_fp32‖ / ‖g_fp32‖ of one training step's gradient, per part "
             f"of the model, from the trained weights in each epoch's state (mean over {batches} training "
             "batches); \"next batch\": ‖g − g_next‖ / ‖g‖ between consecutive batches in fp32, the "
             "sampling noise the precision error adds to\n\n"
             + "\n".join(run_table(label, rows, precision) for label, rows in results.items()))
    return write_analysis(output_dir, "grad_precision", {**describe(trained), "precision": precision,
                                                         "results": results}, table)
