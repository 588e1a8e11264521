"""Every registered component builds from its name alone and does its job on tiny inputs.

The few that cannot be built from a name alone (a deferred phase needs what it switches to, a
stage-2 model the run it starts from) get the options :data:`REQUIRED` lists, and the test
checks that list against the factories' signatures, so a new component is never skipped.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from longtail.checkpoints import save_checkpoint
from longtail.config import load_config
from longtail.data import SAMPLERS, TRANSFORMS
from longtail.data.streams import Batch
from longtail.engine.choices import check_spec
from longtail.losses import CLASS_WEIGHTS, LOSSES
from longtail.methods import METHODS
from longtail.methods.bbn import ADAPTORS
from longtail.models import HEADS, MODELS, create
from longtail.optimizers import OPTIMIZERS
from longtail.registry import Registry

COUNTS = np.array([8, 4, 2, 1])  # a long tail over 4 classes
TARGETS = np.repeat(np.arange(len(COUNTS)), COUNTS)
MOCO_TINY = {"name": "moco_resnet20", "dim": 8, "queue_size": 16}


def required_options(registry: Registry, name: str) -> set[str]:
    params = inspect.signature(registry.get(name)).parameters.values()
    return {p.name for p in params if p.default is p.empty and p.name not in registry.supplied
            and p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory):
    """A run directory whose last checkpoint holds an (untrained) ResNet-20 for COUNTS' classes."""
    run = tmp_path_factory.mktemp("stage1")
    model = create("resnet20", num_classes=len(COUNTS))
    config = load_config(base={"model": {"name": "resnet20"}})
    save_checkpoint({"epoch": 1, "config": OmegaConf.to_yaml(config),
                     "method": {f"model.{key}": value for key, value in model.state_dict().items()}},
                    run / "checkpoints" / "last.pt")
    return str(run)


def required(stage1_run: str) -> dict[tuple[str, str], dict]:
    return {
        ("sampler", "deferred"): {"after": "class_balanced", "switch_epoch": 2},
        ("class weights", "deferred"): {"after": "inverse_frequency", "switch_epoch": 1},
        ("model", "frozen_features"): {"run": stage1_run},
    }


def spec(registry: Registry, name: str, stage1_run: str) -> dict:
    return {"name": name, **required(stage1_run).get((registry.kind, name), {})}


@pytest.mark.parametrize("registry", [SAMPLERS, TRANSFORMS, LOSSES, CLASS_WEIGHTS, ADAPTORS, MODELS, HEADS,
                                      METHODS, OPTIMIZERS], ids=lambda r: r.kind)
def test_required_lists_exactly_the_options_a_name_alone_lacks(registry, stage1_run):
    given = {name: set(options) for (kind, name), options in required(stage1_run).items() if kind == registry.kind}
    assert {name: required_options(registry, name) for name in registry.names()
            if required_options(registry, name)} == given


def test_every_model_builds_and_gives_one_logit_per_class(stage1_run):
    for name in MODELS.names():
        stage2 = name == "frozen_features"  # loads the stage-1 run's weights: on the CPU
        options = spec(MODELS, name, stage1_run) | (MOCO_TINY | {"name": name} if name.startswith("moco_") else {})
        with torch.device("cpu" if stage2 else "meta"):  # meta: shapes only, no memory for ResNet-152
            model = MODELS.build(options, num_classes=len(COUNTS))
            logits = model(torch.zeros(2, 3, 32, 32))
        assert logits.shape == (2, len(COUNTS)), name


def test_every_head_sampler_loss_weighting_and_adaptor_builds_and_works(stage1_run):
    features = torch.randn(6, 16)
    for name in HEADS.names():  # lws scales a trained classifier's logits
        head = HEADS.build(name, in_features=16, num_classes=4, trained_head=torch.nn.Linear(16, 4))
        assert head(features).shape == (6, 4), name
    for name in SAMPLERS.names():
        sampler = SAMPLERS.build(spec(SAMPLERS, name, stage1_run), targets=TARGETS, seed=0, epochs=4)
        drawn = list(sampler)
        assert len(drawn) == len(sampler) == len(TARGETS) and set(drawn) <= set(range(len(TARGETS))), name
    logits, targets = torch.randn(6, 4), torch.tensor([0, 0, 1, 2, 3, 3])
    for name in LOSSES.names():
        loss = LOSSES.build(name, class_counts=COUNTS)(logits, targets)
        assert loss.shape == () and torch.isfinite(loss) and loss > 0, name
    for name in CLASS_WEIGHTS.names():
        weights = CLASS_WEIGHTS.build(spec(CLASS_WEIGHTS, name, stage1_run), class_counts=COUNTS)(0)
        assert weights.shape == (4,) and torch.isclose(weights.mean(), torch.tensor(1.0)), name
    for name in ADAPTORS.names():
        adaptor = ADAPTORS.build(name, epochs=10)
        adaptor.set_epoch(5)
        assert 0 <= adaptor() <= 1, name


def test_every_transform_has_a_per_image_form_and_its_batched_form_the_same_shape():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    batch = torch.randint(0, 256, (5, 8, 8, 3), dtype=torch.uint8)
    for name in TRANSFORMS.names():
        pipeline = TRANSFORMS.build(name, mean=(0.5,) * 3, std=(0.25,) * 3, image_size=8)
        assert pipeline.per_image(image).shape == (3, 8, 8), name
        if pipeline.batched is not None:
            assert pipeline.batched(batch, torch.Generator().manual_seed(0)).shape == (5, 3, 8, 8), name


def test_every_method_builds_from_its_default_spec_and_takes_a_step(stage1_run):
    models = {"bbn": {"name": "bbn_resnet20"}, "paco": MOCO_TINY, "supcon": MOCO_TINY, "multitask": MOCO_TINY}
    targets = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    for name in METHODS.names():
        method = METHODS.build(spec(METHODS, name, stage1_run), model_spec=models.get(name, {"name": "resnet20"}),
                               num_classes=len(COUNTS), class_counts=COUNTS, epochs=4)
        batches = {}
        for stream, stream_spec in method.streams().items():  # the defaults name registered components
            check_spec(SAMPLERS, stream_spec.sampler, f"{name} {stream} sampler")
            for view in stream_spec.views:
                check_spec(TRANSFORMS, view, f"{name} {stream} view")
            batches[stream] = Batch([torch.randn(8, 3, 8, 8) for _ in stream_spec.views], targets)
        loss = method(batches).loss
        assert loss.shape == () and torch.isfinite(loss), name


def test_every_optimizer_builds_and_steps():
    for name in OPTIMIZERS.names():
        model = create("resnet20", num_classes=4)
        optimizer = OPTIMIZERS.build(name, params=list(model.parameters()))
        before = model.head.weight.detach().clone()
        model(torch.randn(4, 3, 8, 8)).logsumexp(1).sum().backward()
        optimizer.step()
        assert not torch.equal(model.head.weight, before), name
