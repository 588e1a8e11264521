"""longtail's pieces inside your own training loop.

Builds a long-tailed subset of a balanced dataset exactly as the papers do, draws batches with
BBN's reversed sampler (or the class-balanced one) through a plain ``DataLoader``, trains your
own model with the Balanced-Softmax loss or the PaCo loss, and prints the many/medium/few
report of your own predictions:

    python examples/own_training_loop.py --npz DIR/cifar10.npz --imbalance-ratio 100 --epochs 30
    python examples/own_training_loop.py --npz DIR/cifar10.npz --loss paco --sampler uniform

``DIR/cifar10.npz`` is what ``python ../shared/data/unpack_cifar.py DIR`` writes (any npz with
``x_train``, ``y_train``, ``x_test``, ``y_test`` uint8 images (N, H, W, 3) and integer labels).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from longtail.data import SAMPLERS, longtailed_indices
from longtail.data.batch_transforms import Normalize, RandomCropFlip
from longtail.engine import classification_report, format_report
from longtail.losses import LOSSES
from longtail.losses.contrastive import PaCoLoss


class Network(nn.Module):
    """Your own model: a torchvision ResNet-18 trunk, a linear classifier, and (for PaCo) a
    projection head whose normalised output is the contrastive feature."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.trunk = torchvision.models.resnet18(num_classes=num_classes)
        features = self.trunk.fc.in_features
        self.trunk.fc = nn.Identity()
        self.classifier = nn.Linear(features, num_classes)  # PaCo's class centres
        self.projection = nn.Sequential(nn.Linear(features, features), nn.BatchNorm1d(features),
                                        nn.ReLU(), nn.Linear(features, 128))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(images)
        return self.classifier(features), F.normalize(self.projection(features), dim=1)


def train_and_report(arrays: dict[str, np.ndarray], imbalance_ratio: float = 100, epochs: int = 30,
                     loss_name: str = "balanced_softmax", sampler_name: str = "reversed",
                     batch_size: int = 128, lr: float = 0.05, seed: int = 0) -> dict:
    """Train on the long-tailed subset of ``arrays``; return the test report."""
    torch.manual_seed(seed)
    labels = np.asarray(arrays["y_train"], dtype=np.int64)
    num_classes = int(labels.max()) + 1
    keep = longtailed_indices(labels, num_classes, imbalance_ratio)  # the papers' subset (seed 0)
    images, labels = torch.from_numpy(arrays["x_train"][keep]), torch.from_numpy(labels[keep])
    counts = np.bincount(labels.numpy(), minlength=num_classes)

    # Any longtail sampler is a torch Sampler: hand it to a plain DataLoader.
    sampler = SAMPLERS.build(sampler_name, targets=labels.numpy(), seed=seed)
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, sampler=sampler, drop_last=True)
    augment = RandomCropFlip(padding=images.shape[1] // 8)  # per-image crops on a whole batch
    normalize = Normalize(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))

    model = Network(num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    if loss_name == "paco":
        paco = PaCoLoss(counts, alpha=0.05, temperature=0.2)  # Balanced-Softmax centres
    else:
        classification = LOSSES.build(loss_name, class_counts=counts)  # any registered loss

    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # a fresh draw every epoch
        model.train()
        for batch, targets in loader:
            batch = batch.permute(0, 3, 1, 2)  # (B, H, W, C) uint8 -> (B, C, H, W)
            query = normalize(augment(batch))
            logits, q = model(query)
            if loss_name == "paco":
                # the contrast set of the batch itself: both views' features (a MoCo queue would
                # append earlier keys here)
                _, k = model(normalize(augment(batch)))
                loss = paco(logits, targets, torch.cat([q, k]), torch.cat([targets, targets]))
            else:
                loss = classification(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    model.eval()
    with torch.no_grad():
        test = torch.from_numpy(arrays["x_test"]).permute(0, 3, 1, 2)
        logits = torch.cat([model(normalize(chunk))[0] for chunk in test.split(500)])
    report = classification_report(logits, torch.as_tensor(arrays["y_test"], dtype=torch.long), counts)
    print(format_report(report, f"{loss_name}, {sampler_name} sampler, IR {imbalance_ratio:g}, {epochs} epochs:"))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", required=True, help="x_train, y_train, x_test, y_test")
    parser.add_argument("--imbalance-ratio", type=float, default=100)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--loss", default="balanced_softmax", help="paco, or any registered loss")
    parser.add_argument("--sampler", default="reversed", help="reversed, class_balanced, uniform, ...")
    args = parser.parse_args()
    with np.load(args.npz) as data:
        arrays = {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    train_and_report(arrays, args.imbalance_ratio, args.epochs, args.loss, args.sampler)


if __name__ == "__main__":
    main()
