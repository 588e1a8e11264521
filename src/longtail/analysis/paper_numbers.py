"""The papers' top-1 accuracy (%) on CIFAR-LT, ResNet-32 from scratch, to set measured runs against.

Keys are those of ``results/``: the dataset folder (``cifar10_lt``, ``cifar100_lt``) and the
method part of a run's folder name (``bbn`` in ``bbn_ir100``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRow:
    label: str  # how the table names the method
    source: str  # where the figures are printed
    top1: dict[str, dict[int, float]]  # dataset -> imbalance ratio -> top-1


def _ratios(ir100: float, ir50: float, ir10: float) -> dict[int, float]:
    return {100: ir100, 50: ir50, 10: ir10}


PAPER = {
    "ce": PaperRow("CE", "BBN Table 1", {"cifar10_lt": _ratios(70.36, 74.81, 86.39),
                                         "cifar100_lt": _ratios(38.32, 43.85, 55.71)}),
    "ldam_drw": PaperRow("LDAM-DRW", "BBN Table 1", {"cifar10_lt": _ratios(77.03, 81.03, 88.16),
                                                     "cifar100_lt": _ratios(42.04, 46.62, 58.71)}),
    "bbn": PaperRow("BBN", "BBN Table 1", {"cifar10_lt": _ratios(79.82, 82.18, 88.32),
                                           "cifar100_lt": _ratios(42.56, 47.02, 59.12)}),
    "balanced_softmax": PaperRow("Balanced Softmax", "PaCo Table 6", {"cifar100_lt": _ratios(50.8, 54.2, 63.0)}),
    "paco": PaperRow("PaCo", "PaCo Table 6", {"cifar100_lt": _ratios(52.0, 56.0, 64.2)}),
}


def paper_top1(dataset: str, method: str, imbalance_ratio: float | None) -> float | None:
    """The paper's figure for this cell, or None where the papers give none."""
    row = PAPER.get(method)
    return None if row is None else row.top1.get(dataset, {}).get(imbalance_ratio)


# BBN Tables 3 and 4: top-1 error (%) on CIFAR-10-LT IR50 of BBN with another re-balancing
# sampler (Table 3) or adaptor (Table 4); the reversed sampler with parabolic decay is BBN itself.
BBN_SAMPLER_ERRORS = {"uniform": 21.31, "class_balanced": 21.06, "reversed": 17.82}
BBN_ADAPTOR_ERRORS = {"equal_weight": 21.56, "beta": 21.75, "parabolic_increment": 22.70,
                      "linear_decay": 18.55, "cosine_decay": 18.04, "parabolic_decay": 17.82}

# BBN Table 5: top-1 error (%) on CIFAR-100-LT IR50 of a classifier retrained (cRT) on each
# representation's frozen features; BBN-CB / BBN-RB are BBN's conventional / re-balancing branch.
BBN_FEATURE_ERRORS = {"CE": 58.62, "RW": 63.17, "RS": 63.71, "BBN-CB": 58.89, "BBN-RB": 61.09}
