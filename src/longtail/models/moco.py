"""The MoCo query/key wrapper (He et al. 2020) that PaCo and the SupCon baselines train in.

The query side is a registry backbone, a linear classifier on its pooled feature (PaCo's
learnable class centres) and a projection head; the key side is a momentum copy of the
backbone and the projection head, never trained by gradients. A FIFO queue keeps the last
``queue_size`` normalised keys with their labels.

The queue is process-local: the method gathers keys across ranks before :meth:`MoCo.enqueue`,
so every rank enqueues the same keys and the queues stay identical without a broadcast. Under
DDP the key encoder runs with MoCo's Shuffle-BN (``shuffle_bn``, see :func:`shuffle_bn`), as the
PaCo authors trained it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..gather import gather_cat
from .backbones import BACKBONES, FeatureExtractor, build_backbone
from .classifier import ImageClassifier
from .registry import MODELS


class ProjectionHead(nn.Sequential):
    """``Linear(d, d) -> BatchNorm1d -> ReLU -> Linear(d, dim)`` (MoCo v2's MLP)."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__(
            nn.Linear(in_features, in_features),
            nn.BatchNorm1d(in_features),
            nn.ReLU(inplace=True),
            nn.Linear(in_features, dim),
        )


def shuffle_bn(encode: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """``encode(images)``, with batch-norm statistics from a random mix of every rank's images.

    MoCo's Shuffle-BN (He et al. 2020, Sec. 3.3): the batches of all ranks are gathered and
    shuffled with a permutation broadcast from rank 0, each rank encodes its shard of the
    shuffled batch, and the outputs are gathered and unshuffled, so this rank gets the rows of
    its own images in order. Without it a query and its positive key are normalised with the
    statistics of the same small batch, which leaks information the model learns to exploit
    (MoCo's "cheating"). Every rank's batch must have the same size; in a single process this
    is ``encode(images)``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return encode(images)
    world, rank = dist.get_world_size(), dist.get_rank()
    everything = gather_cat(images)
    order = torch.randperm(len(everything), device=images.device)  # drawn alike on every rank, as MoCo's
    dist.broadcast(order, src=0)
    shard = everything[order.view(world, -1)[rank]]
    if images.is_contiguous(memory_format=torch.channels_last):
        shard = shard.contiguous(memory_format=torch.channels_last)
    encoded = gather_cat(encode(shard))  # row i encodes everything[order[i]]
    return encoded[torch.argsort(order).view(world, -1)[rank]]


@dataclass
class ContrastStep:
    """One training step's outputs.

    ``contrast`` is ``[queries ; keys ; queue]`` (normalised, fp32): its first ``B`` rows are the
    anchors. Only the query rows carry gradients.
    """

    logits: torch.Tensor  # (B, C) centre logits of the query view
    keys: torch.Tensor  # (B, dim) normalised keys, to enqueue
    contrast: torch.Tensor  # (2B + K, dim)
    contrast_targets: torch.Tensor  # (2B + K,)


class MoCo(nn.Module):
    """Query encoder + classifier + projection head, momentum key encoder, queue of keys.

    ``shuffle_bn`` runs the key encoder with :func:`shuffle_bn` (a no-op in a single process).
    """

    def __init__(self, backbone: FeatureExtractor, num_classes: int, dim: int = 128,
                 queue_size: int = 8192, momentum: float = 0.999, shuffle_bn: bool = True) -> None:
        super().__init__()
        width = backbone.out_features
        self.backbone = backbone  # same name as ImageClassifier's, so linear probes can load it
        self.classifier = nn.Linear(width, num_classes)
        self.projector = ProjectionHead(width, dim)
        self.key_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.key_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.momentum, self.shuffle_bn = momentum, shuffle_bn
        # Random unit keys with random labels until real keys replace them (the first
        # queue_size / batch_size steps; the authors' rows are not unit vectors, which cannot matter).
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_targets", torch.randint(num_classes, (queue_size,)))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Centre logits: the plain linear classifier, used for inference."""
        return self.classifier(self.backbone(images))

    def query_classifier(self) -> ImageClassifier:
        """What inference needs, sharing this model's parameters: the query backbone and the
        classifier (no projection heads, key encoder or queue)."""
        return ImageClassifier(self.backbone, self.classifier)

    def encoder_pairs(self) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """(key, query) parameter pairs of the encoders that the momentum update ties."""
        key = [*self.key_backbone.parameters(), *self.key_projector.parameters()]
        query = [*self.backbone.parameters(), *self.projector.parameters()]
        return list(zip(key, query, strict=True))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``k = m * k + (1 - m) * q`` for every key-encoder parameter, rounded as written."""
        key, query = zip(*self.encoder_pairs(), strict=True)
        torch._foreach_mul_(key, self.momentum)
        torch._foreach_add_(key, torch._foreach_mul(query, 1 - self.momentum))

    @torch.no_grad()
    def encode_keys(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised key features (with Shuffle-BN if ``shuffle_bn``); no autograd graph is recorded.

        Under DDP with ``shuffle_bn`` this is a collective: every rank must call it.
        """
        def encode(batch: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.key_projector(self.key_backbone(batch)).float(), dim=1)

        return shuffle_bn(encode, images) if self.shuffle_bn else encode(images)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, targets: torch.Tensor) -> None:
        """FIFO: overwrite the oldest entries with ``keys`` (wrapping around the end)."""
        size = len(self.queue)
        keys, targets = keys[-size:], targets[-size:]  # more keys than slots: the newest win
        slots = (self.queue_pointer + torch.arange(len(keys), device=keys.device)) % size
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_targets[slots] = targets
        self.queue_pointer.copy_((self.queue_pointer + len(keys)) % size)

    def contrast_step(self, query_images: torch.Tensor, key_images: torch.Tensor,
                      targets: torch.Tensor) -> ContrastStep:
        """Query forward with gradients, momentum update, key forward; the queue is not changed."""
        features = self.backbone(query_images)
        queries = F.normalize(self.projector(features).float(), dim=1)
        self.momentum_update()
        keys = self.encode_keys(key_images)
        return ContrastStep(
            logits=self.classifier(features),
            keys=keys,
            contrast=torch.cat([queries, keys, self.queue]),
            contrast_targets=torch.cat([targets, targets, self.queue_targets]),
        )


@MODELS.register_family("moco_", BACKBONES)
def moco(backbone: str, num_classes: int, dim: int = 128, queue_size: int = 8192, momentum: float = 0.999,
         shuffle_bn: bool = True, backbone_options: dict | None = None) -> MoCo:
    """``moco_<backbone>``: classifier, projection head, momentum key encoder and queue on a backbone."""
    return MoCo(build_backbone(backbone, backbone_options), num_classes, dim, queue_size, momentum, shuffle_bn)
