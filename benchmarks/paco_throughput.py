"""PaCo training throughput on CIFAR-100-LT: samples/s and step time relative to a CE step.

    PYTHONPATH=src python benchmarks/paco_throughput.py --data-root /work/data [key=value ...]

Three figures, each for the config's precision and memory format:

- ``augment``: cost per image of each view pipeline, per-image (PIL, what a worker pays) and
  batched (uint8 tensors in the training process, what the in-memory stream pays);
- ``step``: one PaCo step (query forward + backward, momentum update, key forward, loss, SGD)
  against one cross-entropy step of the same backbone on the same batch, data already in memory;
- ``end_to_end``: the real two-view stream (DataLoader workers for per-image pipelines) feeding
  PaCo steps: the samples/s a training run gets.

Numbers taken while anything else runs on the machine are not valid.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from longtail.config import load_config, plain
from longtail.data import Batch
from longtail.engine import build_experiment
from longtail.engine.experiment import Experiment, autocast
from longtail.methods import METHODS, Method

DEFAULT_CONFIG = "configs/cifar100_lt/paco_ir100.yaml"


def _seconds_per_call(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def augment_costs(experiment: Experiment, images: int = 256) -> dict[str, dict[str, float]]:
    """Microseconds per image of every view pipeline of the method, per-image and batched."""
    pictures = [Image.fromarray(experiment.train.images[i]) for i in range(images)]
    batch = torch.from_numpy(experiment.train.images[: experiment.config.train.batch_size])
    generator = torch.Generator().manual_seed(0)
    costs = {}
    for spec in experiment.method.streams()["main"].views:
        pipeline = experiment.transform(spec)
        seconds = _seconds_per_call(lambda p=pipeline.per_image: [p(x) for x in pictures], 2, warmup=1)
        costs[str(plain(spec))] = {"per_image": 1e6 * seconds / images}
        if pipeline.batched is not None:
            seconds = _seconds_per_call(lambda p=pipeline.batched: p(batch, generator), 20)
            costs[str(plain(spec))]["batched"] = 1e6 * seconds / len(batch)
    return costs


def make_step(method: Method, config, device: torch.device) -> Callable[[dict], None]:
    """One optimisation step as the trainer takes it (autocast, backward, SGD)."""
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad],
                                lr=1e-4, momentum=0.9, weight_decay=config.optim.weight_decay)

    def step(batches: dict) -> None:
        with autocast(config.train.precision, device):
            loss = method(batches).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _prepare(method: Method, config) -> Method:
    method.train()
    if config.train.channels_last:
        method.to(memory_format=torch.channels_last)
    return method


def step_times(experiment: Experiment, repeats: int = 20) -> dict[str, float]:
    """Seconds per PaCo step and per CE step (query view only) on one in-memory batch."""
    config, device = experiment.config, torch.device("cpu")
    stream = experiment.train_streams()["main"]
    batch = next(iter(stream)).to(device, config.train.channels_last)
    ce = METHODS.build({"name": "standard", "loss": "ce"},
                       model_spec={"name": config.model.name.removeprefix("moco_")},
                       num_classes=experiment.source.num_classes,
                       class_counts=experiment.class_counts)
    paco_step = make_step(_prepare(experiment.method, config), config, device)
    ce_step = make_step(_prepare(ce, config), config, device)
    ce_batch = {"main": Batch([batch.views[0]], batch.targets)}
    paco = _seconds_per_call(lambda: paco_step({"main": batch}), repeats)
    cross_entropy = _seconds_per_call(lambda: ce_step(ce_batch), repeats)
    return {"paco_step_s": paco, "ce_step_s": cross_entropy, "paco_over_ce": paco / cross_entropy,
            "paco_samples_per_s_model_only": len(batch.targets) / paco}


def end_to_end(experiment: Experiment, steps: int = 40) -> dict[str, float]:
    """Samples/s of PaCo steps fed by the real two-view stream (workers included)."""
    config, device = experiment.config, torch.device("cpu")
    stream = experiment.train_streams()["main"]
    step = make_step(_prepare(experiment.method, config), config, device)
    batches = iter(stream)
    for batch in itertools.islice(batches, 3):  # worker start-up and first-call overheads
        step({"main": batch.to(device, config.train.channels_last)})
    started, seen = time.perf_counter(), 0
    for batch in itertools.islice(batches, steps):
        step({"main": batch.to(device, config.train.channels_last)})
        seen += len(batch.targets)
    seconds = time.perf_counter() - started
    return {"samples_per_s": seen / seconds, "step_s": seconds * config.train.batch_size / seen,
            "stream": type(stream).__name__, "num_workers": config.train.num_workers}


def benchmark(config_path: str = DEFAULT_CONFIG, overrides: list[str] = (),
              data_root: str | None = None, steps: int = 40, augment_only: bool = False) -> dict[str, Any]:
    """All three figures for a config (by default PaCo on CIFAR-100-LT IR 100), or only the
    augmentation costs."""
    config = load_config(config_path, list(overrides))
    if data_root:
        config.data.root = data_root
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    torch.manual_seed(0)
    figures = {
        "config": config_path, "overrides": list(overrides), "threads": torch.get_num_threads(),
        "precision": config.train.precision, "channels_last": config.train.channels_last,
        "augment_us_per_image": augment_costs(build_experiment(config)),
    }
    if not augment_only:
        figures["step"] = step_times(build_experiment(config))
        figures["end_to_end"] = end_to_end(build_experiment(config), steps)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--data-root")
    parser.add_argument("--steps", type=int, default=40, help="end-to-end steps to time")
    parser.add_argument("--augment-only", action="store_true", help="time the view pipelines only")
    args = parser.parse_args()
    print(json.dumps(benchmark(args.config, args.overrides, args.data_root, args.steps, args.augment_only),
                     indent=1))


if __name__ == "__main__":
    main()
