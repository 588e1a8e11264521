"""BBN: adaptors, the bilateral-branch model, the two-stream step."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import tiny_config
from longtail.config import load_config
from longtail.data.streams import Batch
from longtail.engine import Trainer, build_experiment
from longtail.methods import METHODS
from longtail.methods.bbn import ADAPTORS
from longtail.models import create


@pytest.mark.parametrize("name,epoch,epochs,alpha", [
    ("parabolic_decay", 1, 200, 1.0),
    ("parabolic_decay", 101, 200, 0.75),
    ("parabolic_decay", 200, 200, 1 - (199 / 200) ** 2),
    ("parabolic_decay", 180, 180, 1 - (179 / 200) ** 2),  # the authors' 180 -> 200 rounding
    ("parabolic_decay", 90, 90, 1 - (89 / 100) ** 2),
    ("linear_decay", 101, 200, 0.5),
    ("linear_decay", 1, 200, 1.0),
    ("cosine_decay", 101, 200, math.cos(math.pi / 4)),
    ("parabolic_increment", 101, 200, 0.25),
    ("parabolic_increment", 1, 200, 0.0),
    ("equal_weight", 57, 200, 0.5),
])
def test_adaptor_values(name, epoch, epochs, alpha):
    adaptor = ADAPTORS.build(name, epochs=epochs)
    adaptor.set_epoch(epoch - 1)  # 0-based
    assert adaptor() == pytest.approx(alpha)


def test_beta_adaptor_reports_its_mean():
    assert ADAPTORS.build({"name": "beta", "a": 0.2, "b": 0.6}, epochs=10).alpha(0.3) == pytest.approx(0.25)


def test_beta_adaptor_draws_beta_0_2():
    torch.manual_seed(0)
    adaptor = ADAPTORS.build("beta", epochs=200)
    draws = np.array([adaptor() for _ in range(4000)])
    # Beta(0.2, 0.2): mean 0.5, variance 0.04 / (0.16 * 1.4) = 0.1786, mass piled near 0 and 1
    assert abs(draws.mean() - 0.5) < 0.03
    assert abs(draws.var() - 0.1786) < 0.015
    assert ((draws < 0.1) | (draws > 0.9)).mean() > 0.5


def test_logits_at_half_are_classifier_on_concatenation():
    torch.manual_seed(0)
    model = create("bbn_resnet32", num_classes=5).eval()
    x = torch.randn(3, 3, 32, 32)
    f_c, f_r = model.branch_features(x, "conventional"), model.branch_features(x, "rebalancing")
    torch.testing.assert_close(model(x), model.classifier(torch.cat([f_c, f_r], 1)))
    torch.testing.assert_close(model(x, alpha=1.0), model.classifier(torch.cat([2 * f_c, 0 * f_r], 1)))


def test_branch_parameters():
    model = create("bbn_resnet32", num_classes=5)
    assert model.classifier.in_features == 128
    shared = {id(p) for p in model.trunk.parameters()}
    conventional = {id(p) for p in model.conventional.parameters()}
    rebalancing = {id(p) for p in model.rebalancing.parameters()}
    assert not (shared & conventional) and not (conventional & rebalancing)
    assert not torch.equal(model.conventional.conv1.weight, model.rebalancing.conv1.weight)


def _bbn_method():
    torch.manual_seed(0)
    return METHODS.build({"name": "bbn"}, model_spec={"name": "bbn_resnet20"}, num_classes=3,
                         class_counts=np.array([30, 10, 5]), epochs=10)


def _batches():
    g = torch.Generator().manual_seed(1)
    return {
        "conventional": Batch([torch.randn(4, 3, 16, 16, generator=g)], torch.tensor([0, 1, 2, 0])),
        "rebalancing": Batch([torch.randn(4, 3, 16, 16, generator=g)], torch.tensor([2, 2, 1, 2])),
    }


def _grads(method, alpha, detach=None):
    method.zero_grad()
    model, batches = method.model, _batches()
    f_c = model.branch_features(batches["conventional"].images, "conventional")
    f_r = model.branch_features(batches["rebalancing"].images, "rebalancing")
    f_c = f_c.detach() if detach == "conventional" else f_c
    f_r = f_r.detach() if detach == "rebalancing" else f_r
    logits = model.mix(f_c, f_r, alpha)
    loss = alpha * method.loss(logits, batches["conventional"].targets) + (1 - alpha) * method.loss(
        logits, batches["rebalancing"].targets)
    loss.backward()
    return {name: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
            for name, p in model.named_parameters()}


def test_each_block_gets_gradient_only_from_its_stream():
    method = _bbn_method()
    method.train()
    method.set_epoch(4)  # alpha = 1 - 0.4^2: both terms of the loss count
    inputs, outputs = {}, {}
    for name in ("trunk", "conventional", "rebalancing"):
        def hook(module, args, out, name=name):
            inputs.setdefault(name, []).append(args[0])
            outputs.setdefault(name, []).append(out)

        getattr(method.model, name).register_forward_hook(hook)
    batches = _batches()
    output = method(batches)
    # the trunk runs once per stream; each branch block runs once, on its own stream's maps
    assert [x is batches[s].images for x, s in zip(inputs["trunk"], batches)] == [True, True]
    assert len(inputs["conventional"]) == len(inputs["rebalancing"]) == 1
    assert inputs["conventional"][0] is outputs["trunk"][0]
    assert inputs["rebalancing"][0] is outputs["trunk"][1]
    output.loss.backward()
    for name, p in method.model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_shared_trunk_gradient_is_the_sum_of_both_streams():
    method = _bbn_method()
    method.eval()  # frozen batch-norm statistics: the three backward passes see the same graph
    total = _grads(method, 0.5)
    via_conventional = _grads(method, 0.5, detach="rebalancing")
    via_rebalancing = _grads(method, 0.5, detach="conventional")
    for name in total:
        if name.startswith("trunk."):
            torch.testing.assert_close(total[name], via_conventional[name] + via_rebalancing[name])
            assert via_conventional[name].abs().sum() > 0 and via_rebalancing[name].abs().sum() > 0
        if name.startswith("conventional."):
            assert via_rebalancing[name].abs().sum() == 0
        if name.startswith("rebalancing."):
            assert via_conventional[name].abs().sum() == 0


def test_alpha_one_trains_only_the_conventional_branch():
    method = _bbn_method()
    method.eval()
    grads = _grads(method, 1.0)
    assert all(g.abs().sum() == 0 for n, g in grads.items() if n.startswith("rebalancing."))
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith("conventional."))


def test_two_independent_streams(tiny_npz):
    config = load_config(base=tiny_config(tiny_npz, model={"name": "bbn_resnet20"},
                                          method={"name": "bbn"}, train={"batch_size": 16}))
    torch.manual_seed(0)
    experiment = build_experiment(config)
    streams = experiment.train_streams()
    assert list(streams) == ["conventional", "rebalancing"]
    counts = experiment.class_counts
    drawn = {name: [] for name in streams}
    for epoch in range(30):
        for name, stream in streams.items():
            stream.set_epoch(epoch)
            drawn[name].extend(np.concatenate([b.targets.numpy() for b in stream]))
    uniform = np.bincount(drawn["conventional"], minlength=4) / len(drawn["conventional"])
    reversed_ = np.bincount(drawn["rebalancing"], minlength=4) / len(drawn["rebalancing"])
    np.testing.assert_allclose(uniform, counts / counts.sum(), atol=0.02)
    expected = (counts.max() / counts) / (counts.max() / counts).sum()
    np.testing.assert_allclose(reversed_, expected, atol=0.03)
    first = [next(iter(s)).images for s in streams.values()]
    assert not torch.equal(first[0], first[1])


def test_bbn_run_logs_alpha_and_scores_branches(tiny_npz, tmp_path):
    config = load_config(base=tiny_config(tiny_npz, model={"name": "bbn_resnet20"}, method={"name": "bbn"}))
    trainer = Trainer(config, tmp_path / "bbn")
    trainer.fit()
    lines = [json.loads(line) for line in (tmp_path / "bbn" / "metrics.jsonl").read_text().splitlines()]
    assert [line["alpha"] for line in lines] == pytest.approx([1 - (t / 4) ** 2 for t in range(4)])
    x = torch.randn(2, 3, 8, 8)
    method = trainer.method.eval()
    torch.testing.assert_close(method.predict(x, branch="conventional"), method.model(x, 1.0))
    torch.testing.assert_close(method.predict(x), method.model(x, 0.5))
    with pytest.raises(ValueError, match="branch"):
        method.predict(x, branch="left")
