"""Run configuration: a typed schema, YAML files with ``_base_`` inheritance, and overrides.

OmegaConf merges the files and ``key=value`` overrides onto the schema below, so a misspelt
key or a value outside a fixed set of choices (the ``Literal`` types) fails at once. Component
specs (``data.source``, ``model``, ``method`` and the components inside it, and the ``optim``
section, which holds the named optimizer's own options) are free-form mappings checked against
their registries by :func:`longtail.engine.choices.check_choices` before any data is read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from omegaconf import Container, DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from .errors import ConfigError

BASE_KEY = "_base_"

Profile = Literal["exp", "step"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]  # fp16 on CUDA only; auto: see engine.resolve_precision
ScheduleName = Literal["multistep", "cosine"]
NoDecay = Literal["bn", "bias"]  # batch-norm parameters, biases
# longtail's defaults for an optimizer's options, where they differ from torch's
OPTIMIZER_DEFAULTS = {"sgd": {"momentum": 0.9, "nesterov": True, "weight_decay": 2e-4}}


def ratio_text(ratio: float | int) -> str:
    """An imbalance ratio as run names write it: ``100`` for 100.0, ``12.5`` for 12.5."""
    return f"{ratio:g}"


# `${ratio:${data.imbalance_ratio}}` in a config: e.g. a stage-2 config's stage-1 run, ce_ir100
OmegaConf.register_resolver("ratio", ratio_text, replace=True)


@dataclass
class DataConfig:
    source: Any = "digits"  # a dataset name, or {name: ..., options}
    root: str | None = None  # data root; else $LONGTAIL_DATA, else ./data
    imbalance_ratio: float | None = 100.0  # None keeps the training set as it is
    profile: Profile = "exp"
    subset_seed: int = 0  # which images the long-tailed subset keeps; 0 = the papers' subsets (not `seed`)
    many_threshold: int = 100  # many-shot: more than this many training images
    few_threshold: int = 20  # few-shot: fewer than this many
    test_transform: Any = "none"


@dataclass
class OptimConfig:
    """Any torch.optim optimizer by its lower-case name (:mod:`longtail.optimizers`); keys
    besides these are that optimizer's options, e.g. ``betas`` for adamw."""

    name: str = "sgd"
    lr: float = 0.1  # the base learning rate the schedule scales
    no_weight_decay_on: list[NoDecay] = field(default_factory=list)  # e.g. [bn, bias]; none by default


@dataclass
class ScheduleConfig:
    name: ScheduleName = "multistep"
    warmup_epochs: int = 5
    milestones: list[int] = field(default_factory=lambda: [120, 160])  # lower lr after m epochs
    gamma: float = 0.01
    min_factor: float = 0.0  # cosine: final lr / base lr
    warmup_start_factor: float = 0.0  # warm-up factor s + (1 - s) * (epoch + 1) / divisor
    warmup_divisor: int | None = None  # None: warmup_epochs


@dataclass
class TrainConfig:
    epochs: int = 200
    batch_size: int = 128  # in total, split over DDP ranks
    precision: Precision = "auto"  # bf16 where the device computes it natively, else fp32
    channels_last: bool = True
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # DataLoader settings for file-based data (decoding + per-image augmentation in workers)
    num_workers: int = 2  # worker processes per stream (benchmarks/README.md: cores a GPU needs)
    prefetch_factor: int = 2  # batches each worker prepares ahead
    persistent_workers: bool = True  # keep the workers from one epoch to the next
    pin_memory: bool | None = None  # page-locked batches for faster GPU copies; None: when on CUDA
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    eval_every: int = 10  # test-set monitoring every N epochs (0: final epoch only)
    checkpoint_every: int = 50  # keep checkpoints/epoch_N.pt every N epochs (0: none); last.pt is every epoch
    progress: bool = True
    log_classifier_grad_every: int = 0  # PaCo Fig. 2: per-class classifier gradient norms every N steps (0: off)


@dataclass
class Config:
    name: str = "run"
    seed: int = 0
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = field(default_factory=lambda: {"name": "resnet32"})
    method: Any = field(default_factory=lambda: {"name": "standard"})
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> DictConfig:
    if not path.exists():
        named_by = f" (named by {BASE_KEY} in {seen[-1]})" if seen else ""
        raise ConfigError(f"config file {path} does not exist{named_by}; check the path")
    if path in seen:
        raise ConfigError(f"config {path} inherits from itself via {BASE_KEY}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config {path} ({error}); give a YAML text file") from None
    try:
        document = yaml.compose(text)  # the structure only: no values are constructed
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: malformed YAML ("
                          f"{', '.join(filter(None, (error.context, error.problem)))}); fix the file "
                          "there: keys and values as `key: value`, nesting by indentation with "
                          "spaces") from None
    if document is not None and not isinstance(document, yaml.MappingNode):
        kind = "list" if isinstance(document, yaml.SequenceNode) else f"single value ({document.value!r})"
        raise ConfigError(f"{path}: the top level is a {kind}, not a mapping; a config maps keys "
                          "to values, e.g. `train: {epochs: 10}`")
    node = OmegaConf.create(text) if document is not None else OmegaConf.create()
    bases = node.pop(BASE_KEY, None) or []
    merged = OmegaConf.create()
    for base in [bases] if isinstance(bases, str) else bases:
        merged = OmegaConf.merge(merged, _read_yaml((path.parent / base).resolve(), (*seen, path)))
    return OmegaConf.merge(merged, node)


def _valid_keys(error: Exception) -> str:
    key = getattr(error, "full_key", "") or ""
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    schema = OmegaConf.structured(Config)
    node = OmegaConf.select(schema, parent) if parent else schema
    return ", ".join(node.keys()) if isinstance(node, DictConfig) else ""


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict | None = None) -> DictConfig:
    """Schema defaults <- ``base`` <- the YAML file (and its ``_base_`` files) <- overrides."""
    schema = OmegaConf.structured(Config)
    OmegaConf.set_struct(schema.optim, False)  # open to the named optimizer's options
    layers = [schema]
    if base is not None:
        layers.append(OmegaConf.create(base))
    if path is not None:
        layers.append(_read_yaml(Path(path).resolve()))
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got {', '.join(bad)}")
    for override in overrides:  # one at a time, to name the one that does not parse
        try:
            layers.append(OmegaConf.from_dotlist([override]))
        except yaml.YAMLError as error:
            raise ConfigError(f"override {override!r}: its value is not valid YAML "
                              f"({getattr(error, 'problem', None) or error}); quote it, e.g. "
                              "key='[1'") from None
    try:
        config = OmegaConf.merge(*layers)
    except (ConfigKeyError, ConfigAttributeError) as error:
        raise ConfigError(
            f"unknown config key {getattr(error, 'full_key', '') or error}; "
            f"valid keys here: {_valid_keys(error)}"
        ) from None
    except ValidationError as error:
        key = getattr(error, "full_key", None) or "the config"
        problem = str(error).splitlines()[0].removeprefix("Merge error: ")
        raise ConfigError(f"bad value for {key}: {problem}; fix it in the config file or the "
                          "override") from None
    for key, value in OPTIMIZER_DEFAULTS.get(config.optim.name, {}).items():
        config.optim.setdefault(key, value)
    return config


def plain(node: Any) -> Any:
    """A plain Python value (dicts, lists, scalars) from a config node."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, Container) else node


# Settings that change where and how a run is kept, never what it trains (the draws do not
# depend on the device's name, the threads or the DataLoader workers: see longtail.seeding).
RUNTIME_KEYS = ("name", "output_dir", "data.root", "train.device", "train.threads", "train.num_workers",
                "train.prefetch_factor", "train.persistent_workers", "train.pin_memory", "train.progress",
                "train.eval_every", "train.checkpoint_every", "train.log_classifier_grad_every")


def training_recipe(config: Any, ignore: tuple[str, ...] = ()) -> dict:
    """``config`` (a config node or its plain dict) as a plain dict without :data:`RUNTIME_KEYS`
    and the dotted keys ``ignore``: two runs train alike exactly when these are equal."""
    recipe = copy.deepcopy(plain(config))
    for dotted in (*RUNTIME_KEYS, *ignore):
        *parents, key = dotted.split(".")
        node = recipe
        for parent in parents:
            node = node.get(parent) or {}
        node.pop(key, None)
    return recipe
