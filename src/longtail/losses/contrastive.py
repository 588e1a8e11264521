"""Supervised contrastive losses over a MoCo contrast set: SupCon and PaCo.

Both take the contrast set ``[queries ; keys ; queue]`` of normalised features with its
labels; its first ``B`` rows are the anchors (the batch's queries). For anchor ``i`` every
contrast entry but its own query takes part in the softmax, and the entries with its label
are the positives. They are plain modules, not ``LOSSES`` entries, because they need more
than ``(logits, targets)``.

Every loss is computed in fp32 whatever the autocast precision: the contrast logits are
divided by a small temperature, which would magnify bf16 rounding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .classification import log_prior


def weighted_nll(logits: torch.Tensor, weights: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per row, ``-sum_j w_j log softmax(logits)_j / sum_j w_j`` with the softmax over ``valid``.

    Entries outside ``valid`` are left out of the softmax and must have zero weight.
    """
    logits = logits.masked_fill(~valid, float("-inf"))
    log_prob = logits - logits.logsumexp(1, keepdim=True)
    # where(): 0 * log 0 would be nan for the left-out entries.
    total = torch.where(weights > 0, weights * log_prob, 0.0).sum(1)
    return -total / weights.sum(1).clamp(min=torch.finfo(weights.dtype).tiny)


def contrast_terms(targets: torch.Tensor, contrast: torch.Tensor, contrast_targets: torch.Tensor,
                   temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor-vs-contrast logits ``q_i . f_j / T``, the positive mask and the not-self mask.

    The anchors are the first ``len(targets)`` rows of ``contrast``; anchor ``i`` is column ``i``.
    """
    batch = len(targets)
    contrast = contrast.float()
    similarity = contrast[:batch] @ contrast.t() / temperature
    not_self = torch.ones_like(similarity, dtype=torch.bool)
    not_self[:, :batch].fill_diagonal_(False)
    positives = (targets[:, None] == contrast_targets[None, :]) & not_self
    return similarity, positives, not_self


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020) with a MoCo queue: every same-label
    entry of the contrast set is a positive of weight 1."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, targets: torch.Tensor, contrast: torch.Tensor,
                contrast_targets: torch.Tensor) -> torch.Tensor:
        with torch.autocast(contrast.device.type, enabled=False):
            similarity, positives, not_self = contrast_terms(targets, contrast, contrast_targets,
                                                             self.temperature)
            return weighted_nll(similarity, positives.float(), not_self).mean()


class PaCoLoss(nn.Module):
    """Parametric contrastive loss (Cui et al. 2021), as in the authors' code.

    Row ``i`` of the softmax: the centre logits (``+ log pi`` when ``prior``: Balanced-Softmax
    rebalancing; without it, the "†" variant), not divided by the temperature, then
    ``q_i . f_j / T`` for the contrast set without ``q_i``. Positives: the own centre with
    weight 1, same-label contrast entries with weight ``alpha``. The authors' code also takes
    weights ``beta`` (the own centre's, here 1) and ``gamma``; all their recipes set both to 1,
    which is what this computes, so they are not options.
    """

    def __init__(self, class_counts: np.ndarray, alpha: float = 0.05, temperature: float = 0.2,
                 prior: bool = True) -> None:
        super().__init__()
        self.alpha, self.temperature = alpha, temperature
        counts = np.asarray(class_counts)
        self.register_buffer("log_prior", log_prior(counts) if prior else torch.zeros(len(counts)))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor,
                contrast_targets: torch.Tensor) -> torch.Tensor:
        with torch.autocast(contrast.device.type, enabled=False):
            similarity, positives, not_self = contrast_terms(targets, contrast, contrast_targets,
                                                             self.temperature)
            centres = logits.float() + self.log_prior
            own_centre = F.one_hot(targets, centres.shape[1]).float()
            return weighted_nll(
                torch.cat([centres, similarity], 1),
                torch.cat([own_centre, self.alpha * positives.float()], 1),
                torch.cat([torch.ones_like(centres, dtype=torch.bool), not_self], 1),
            ).mean()
