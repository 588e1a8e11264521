"""PaCo, SupCon and the MoCo wrapper: losses against loop-based formulas, the queue, the momentum
update, DDP key gathering, and a small end-to-end run through the Trainer. (SupCon's stage 2 is in
test_two_stage.py.)"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from longtail.checkpoints import load_checkpoint
from longtail.config import load_config, plain
from longtail.engine import Trainer
from longtail.losses.contrastive import PaCoLoss, SupConLoss
from longtail.methods import METHODS
from longtail.models import create

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")
MOCO_TINY = {"name": "moco_resnet20", "dim": 8, "queue_size": 16, "momentum": 0.99}


def _contrast_sample(batch: int = 5, queue: int = 7, dim: int = 4, classes: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(2 * batch + queue, dim, generator=generator, dtype=torch.float64)
    contrast = F.normalize(features, dim=1)
    targets = torch.randint(classes, (batch,), generator=generator)
    queue_targets = torch.randint(classes, (queue,), generator=generator)
    logits = torch.randn(batch, classes, generator=generator, dtype=torch.float64)
    return logits, targets, contrast, torch.cat([targets, targets, queue_targets])


def _loop_loss(logits, targets, contrast, contrast_targets, temperature, alpha, centre_bias):
    """Eq. (4) as the authors' code computes it, one anchor and one entry at a time.

    ``centre_bias`` is None for SupCon (no centres); else a list added to the centre logits.
    """
    logits, contrast = logits.tolist(), contrast.tolist()
    targets, contrast_targets = targets.tolist(), contrast_targets.tolist()
    losses = []
    for i, label in enumerate(targets):
        entries = []  # (logit, weight)
        if centre_bias is not None:
            entries += [(logits[i][c] + centre_bias[c], 1.0 if c == label else 0.0)
                        for c in range(len(logits[i]))]
        for j, feature in enumerate(contrast):
            if j == i:  # the anchor's own query
                continue
            dot = sum(a * b for a, b in zip(contrast[i], feature, strict=True))
            entries.append((dot / temperature, alpha if contrast_targets[j] == label else 0.0))
        log_normaliser = math.log(sum(math.exp(value) for value, _ in entries))
        weight = sum(w for _, w in entries)
        losses.append(-sum(w * (value - log_normaliser) for value, w in entries) / weight)
    return sum(losses) / len(losses)


@pytest.mark.parametrize("prior", [True, False])
def test_paco_loss_matches_loop(prior):
    logits, targets, contrast, contrast_targets = _contrast_sample()
    counts = np.array([50, 9, 2])
    bias = [math.log(n / counts.sum()) for n in counts] if prior else [0.0] * 3
    loss = PaCoLoss(counts, alpha=0.3, temperature=0.2, prior=prior)
    expected = _loop_loss(logits, targets, contrast, contrast_targets, 0.2, 0.3, bias)
    value = loss(logits, targets, contrast, contrast_targets).item()
    assert value == pytest.approx(expected, rel=1e-5)


def test_paco_loss_prior_changes_the_value():
    logits, targets, contrast, contrast_targets = _contrast_sample(seed=3)
    counts = np.array([50, 9, 2])
    with_prior = PaCoLoss(counts, 0.3, 0.2, prior=True)(logits, targets, contrast, contrast_targets)
    without = PaCoLoss(counts, 0.3, 0.2, prior=False)(logits, targets, contrast, contrast_targets)
    assert abs(with_prior.item() - without.item()) > 1e-3


def test_supcon_loss_matches_loop():
    logits, targets, contrast, contrast_targets = _contrast_sample(seed=1)
    expected = _loop_loss(logits, targets, contrast, contrast_targets, 0.1, 1.0, None)
    loss = SupConLoss(temperature=0.1)(targets, contrast, contrast_targets)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_multitask_adds_weighted_supcon_to_the_classification_loss():
    logits, targets, contrast, contrast_targets = _contrast_sample(seed=5)
    method = METHODS.build({"name": "multitask", "loss": "ce", "weight": 0.3, "temperature": 0.2},
                           model_spec=MOCO_TINY, num_classes=3, class_counts=np.array([5, 3, 1]))
    ce = -sum(math.log(math.exp(row[y]) / sum(math.exp(v) for v in row))
              for row, y in zip(logits.tolist(), targets.tolist(), strict=True)) / len(targets)
    supcon = _loop_loss(logits, targets, contrast, contrast_targets, 0.2, 1.0, None)
    value = method.objective(logits, targets, contrast, contrast_targets).item()
    assert value == pytest.approx(ce + 0.3 * supcon, rel=1e-5)


def test_paco_without_contrast_entries_is_balanced_softmax():
    """Batch of one, contrast set = its own query only: nothing but the centres is left."""
    generator = torch.Generator().manual_seed(2)
    counts = np.array([40, 10, 5, 1])
    loss = PaCoLoss(counts, alpha=0.0, temperature=0.07)
    for label in range(4):
        logits = torch.randn(1, 4, generator=generator)
        query = F.normalize(torch.randn(1, 8, generator=generator), dim=1)
        target = torch.tensor([label])
        # Balanced Softmax by hand: -log(n_y e^{z_y} / sum_c n_c e^{z_c})
        weighted = torch.tensor(counts, dtype=torch.float32) * logits[0].exp()
        expected = -math.log(weighted[label].item() / weighted.sum().item())
        assert loss(logits, target, query, target).item() == pytest.approx(expected, rel=1e-5)


def test_paco_alpha_zero_ignores_contrast_positives_but_not_negatives():
    """alpha = 0: the only positive is the centre, yet contrast entries stay in the softmax."""
    logits, targets, contrast, contrast_targets = _contrast_sample(seed=4)
    counts = np.array([5, 5, 5])
    loss = PaCoLoss(counts, alpha=0.0, temperature=0.5)
    value = loss(logits, targets, contrast, contrast_targets)
    ce = F.cross_entropy(logits, targets)
    assert value.item() > ce.item()  # the extra entries only enlarge every denominator


def _moco(queue_size: int = 6, dim: int = 3, momentum: float = 0.9):
    return create("moco_resnet20", num_classes=4, dim=dim, queue_size=queue_size, momentum=momentum)


def test_queue_is_fifo_with_aligned_labels_and_wraps_around():
    model = _moco(queue_size=5)
    batches = [(torch.full((2, 3), float(step)), torch.tensor([step, 10 + step]))
               for step in range(4)]
    for keys, labels in batches:
        model.enqueue(keys, labels)
    # The k-th key (0-based) goes to slot k % 5, so slot s holds the newest k < 8 with k % 5 == s.
    stream = [(keys[i], labels[i]) for keys, labels in batches for i in range(2)]
    for slot in range(5):
        newest = max(k for k in range(8) if k % 5 == slot)
        assert torch.equal(model.queue[slot], stream[newest][0])
        assert model.queue_targets[slot].item() == stream[newest][1].item()
    assert model.queue_pointer.item() == 8 % 5


def test_momentum_update_is_exact():
    model = _moco(momentum=0.75)
    with torch.no_grad():  # make key and query encoders differ
        for parameter in [*model.backbone.parameters(), *model.projector.parameters()]:
            parameter.add_(torch.randn_like(parameter))
    pairs = model.encoder_pairs()
    expected = [0.75 * key.detach().clone() + 0.25 * query.detach().clone() for key, query in pairs]
    model.momentum_update()
    # the projector adds 2 linears and a batch norm, a weight and a bias each
    assert len(pairs) == len([*model.backbone.parameters()]) + 6
    for (key, _), value in zip(pairs, expected, strict=True):
        assert torch.equal(key, value)


def test_key_encoder_gets_no_gradient_and_query_side_does():
    model = _moco()
    model.train()
    images = torch.randn(4, 3, 8, 8)
    targets = torch.tensor([0, 1, 2, 1])
    step = model.contrast_step(images, images.flip(3), targets)
    loss = PaCoLoss(np.array([3, 2, 2, 1]), alpha=0.5, temperature=0.2)(
        step.logits, targets, step.contrast, step.contrast_targets)
    loss.backward()
    keys = [*model.key_backbone.parameters(), *model.key_projector.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in keys)
    assert not step.keys.requires_grad
    query = [*model.backbone.parameters(), *model.projector.parameters(),
             *model.classifier.parameters()]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in query)


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from longtail.data.streams import Batch

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    torch.manual_seed(0)  # same initial weights on both ranks (DDP broadcasts rank 0's anyway)
    method = METHODS.build(
        {"name": "paco", "alpha": 0.1, "temperature": 0.2},
        # Without Shuffle-BN each rank can recompute its keys alone (Shuffle-BN: test_distributed.py).
        model_spec={"name": "moco_resnet20", "dim": 4, "queue_size": 8, "momentum": 0.9, "shuffle_bn": False},
        num_classes=4, class_counts=np.array([4, 3, 2, 1]),
    )
    step_module = DistributedDataParallel(method, broadcast_buffers=False)
    torch.manual_seed(100 + rank)  # different images on each rank
    queries, keys = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    labels = torch.full((3,), rank)
    step_module({"main": Batch([queries, keys], labels)}).loss.backward()
    own_keys = method.model.encode_keys(keys)  # weights unchanged: no optimizer step was taken
    torch.save({"queue": method.model.queue, "targets": method.model.queue_targets,
                "pointer": method.model.queue_pointer, "own_keys": own_keys},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ddp_enqueues_the_keys_of_both_ranks(tmp_path):
    # fork: the workers skip re-importing torch and longtail (seconds each on a busy machine)
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for state in ranks:
        assert state["targets"][:6].tolist() == [0, 0, 0, 1, 1, 1]
        assert state["pointer"].item() == 6
        for r in range(2):
            own = ranks[r]["own_keys"]
            assert torch.allclose(state["queue"][3 * r : 3 * r + 3], own, atol=1e-5)
    assert torch.equal(ranks[0]["queue"], ranks[1]["queue"])


def test_paco_trains_end_to_end(configure, tmp_path):
    config = configure("model={name: moco_resnet20, dim: 8, queue_size: 20, momentum: 0.99}",
                       "method={name: paco, alpha: 0.05, temperature: 0.1, query_transform: autoaugment_cutout, "
                       "key_transform: simaugment}")
    run_dir = tmp_path / "paco"
    report = Trainer(config, run_dir, log=lambda _: None).fit()
    saved = json.loads((run_dir / "eval.json").read_text())
    assert saved["num_test"] == 24 and 0 <= saved["top1"] <= 100
    assert saved["top1"] == report["top1"]
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(math.isfinite(e["loss"]) for e in epochs)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")["method"]
    # 24 + 15 + 9 + 6 = 54 images, batch 8, drop_last: 6 steps an epoch, 8 keys each -> 96 keys
    # through 20 slots
    assert state["model.queue_pointer"].item() == (2 * 6 * 8) % 20


def test_imagenet_lt_config_builds_without_data():
    config = load_config(os.path.join(CONFIGS, "imagenet_lt", "paco_resnet50.yaml"))
    counts = np.linspace(1280, 5, 1000).astype(int)
    method = METHODS.build(plain(config.method), model_spec=plain(config.model), num_classes=1000,
                           class_counts=counts, epochs=config.train.epochs)
    assert method.model.queue.shape == (8192, 128)
    assert method.model.classifier.in_features == 2048
    assert method.loss.alpha == 0.05 and method.loss.temperature == 0.2
    query = {"name": "timm_randaugment", "policy": "rand-n2-m10-mstd0.5", "jitter": [0.4, 0.4, 0.4, 0.0],
             "min_scale": 0.08}
    key = {"name": "simaugment", "min_scale": 0.08, "jitter": [0.4, 0.4, 0.4, 0.0], "jitter_p": 1.0}
    assert [spec.views for spec in method.streams().values()] == [[query, key]]


@pytest.mark.parametrize("strategy, views", [
    ("paco_resnet50_strategy1", ["key", "key"]),
    ("paco_resnet50_strategy2", ["query", "query"]),
])
def test_table2_strategies_change_only_the_views(strategy, views):
    base = plain(load_config(os.path.join(CONFIGS, "imagenet_lt", "paco_resnet50.yaml")))
    config = plain(load_config(os.path.join(CONFIGS, "imagenet_lt", f"{strategy}.yaml")))
    method, base_method = config.pop("method"), base.pop("method")
    assert [method["query_transform"], method["key_transform"]] == [base_method[f"{v}_transform"] for v in views]
    assert config == base
