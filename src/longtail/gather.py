"""Gathering a tensor from every process of a ``torchrun`` job (a no-op in a single process).

Methods call this (PaCo's key queue gathers every rank's keys); it needs no process-group setup
of its own, which :mod:`longtail.engine.distributed` does.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every rank along dim 0 (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)
