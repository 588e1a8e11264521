"""Process-group setup for ``torchrun`` (the methods' collective is :mod:`longtail.gather`)."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ConfigError


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Runtime:
    """Pick the device and, under ``torchrun`` (WORLD_SIZE > 1), join the process group."""
    if device != "auto":
        _check_device(device)
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda:")
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        return Runtime(chosen, dist.get_rank(), world_size)
    if device == "auto":
        return Runtime(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    return Runtime(torch.device(device))


def processor(device: torch.device) -> str:
    """The kind of processor that computes on ``device``, for a run's record: bf16 kernels differ
    between kinds of CPU and GPU, and with them the last bits of a run's predictions."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    amx = any(line.startswith("flags") and " amx_bf16" in line for line in lines)
    # torch's dispatch level (AVX2, AVX512, ...) and AMX pick the bf16 convolution kernels oneDNN runs
    kernels = torch.backends.cpu.get_cpu_capability() + (", AMX" if amx else "")
    return f"{names[0] if names else platform.processor() or platform.machine()} ({kernels})"


def _check_device(device: str) -> None:
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown train.device {device!r}; choose auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={device}, but torch sees no CUDA device here; use "
                          "train.device=cpu or auto")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"train.device={device}, but there are only {torch.cuda.device_count()} "
                          "CUDA devices (cuda:0 ...); choose one of them")


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (``value`` itself in a single process); every rank calls it."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def restart_advice() -> str | None:
    """What to change before torchrun has to restart this job, if anything.

    Under ``--max-restarts``, torchrun's agent shares its rendezvous store with the workers
    (``TORCHELASTIC_USE_AGENT_STORE``) and, in torch 2.14 at least, keeps it across restarts with
    the failed workers' keys in it: restarted workers can then be sent to their predecessors'
    addresses and fail to connect (pytorch/pytorch#135712).
    """
    if int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", 0)) and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        return ("note: with torchrun --max-restarts, launch torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1; "
                "otherwise restarted workers may be sent to the failed workers' addresses (pytorch/pytorch#135712)")
    return None


def torchrun_job() -> str | None:
    """This torchrun job, the same in every restart of its workers: the rendezvous id and this
    node's agent (the workers' parent process); None outside torchrun."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:
        return None
    return f"{run_id}, agent pid {os.getppid()} on {socket.gethostname()}"


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
