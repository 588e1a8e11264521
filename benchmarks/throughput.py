"""Training throughput of longtail's methods on this machine.

For each method it times the engine's own training step (``Trainer.step``) twice:
through the real data pipeline (sampler -> uint8 gather -> batched augmentation), and on
fixed in-memory tensors with no pipeline at all. As a yardstick of the machine itself it
times a bare fp32 loop (no engine, no channels_last, no autocast, fixed batch): the figure
that REFERENCE.md's speed section gives for its own machine. It also counts the model's training FLOPs
and divides the achieved FLOP/s by a dense matmul's FLOP/s measured in the same run (bf16 where the
CPU computes it natively, fp32 on an AVX2-only CPU, where bf16 is emulated).

    python benchmarks/throughput.py --data-root DIR [--methods ce bbn] [--steps 60] [--precisions bf16 fp32]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from longtail import models
from longtail.config import load_config
from longtail.engine import Trainer
from longtail.engine.experiment import native_bf16

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "cifar100_lt"
METHODS = {"ce": CONFIGS / "ce.yaml", "bbn": CONFIGS / "bbn.yaml"}  # IR 100


def matmul_flops_per_s(dtype: torch.dtype, size: int = 2048, repeats: int = 20) -> float:
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def images_per_s(step: Callable[[], int], steps: int, warmup: int = 5) -> float:
    """Images per second over ``steps`` calls of ``step`` (which returns the images it
    trained on), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    images = sum(step() for _ in range(steps))
    return images / (time.perf_counter() - start)


def plain_fp32_images_per_s(steps: int, batch_size: int = 128) -> float:
    """A bare PyTorch training loop of ResNet-32 in fp32 on one fixed batch."""
    model = models.create("resnet32", num_classes=100)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    images, targets = torch.randn(batch_size, 3, 32, 32), torch.randint(0, 100, (batch_size,))

    def step() -> int:
        loss = torch.nn.functional.cross_entropy(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch_size

    return images_per_s(step, steps)


def images_in(batches: dict) -> int:
    return sum(len(batch.targets) for batch in batches.values())


def timed_steps(trainer: Trainer, batch_source, steps: int) -> float:
    """Images per second of the engine's step on batches from ``batch_source``."""
    device, channels_last = trainer.runtime.device, trainer.config.train.channels_last

    def step() -> int:
        batches = {name: b.to(device, channels_last) for name, b in next(batch_source).items()}
        trainer.step(trainer.method, batches)
        return images_in(batches)

    return images_per_s(step, steps)


def pipeline_batches(streams: dict):
    epoch = 0
    while True:
        for stream in streams.values():
            stream.set_epoch(epoch)
        for batch_list in zip(*streams.values()):
            yield dict(zip(streams, batch_list))
        epoch += 1


def training_flops(trainer: Trainer, batches: dict) -> int:
    with FlopCounterMode(display=False) as counter:
        trainer.step(trainer.method, batches)
    return counter.get_total_flops()


def benchmark(method: str, data_root: str, steps: int, scratch: Path, precision: str | None = None) -> dict:
    overrides = [f"data.root={data_root}", "train.progress=false"]
    config = load_config(METHODS[method], overrides + ([f"train.precision={precision}"] if precision else []))
    trainer = Trainer(config, scratch / f"{method}_{precision}", log=lambda _: None)
    trainer.method.train()
    streams = trainer.experiment.train_streams()
    real = timed_steps(trainer, pipeline_batches(streams), steps)
    fixed = {name: b for name, b in next(pipeline_batches(streams)).items()}
    synthetic = timed_steps(trainer, iter(lambda: fixed, None), steps)
    flops_per_image = training_flops(trainer, fixed) / images_in(fixed)
    return {"real": real, "synthetic": synthetic, "flops_per_image": flops_per_image,
            "precision": trainer.config.train.precision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding cifar100.npz")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--precisions", nargs="+", choices=("auto", "bf16", "fp32"),
                        help="train.precision values to time each method in (default: its config's)")
    args = parser.parse_args()
    import tempfile

    dtype = torch.bfloat16 if native_bf16(torch.device("cpu")) else torch.float32
    peak = matmul_flops_per_s(dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"dense {str(dtype).removeprefix('torch.')} matmul: {peak / 1e9:.0f} GFLOP/s")
    print(f"plain fp32 loop (ResNet-32, fixed batch of 128): {plain_fp32_images_per_s(args.steps):.0f} img/s")
    print(f"{'method':<8}{'precision':>10}{'real img/s':>12}{'synthetic':>12}{'ratio':>8}{'GFLOP/img':>11}{'MFU':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        for method, precision in itertools.product(args.methods, args.precisions or [None]):
            r = benchmark(method, args.data_root, args.steps, Path(scratch), precision)
            mfu = r["real"] * r["flops_per_image"] / peak
            print(f"{method:<8}{r['precision']:>10}{r['real']:12.0f}{r['synthetic']:12.0f}"
                  f"{r['real'] / r['synthetic']:8.2f}{r['flops_per_image'] / 1e9:11.3f}{100 * mfu:7.1f}%")


if __name__ == "__main__":
    main()
