"""Every mistake a user can make ends in one clear message, exit status 2 and no traceback,
found before training starts; a bug inside longtail keeps its traceback.

Each case runs the command line in-process and checks the message for what is wrong, where,
and the fix.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from conftest import tiny_config, write_tiny_npz
from longtail.checkpoints import load_weights
from longtail.cli import main
from longtail.config import Config, load_config
from longtail.data import SOURCES, TRANSFORMS, ImageSet
from longtail.engine import Trainer
from longtail.errors import CheckpointError, DataError
from longtail.losses import LOSSES
from longtail.methods import METHODS
from longtail.models import MODELS
from longtail.registry import Registry

SRC = Path(__file__).resolve().parents[1] / "src" / "longtail"


def user_error(capsys, *argv) -> str:
    """``longtail ARGV`` run in-process: exit status 2, one error message, no traceback."""
    status = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    assert err.startswith("longtail: error: ") and err.count("longtail: error:") == 1, err
    return err


def train_error(capsys, tmp_path: Path, data: dict, *overrides: str) -> str:
    """The error of ``longtail train`` on the tiny recipe with ``data`` merged into its data
    section; the mistake must be found before the run directory is written."""
    config = tmp_path / "recipe.yaml"
    recipe = tiny_config("unused.npz", data=data, train={"epochs": 1, "threads": 1, "num_workers": 0})
    config.write_text(yaml.safe_dump(recipe))
    err = user_error(capsys, "train", config, f"output_dir={tmp_path / 'runs'}", *overrides)
    assert not (tmp_path / "runs").exists(), "a run record was written before the mistake was found"
    return err


# --- config files and overrides ----------------------------------------------------------------


@pytest.mark.parametrize("text, where, fixes", [
    ("train:\n  epochs: 2\n bad: 1\n", ":3:2: malformed YAML", ["indentation"]),
    ("train: {epochs: [1, 2}\n", ":1:22: malformed YAML", ["fix the file there"]),  # the 22nd is }
    ("- train\n- data\n", ": the top level is a list, not a mapping", ["`train: {epochs: 10}`"]),
    ("just words\n", ": the top level is a single value ('just words'), not a mapping", ["maps keys"]),
])
def test_config_file_mistakes_name_file_line_and_column(tmp_path, capsys, text, where, fixes):
    config = tmp_path / "recipe.yaml"
    config.write_text(text)
    err = user_error(capsys, "train", config)
    assert f"{config}{where}" in err
    assert all(fix in err for fix in fixes)


@pytest.mark.parametrize("override, fix", [
    ("train.epochs=[1", "quote it"),
    ("train.epochs=abc", "bad value for train.epochs"),
    ("train.device=gpu", "choose auto, cpu, cuda or cuda:N"),
    ("model=5", "model: {name: resnet32}"),
    ("model=resnet32", "model: {name: resnet32}"),
    ("model.name=resnet33", "choose one of:"),
])
def test_override_mistakes(tmp_path, capsys, override, fix):
    assert fix in train_error(capsys, tmp_path, {"source": "digits"}, override)


def test_cuda_device_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = train_error(capsys, tmp_path, {"source": "digits"}, "train.device=cuda")
    assert "use train.device=cpu or auto" in err


@pytest.mark.parametrize("source", ["npz", {"name": "npz"}])
def test_npz_source_without_a_path(tmp_path, capsys, source):
    err = train_error(capsys, tmp_path, {"source": source})
    assert "dataset 'npz' needs 'path'" in err and "{name: npz, path: ...}" in err


TOP_LEVEL = [f.name for f in dataclasses.fields(Config)]
CONFIG_KEY = re.compile(rf"(?<![\w./-])(?:{'|'.join(TOP_LEVEL)})(?:\.\w+)+")
FILE_SUFFIXES = {"log", "json", "jsonl", "yaml", "txt", "pt", "npz", "png", "md", "lock", "safetensors", "tmp"}
# Free-form config sections and the registry that checks them.
COMPONENTS: dict[str, Registry] = {"data.source": SOURCES, "data.test_transform": TRANSFORMS,
                                   "model": MODELS, "method": METHODS}
NESTED = [SOURCES, TRANSFORMS, MODELS, METHODS, LOSSES]  # components inside components


def _options(registry: Registry) -> set[str]:
    return {"name"} | {p for name in registry.names() for p in inspect.signature(registry.get(name)).parameters}


def is_config_key(key: str) -> bool:
    """Whether a dotted key exists: in the schema, or as an option of a registered component."""
    schema, parts = Config, key.split(".")
    for depth, part in enumerate(parts):
        path = ".".join(parts[:depth])
        if path in COMPONENTS:
            valid = part in _options(COMPONENTS[path])
            deeper = parts[depth + 1:]
            return valid and all(p in set().union(*map(_options, NESTED)) for p in deeper)
        if not dataclasses.is_dataclass(schema):
            return False
        hints = typing.get_type_hints(schema)
        if part not in hints:
            return False
        schema = hints[part]
    return True


def message_strings() -> list[tuple[str, str]]:
    """(text, where) of every string literal in src/ but docstrings and state-dict prefixes."""
    found = []
    for file in sorted(SRC.rglob("*.py")):
        tree = ast.parse(file.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and not re.fullmatch(r"\w+(\.\w+)*\.", node.value)):  # e.g. "model.backbone."
                found.append((node.value, f"{file.relative_to(SRC)}:{node.lineno}"))
    return found


def quoted_keys() -> dict[str, str]:
    """Every dotted config key the messages of src/ name (file names aside): key -> where."""
    return {key: where for text, where in message_strings() for key in CONFIG_KEY.findall(text)
            if key.rsplit(".", 1)[-1] not in FILE_SUFFIXES}


def test_every_config_key_an_error_message_names_exists():
    for wrong in ("data.download", "data.path", "train.epoch", "model.depth", "method.loss.scal"):
        assert not is_config_key(wrong), wrong
    for right in ("data.source.download", "data.source.path", "train.epochs", "method.loss.name",
                  "model.run", "model.features"):
        assert is_config_key(right), right
    keys = quoted_keys()
    assert {"data.source.download", "data.source.path", "train.batch_size", "data.root"} <= set(keys)
    assert {key: where for key, where in keys.items() if not is_config_key(key)} == {}


REPOSITORY_FILE = re.compile(r"(?<![\w/.{}-])(?:[\w.-]+/)+[\w.-]+\.(?:py|yaml|md)\b")


def test_every_repository_file_a_message_names_exists():
    assert REPOSITORY_FILE.findall("run: python shared/data/unpack_cifar.py {base}") == [
        "shared/data/unpack_cifar.py"]
    assert REPOSITORY_FILE.findall("{run_dir}/config.yaml") == []  # a run's file, not the repository's
    named = {file: where for text, where in message_strings() for file in REPOSITORY_FILE.findall(text)}
    assert {file: where for file, where in named.items() if not (SRC.parents[1] / file).exists()} == {}


# --- data ----------------------------------------------------------------------------------------


def tiny_arrays(**changes) -> dict[str, np.ndarray]:
    """4 classes of 8x8 RGB noise: 4 training and 2 test images each; ``None`` drops an array."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8),
              "y_train": np.repeat(np.arange(4), 4),
              "x_test": rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8),
              "y_test": np.repeat(np.arange(4), 2)}
    arrays.update(changes)
    return {key: value for key, value in arrays.items() if value is not None}


def npz_source(path: Path, **changes) -> dict:
    np.savez(path, **tiny_arrays(**changes))
    return {"source": {"name": "npz", "path": str(path)}}


@pytest.mark.parametrize("changes, expected", [
    # labels beyond the class names, and class names beyond the labels
    ({"classes": np.array(["a", "b"])}, ["train: 8 labels outside 0..1 (e.g. 2)", "fix the labels or the class list"]),
    ({"classes": np.array(list("abcdef"))},
     ["2 of the 6 classes have no training image ('e', 'f')", "remove those names or add their images"]),
    ({"y_train": np.repeat(np.array(list("abcd")), 4)},
     ["y_train holds strings (e.g. 'a')", "numpy.unique(names, return_inverse=True)"]),
    ({"y_train": np.repeat(np.arange(4), 4) + 0.5},
     ["y_train holds labels that are not whole numbers (e.g. 0.5 at index 0)", "store them as integers"]),
    ({"classes": np.array(["a", 1, None, 2.0], dtype=object)}, ["cannot load classes", "never unpickles"]),
    ({"x_test": np.zeros((0, 8, 8, 3), np.uint8), "y_test": np.zeros(0, np.int64)},
     ["the test split holds no images"]),
    ({"y_test": None}, ["lacks y_test (it holds x_train, y_train, x_test)", "x_train, y_train, x_test, y_test"]),
    # the test split is checked as strictly as the training split
    ({"x_test": np.zeros((8, 3, 8, 8), np.uint8)}, ["x_test must be (N, H, W, 3) RGB", "channels first?"]),
    ({"x_test": np.zeros((8, 8, 8, 3), np.float32)}, ["x_test must hold uint8 pixels", "astype(numpy.uint8)"]),
    ({"y_test": np.array([0, 0, 1, 1, 2, 2, 3, 7])}, ["test: 1 labels outside 0..3 (e.g. 7)"]),
    ({"x_test": np.zeros((8, 6, 6, 3), np.uint8)},
     ["the test images are 6x6x3 but the training images 8x8x3", "resize the test images to 8x8x3"]),
    ({"y_test": np.repeat(np.arange(4), 2)[:7]}, ["x_test holds 8 images but y_test 7 labels", "one label per image"]),
])
def test_bad_npz_data(tmp_path, capsys, changes, expected):
    file = tmp_path / "bad.npz"
    err = train_error(capsys, tmp_path, npz_source(file, **changes))
    assert str(file) in err
    for text in expected:
        assert text in err


def test_whole_number_float_and_column_labels_are_class_indices(tmp_path):
    labels = np.repeat(np.arange(4), 4)
    data = npz_source(tmp_path / "ok.npz", y_train=labels.astype(np.float32), y_test=labels[::2, None])
    source = SOURCES.build(data["source"])
    assert source.train.targets.tolist() == labels.tolist()
    assert source.test.targets.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("content", [b"x_train,y_train\n1,2\n", "npy"])
def test_npz_that_is_not_an_npz_archive(tmp_path, capsys, content):
    file = tmp_path / "data.npz"
    if content == "npy":
        np.save(open(file, "wb"), np.zeros((4, 8, 8, 3), np.uint8))  # one array, not an archive
    else:
        file.write_bytes(content)
    err = train_error(capsys, tmp_path, {"source": {"name": "npz", "path": str(file)}})
    assert f"{file} is not an .npz archive" in err and "numpy.savez" in err


def test_missing_npz_names_the_right_key(tmp_path, capsys):
    err = train_error(capsys, tmp_path, {"source": {"name": "npz", "path": str(tmp_path / "nope.npz")}})
    assert str(tmp_path / "nope.npz") in err and "data.source.path" in err


@pytest.mark.parametrize("name, folder, other", [("cifar10", "cifar-10-batches-py", "cifar-100"),
                                                  ("cifar100", "cifar-100-python", "cifar-10-")])
def test_missing_cifar_gets_its_own_instructions(tmp_path, capsys, name, folder, other):
    err = user_error(capsys, "datasets", name, "--data-root", tmp_path)
    assert str(tmp_path / f"{name}.npz") in err and str(tmp_path / folder) in err
    assert "data.source.download=true" in err and "LONGTAIL_DATA" in err
    assert other not in err and "shared/" not in err


@pytest.mark.parametrize("shape", [(16, 8, 8), (16, 8, 8, 1)])
def test_grayscale_arrays_train(tmp_path, capsys, shape):
    gray = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    data = npz_source(tmp_path / "gray.npz", x_train=gray, x_test=gray[:8])
    source = SOURCES.build(data["source"])
    assert source.train.images.shape == (16, 8, 8, 3)
    assert all((source.train.images[..., c] == gray.reshape(16, 8, 8)).all() for c in range(3))
    config = tmp_path / "gray.yaml"
    config.write_text(yaml.safe_dump(tiny_config("unused", data=data, train={
        "epochs": 1, "threads": 1, "batch_size": 4})))
    assert main(["train", str(config), f"output_dir={tmp_path / 'runs'}"]) == 0
    assert (tmp_path / "runs" / "tiny" / "eval.json").exists()


def image_folder(root: Path, per_class: int = 4) -> Path:
    """train/ and val/ with two classes of images of mixed sizes, grayscale and RGB, JPEG and PNG."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 2)):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                size = (int(rng.integers(10, 40)), int(rng.integers(10, 40)))
                mode, suffix = ("L", "png") if i % 2 else ("RGB", "jpg")
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).convert(mode).save(root / split / label / f"{i}.{suffix}")
    return root


def folder_recipe(tmp_path: Path, root: Path) -> Path:
    config = tmp_path / "folder.yaml"
    data = {"source": {"name": "imagefolder", "path": str(root), "image_size": 16},
            "imbalance_ratio": None}
    config.write_text(yaml.safe_dump(tiny_config("unused", data=data, train={
        "epochs": 1, "threads": 1, "num_workers": 0, "batch_size": 4})))
    return config


def test_mixed_size_and_grayscale_image_files_train(tmp_path):
    config = folder_recipe(tmp_path, image_folder(tmp_path / "images"))
    assert main(["train", str(config), f"output_dir={tmp_path / 'runs'}"]) == 0
    assert json.loads((tmp_path / "runs" / "tiny" / "eval.json").read_text())["per_class"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_truncated_jpeg_is_found_before_the_first_step(tmp_path, capsys, split):
    root = image_folder(tmp_path / "images")
    broken = root / split / "dog" / "0.jpg"
    broken.write_bytes(broken.read_bytes()[:-100])  # an interrupted copy
    err = user_error(capsys, "train", folder_recipe(tmp_path, root), f"output_dir={tmp_path / 'runs'}")
    assert not (tmp_path / "runs").exists()
    assert f"1 of the {8 if split == 'train' else 4}" in err and str(broken) in err
    assert "Replace them with readable copies, or delete them" in err


def test_the_image_check_decodes_files_whose_end_marker_is_missing(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "whole.jpg")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "trailer.jpg").write_bytes(whole + b"camera data after the end marker")
    (tmp_path / "cut.jpg").write_bytes(whole[:-2])  # only the end marker is missing
    readable = ImageSet([0, 0], paths=[str(tmp_path / "whole.jpg"), str(tmp_path / "trailer.jpg")])
    readable.check_readable("training", threads=2)
    with pytest.raises(DataError, match=r"1 of the 1 test images cannot be read: .*cut\.jpg"):
        ImageSet([0], paths=[str(tmp_path / "cut.jpg")]).check_readable("test")


def test_image_folder_without_images(tmp_path, capsys):
    root = image_folder(tmp_path / "images")
    for image in (root / "val" / "dog").iterdir():
        image.unlink()
    err = user_error(capsys, "train", folder_recipe(tmp_path, root), f"output_dir={tmp_path / 'runs'}")
    assert f"{root / 'val'}: Found no valid file for the classes dog" in err
    assert f"Expected {root}/train/<class>/<image>" in err


# --- checkpoints and reports -------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A one-epoch ResNet-20 run on tiny data."""
    root = tmp_path_factory.mktemp("run")
    config = load_config(base=tiny_config(write_tiny_npz(root / "tiny.npz"), train={"epochs": 1, "threads": 1}))
    Trainer(config, root / "run", log=lambda _: None).fit()
    return root / "run"


def test_resume_with_another_model_summarises_the_mismatch(finished_run, capsys):
    err = user_error(capsys, "train", finished_run, "--resume", "model.name=resnet32")
    assert "(model resnet20, method standard)" in err and "(model resnet32, method standard)" in err
    assert "missing from the checkpoint (" in err and ", ...)" in err  # the first three, not all
    assert "drop the overrides that change its model or method" in err
    assert len(err.replace(str(finished_run), "RUN")) < 800  # torch lists all 113 differences


def test_eval_of_a_checkpoint_from_another_version(finished_run, tmp_path, capsys):
    state = torch.load(finished_run / "checkpoints" / "last.pt", weights_only=True)
    weights = state["method"]
    dropped = list(weights)[:4]
    for key in dropped:
        weights[f"renamed.{key}"] = weights.pop(key)
    torch.save(state, tmp_path / "old.pt")
    err = user_error(capsys, "eval", tmp_path / "old.pt")
    assert f"4 missing from the checkpoint ({', '.join(dropped[:3])}, ...)" in err
    assert f"4 unexpected (renamed.{dropped[0]}, " in err
    assert "commit.txt" in err


def test_weight_summary_counts_names_and_shapes():
    with pytest.raises(CheckpointError) as caught:
        load_weights(nn.Linear(2, 3), {"weight": torch.zeros(4, 2), "bias": torch.zeros(4), "scale": torch.ones(1)},
                     "a.pt (model x)", "model y", "Fix it.")
    assert str(caught.value) == (
        "the weights in a.pt (model x) do not fit model y: 2 weights expected, 1 unexpected (scale); "
        "2 of another shape (saved vs built) (weight (4, 2) vs (3, 2), bias (4,) vs (3,)). Fix it.")


def test_unreadable_checkpoint(tmp_path, capsys):
    (tmp_path / "half.pt").write_bytes(b"half a checkpoint")
    err = user_error(capsys, "eval", tmp_path / "half.pt")
    assert "not a readable longtail checkpoint" in err and "epoch_NNNN.pt" in err


@pytest.mark.parametrize("text, problem", [("{\"top1\": 12.5,", "is not a JSON report"),
                                           ("[1, 2]", "is not an eval report")])
def test_plot_of_a_malformed_report_names_the_file(tmp_path, capsys, text, problem):
    report = tmp_path / "run" / "eval.json"
    report.parent.mkdir()
    report.write_text(text)
    err = user_error(capsys, "plot", report.parent, "--output", tmp_path / "out.png")
    assert f"{report} {problem}" in err and "run `longtail eval`" in err


@pytest.mark.parametrize("output, problem", [("figure.jpg2", "end the name with one of"),
                                             ("missing/figure.png", "create it first")])
def test_plot_to_an_impossible_output(tmp_path, capsys, output, problem):
    report = {"top1": 50.0, "many": 50.0, "medium": None, "few": None, "per_class": [50.0, 50.0],
              "train_counts": [100, 100], "many_threshold": 20, "few_threshold": 5}
    (tmp_path / "eval.json").write_text(json.dumps(report))
    assert problem in user_error(capsys, "plot", tmp_path, "--output", tmp_path / output)


# --- bugs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bug", [ValueError, OSError, FileNotFoundError, KeyError])
def test_an_internal_bug_keeps_its_traceback(monkeypatch, capsys, bug):
    def broken(*args, **kwargs):
        raise bug("a bug inside longtail")

    monkeypatch.setattr(SOURCES, "build", broken)
    with pytest.raises(bug, match="a bug inside longtail"):
        main(["datasets", "digits"])
    assert "longtail: error" not in capsys.readouterr().err
