"""The large benchmarks as users download them: miniatures in the real on-disk formats (JPEG
trees, split lists, iNaturalist's COCO-style JSON) go through `longtail datasets`, two training
steps of the real configs and `longtail eval`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from longtail.cli import main
from longtail.data import SOURCES
from longtail.data.benchmark_sets import BENCHMARKS, Benchmark, Published, read_annotations
from longtail.data.streams import LoaderSettings, make_stream
from longtail.data.transforms import TRANSFORMS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAIN_COUNTS = [7, 5, 3, 2, 2, 1]  # 20 images: two batches of 8
BATCH = 8


def _jpeg(label: int) -> bytes:
    """A small JPEG whose colour depends on the label."""
    rng = np.random.default_rng(label)
    pixels = (rng.integers(0, 256, 3) + rng.integers(-20, 20, (20, 24, 3))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _labels(name: str) -> list[int]:
    """Six labels spread over the benchmark's whole label range."""
    classes = BENCHMARKS[name].published.classes
    return [0, 1, classes // 3, classes // 2, classes - 2, classes - 1]


def _write(root: Path, relative: str, label: int) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpeg(label))
    return relative


def _write_lists(lists: Path, files: dict[str, str], splits: dict[str, list[tuple[str, int]]]) -> None:
    lists.mkdir(parents=True, exist_ok=True)
    for split, entries in splits.items():
        (lists / files[split]).write_text("".join(f"{path} {label}\n" for path, label in entries))


def write_imagenet_lt(lists: Path, images: Path) -> None:
    """ImageNet's train/ and val/ folders (WordNet ids) and the three ImageNet_LT_*.txt lists."""
    wnid = {label: f"n{label:08d}" for label in _labels("imagenet_lt")}
    train = [(_write(images, f"train/{wnid[c]}/{wnid[c]}_{k}.JPEG", c), c)
             for c, n in zip(wnid, TRAIN_COUNTS) for k in range(n)]
    val = [(_write(images, f"train/{wnid[c]}/{wnid[c]}_{100 + k}.JPEG", c), c) for c in wnid for k in range(1)]
    test = [(_write(images, f"val/{wnid[c]}/ILSVRC2012_val_{i:08d}.JPEG", c), c) for i, c in enumerate(wnid)]
    _write_lists(lists, BENCHMARKS["imagenet_lt"].lists, {"train": train, "val": val, "test": test})


def write_places_lt(lists: Path, images: Path) -> None:
    """Places365's data_256/<letter>/<scene>/ training tree, its flat val_256/ and the lists."""
    scene = {label: f"scene{label}" for label in _labels("places_lt")}
    train = [(_write(images, f"data_256/s/{scene[c]}/{k:08d}.jpg", c), c)
             for c, n in zip(scene, TRAIN_COUNTS) for k in range(n)]
    val = [(_write(images, f"data_256/s/{scene[c]}/{100:08d}.jpg", c), c) for c in scene]
    test = [(_write(images, f"val_256/Places365_val_{i:08d}.jpg", c), c) for i, c in enumerate(scene)]
    _write_lists(lists, BENCHMARKS["places_lt"].lists, {"train": train, "val": val, "test": test})


def write_inat2017_lists(lists: Path, images: Path) -> None:
    """iNaturalist 2017's train_val_images/<kingdom>/<species>/ tree (species names hold
    spaces) and text lists."""
    species = {label: f"Plantae/Species number {label}" for label in _labels("inat2017")}
    train = [(_write(images, f"train_val_images/{species[c]}/t{k}.jpg", c), c)
             for c, n in zip(species, TRAIN_COUNTS) for k in range(n)]
    val = [(_write(images, f"train_val_images/{species[c]}/v0.jpg", c), c) for c in species]
    _write_lists(lists, BENCHMARKS["inat2017"].lists, {"train": train, "val": val})


def write_inat2018_json(lists: Path, images: Path) -> None:
    """iNaturalist 2018's train_val2018/<kingdom>/<id>/ tree and the official train2018.json /
    val2018.json (images, annotations, categories: all 8,142 of them)."""
    labels = _labels("inat2018")
    categories = [{"id": c, "name": f"species {c}", "supercategory": "Plantae", "kingdom": "Plantae"}
                  for c in range(BENCHMARKS["inat2018"].published.classes)]
    per_split = {"train": TRAIN_COUNTS, "val": [1] * len(labels)}
    lists.mkdir(parents=True, exist_ok=True)
    for split, counts in per_split.items():
        pictures, annotations = [], []
        for c, n in zip(labels, counts):
            for k in range(n):
                index = len(pictures)
                name = _write(images, f"train_val2018/Plantae/{c}/{split}{k:02d}{c:05d}.jpg", c)
                pictures.append({"id": index, "file_name": name, "width": 24, "height": 20})
                annotations.append({"id": index, "image_id": index, "category_id": c})
        document = {"images": pictures, "annotations": annotations, "categories": categories,
                    "info": {"year": 2018}, "licenses": []}
        (lists / BENCHMARKS["inat2018"].annotations[split]).write_text(json.dumps(document))


# name -> (writer, the real config, how many test images the miniature has, model override)
MINIATURES = {
    "imagenet_lt": (write_imagenet_lt, "imagenet_lt/paco_resnet50.yaml", 6, "moco_resnet18"),
    "places_lt": (write_places_lt, "places_lt/paco_resnet152.yaml", 6, "moco_resnet18"),
    "inat2017": (write_inat2017_lists, "inat2017/bbn_resnet50.yaml", 6, "bbn_resnet18"),
    "inat2018": (write_inat2018_json, "inat2018/paco_resnet50.yaml", 6, "moco_resnet18"),
}


@pytest.fixture
def miniature(tmp_path):
    """``miniature(name)``: (list root, image root) of a miniature of that benchmark, written
    in its real layout; the split files and the images live in different folders."""
    def write(name: str) -> tuple[Path, Path]:
        lists, images = tmp_path / "splits" / name, tmp_path / "images" / name
        MINIATURES[name][0](lists, images)
        return lists, images

    return write


@pytest.mark.parametrize("name", list(MINIATURES))
def test_miniature_goes_through_datasets_train_and_eval(name, miniature, tmp_path, capsys):
    lists, images = miniature(name)
    _, config, test_images, model = MINIATURES[name]
    published = BENCHMARKS[name].published

    assert main(["datasets", name, "--data-root", str(lists), "--image-root", str(images)]) == 0
    out, err = capsys.readouterr()
    total = out.strip().splitlines()[-1]
    assert total.startswith(f"total 20 training images in {published.classes} classes (many 0, medium 0, "
                            f"few {published.classes})")
    assert f"{test_images} {BENCHMARKS[name].test_split} images; 7 to 0 a class" in total
    assert f"{name}: 20 training images, the published split has {published.train:,}" in err
    assert f"6 classes with training images, the published split has {published.classes:,}" in err
    assert "is the download complete" in err and "missing" not in err

    runs = tmp_path / "runs"
    overrides = [
        f"output_dir={runs}", f"data.source.image_root={images}", "data.source.image_size=32",
        "data.test_transform.resize=36", f"model.name={model}", "train.epochs=1",
        f"train.batch_size={BATCH}", "train.threads=1", "train.num_workers=0", "train.precision=fp32",
        "train.channels_last=false", "train.device=cpu", "train.progress=false",
        "data.source.allow_missing_classes=true",  # the miniature has 6 of the classes
    ]
    if model.startswith("moco_"):
        overrides.append("model.queue_size=64")
    if name == "places_lt":  # keep its frozen trunk, but not its download of ImageNet weights
        overrides.append("model.backbone_options.weights=null")
    assert main(["train", str(CONFIGS / config), "--data-root", str(lists), *overrides]) == 0
    run = runs / Path(config).with_suffix("")
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 1 and np.isfinite(epochs[0]["loss"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_images"] == 20  # 2 steps of 8

    (run / "eval.json").unlink()
    assert main(["eval", str(run)]) == 0
    report = json.loads((run / "eval.json").read_text())
    assert report["num_test"] == test_images and len(report["per_class"]) == published.classes
    dense = published.classes <= 1000
    assert ("confusion" in report) == dense and ("confusion_pairs" in report) != dense


def test_training_on_a_partial_split_is_refused_with_the_fix(miniature, tmp_path, capsys):
    lists, images = miniature("places_lt")
    config = CONFIGS / "places_lt" / "paco_resnet152.yaml"
    assert main(["train", str(config), "--data-root", str(lists), f"data.source.image_root={images}",
                 f"output_dir={tmp_path / 'runs'}", "model.backbone_options.weights=null"]) == 2
    error = capsys.readouterr().err
    assert "places_lt: 359 of the 365 classes have no training image in " in error
    assert "longtail datasets places_lt" in error and "data.source.allow_missing_classes=true" in error


def test_a_missing_image_is_reported(miniature, capsys):
    lists, images = miniature("imagenet_lt")
    next((images / "train").rglob("*.JPEG")).unlink()
    assert main(["datasets", "imagenet_lt", "--data-root", str(lists), "--image-root", str(images)]) == 0
    assert "1 of the 20 training images listed are missing, e.g. " in capsys.readouterr().err


def test_a_complete_download_matches(miniature, monkeypatch, capsys):
    # Published totals that this miniature has, with labels 0..5: nothing to warn about.
    monkeypatch.setitem(BENCHMARKS, "imagenet_lt", Benchmark(
        BENCHMARKS["imagenet_lt"].lists, "test", Published(6, 20, {"val": 6, "test": 6}, largest=7, smallest=1)))
    lists, images = miniature("imagenet_lt")
    assert main(["datasets", "imagenet_lt", "--data-root", str(lists), "--image-root", str(images)]) == 0
    out, err = capsys.readouterr()
    matches = "imagenet_lt matches its published totals, and every listed image file exists"
    assert out.strip().splitlines()[-1] == matches
    assert err == ""


def _source(name: str, lists: Path, images: Path, **options):
    """A miniature as a source: it holds 6 of the benchmark's classes."""
    spec = {"name": name, "image_root": str(images), "allow_missing_classes": True, **options}
    return SOURCES.build(spec, root=str(lists))


def test_split_files_read_as_distributed(miniature):
    lists, images = miniature("imagenet_lt")
    source = _source("imagenet_lt", lists, images)
    labels = _labels("imagenet_lt")
    assert np.bincount(source.train.targets, minlength=1000)[labels].tolist() == TRAIN_COUNTS
    assert source.classes[labels[2]] == f"n{labels[2]:08d}"  # the WordNet id of its folder
    assert source.train.paths[0] == str(images / "train/n00000000/n00000000_0.JPEG")
    assert source.info["test_split"] == "test" and len(source.test) == 6
    val = _source("imagenet_lt", lists, images, test_split="val")
    assert val.info["test_split"] == "val" and all("/train/" in p for p in val.test.paths)
    assert source.train.load(0).shape == (3, 20, 24) and source.train.load(0).dtype == torch.uint8


def test_inat_lists_and_json_give_the_same_dataset(tmp_path):
    lists, images = tmp_path / "lists", tmp_path / "images"
    write_inat2018_json(lists, images)
    from_json = _source("inat2018", lists, images)
    entries = {split: [(Path(p).relative_to(images).as_posix(), int(t)) for p, t in zip(s.paths, s.targets)]
               for split, s in (("train", from_json.train), ("val", from_json.test))}
    text = tmp_path / "text"
    _write_lists(text, BENCHMARKS["inat2018"].lists, entries)
    from_lists = _source("inat2018", text, images)
    assert from_lists.train.paths == from_json.train.paths
    assert from_lists.train.targets.tolist() == from_json.train.targets.tolist()
    assert from_json.classes[5] == "species 5" and from_lists.classes[5] == "5"


def test_coco_category_ids_become_labels_in_sorted_order(tmp_path):
    document = {"images": [{"id": 7, "file_name": "a.jpg"}, {"id": 8, "file_name": "b.jpg"}],
                "annotations": [{"id": 1, "image_id": 8, "category_id": 40},
                                {"id": 2, "image_id": 7, "category_id": 12}],
                "categories": [{"id": 40, "name": "forty"}, {"id": 12, "name": "twelve"}]}
    (tmp_path / "x.json").write_text(json.dumps(document))
    images, ids, names = read_annotations(tmp_path / "x.json", tmp_path)
    assert ids == [12, 40] and names == {0: "twelve", 1: "forty"}
    assert images.paths == [str(tmp_path / "b.jpg"), str(tmp_path / "a.jpg")] and images.targets.tolist() == [1, 0]


def test_missing_split_files_name_both_formats(tmp_path, capsys):
    assert main(["datasets", "inat2018", "--data-root", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "iNaturalist18_train.txt" in error and "train2018.json" in error and str(tmp_path) in error


def _views(source, num_workers: int, persistent: bool, epoch: int) -> list[torch.Tensor]:
    pipeline = TRANSFORMS.build("simaugment", mean=source.mean, std=source.std, image_size=16)
    stream = make_stream(source.train, None, 4, [pipeline, pipeline], drop_last=False, seed=3,
                         loader=LoaderSettings(num_workers, 2, persistent))
    stream.set_epoch(epoch)
    return [view for batch in stream for view in batch.views]


def test_augmentation_does_not_depend_on_workers_or_history(miniature):
    lists, images = miniature("places_lt")
    source = _source("places_lt", lists, images)
    reference = _views(source, 0, False, epoch=1)
    torch.manual_seed(123)  # the training process's own random state is neither used nor moved
    state = torch.get_rng_state()
    assert all(torch.equal(a, b) for a, b in zip(reference, _views(source, 0, False, epoch=1)))
    assert torch.equal(torch.get_rng_state(), state)
    pipeline = TRANSFORMS.build("simaugment", mean=source.mean, std=source.std, image_size=16)
    stream = make_stream(source.train, None, 4, [pipeline, pipeline], drop_last=False, seed=3,
                         loader=LoaderSettings(2, 2, True))
    for epoch in (0, 1):  # persistent workers that served epoch 0 give epoch 1 as fresh ones do
        stream.set_epoch(epoch)
        views = [view for batch in stream for view in batch.views]
    assert len(views) == len(reference) == 10
    assert all(torch.equal(a, b) for a, b in zip(reference, views))
    assert not torch.equal(reference[0], _views(source, 0, False, epoch=2)[0])  # epochs differ
    assert not torch.equal(reference[0], reference[1])  # and so do the two views of a sample
