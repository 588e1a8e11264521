"""The large long-tailed benchmarks of BBN and PaCo, read as users download them.

ImageNet-LT and Places-LT come as split files of ``path label`` lines (``ImageNet_LT_train.txt``,
``_val.txt``, ``_test.txt``) whose paths are relative to the ImageNet / Places365 image folders;
iNaturalist 2017 and 2018 as the same kind of text lists (``iNaturalist18_train.txt``, ...) or
as the official COCO-style annotations (``train2018.json`` with ``images``, ``annotations`` and
``categories``). The split files sit in ``root`` and the images under ``image_root``
(default: ``root``).

:func:`profile_mismatches` compares a dataset as read with the published totals: a partial
download (of the images or of a split file) is the commonest real failure.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, DatasetNotFound
from .sources import IMAGENET_MEAN, IMAGENET_STD, SOURCES, DataSource, ImageSet, class_names, read_list, resolve_root


@dataclass(frozen=True)
class Published:
    """What a benchmark's official files hold."""

    classes: int
    train: int  # training images
    evaluation: dict[str, int]  # images of each evaluation split
    largest: int | None = None  # training images of the largest / smallest class, where published
    smallest: int | None = None


@dataclass(frozen=True)
class Benchmark:
    """How a benchmark is distributed: split file names by split, and the published totals."""

    lists: dict[str, str]
    test_split: str  # the split reported as "test" in the papers
    published: Published
    annotations: dict[str, str] | None = None  # COCO-style JSON files by split (iNaturalist)


BENCHMARKS = {
    # Liu et al. 2019 (OLTR) splits; REFERENCE.md's totals.
    "imagenet_lt": Benchmark(
        {s: f"ImageNet_LT_{s}.txt" for s in ("train", "val", "test")}, "test",
        Published(1000, 115_846, {"val": 20_000, "test": 50_000}, largest=1280, smallest=5)),
    "places_lt": Benchmark(
        {s: f"Places_LT_{s}.txt" for s in ("train", "val", "test")}, "test",
        Published(365, 62_500, {"val": 7_300, "test": 36_500}, largest=4980, smallest=5)),
    # The official training and validation sets (BBN Sec. 5.1; Van Horn et al. 2018).
    "inat2017": Benchmark(
        {s: f"iNaturalist17_{s}.txt" for s in ("train", "val")}, "val",
        Published(5089, 579_184, {"val": 95_986}),
        annotations={s: f"{s}2017.json" for s in ("train", "val")}),
    "inat2018": Benchmark(
        {s: f"iNaturalist18_{s}.txt" for s in ("train", "val")}, "val",
        Published(8142, 437_513, {"val": 24_426}),
        annotations={s: f"{s}2018.json" for s in ("train", "val")}),
}


def read_annotations(json_file: Path, image_root: Path) -> tuple[ImageSet, list[int], dict[int, str]]:
    """A COCO-style file (``images``, ``annotations``, ``categories``): the labelled images, the
    category ids in label order (sorted, so iNaturalist's ids 0..C-1 are the labels) and names."""
    with open(json_file) as handle:
        data = json.load(handle)
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise DataError(f"{json_file} lacks {', '.join(missing)}; expected the official "
                         "COCO-style annotation file (images, annotations, categories)")
    ids = sorted(c["id"] for c in data["categories"])
    label = {category: index for index, category in enumerate(ids)}
    names = {label[c["id"]]: c.get("name", str(c["id"])) for c in data["categories"]}
    file_names = {image["id"]: image["file_name"] for image in data["images"]}
    paths, targets = [], []
    for annotation in data["annotations"]:
        paths.append(str(image_root / file_names[annotation["image_id"]]))
        targets.append(label[annotation["category_id"]])
    return ImageSet(targets, paths=paths), ids, names


def _where(root: Path, files: dict[str, str] | None, splits: tuple[str, str]) -> list[Path] | None:
    if files is None:
        return None
    paths = [root / files[split] for split in splits]
    return paths if all(path.exists() for path in paths) else None


@SOURCES.register_family("", BENCHMARKS)
def load_benchmark(name: str, root: str | os.PathLike | None = None, image_root: str | None = None,
                   image_size: int = 224, test_split: str | None = None,
                   mean: tuple[float, float, float] = IMAGENET_MEAN,
                   std: tuple[float, float, float] = IMAGENET_STD,
                   allow_missing_classes: bool = False) -> DataSource:
    """Benchmark ``name`` (a key of :data:`BENCHMARKS`, and the source's name in a config) from its
    split files in ``root``: its lists (``ImageNet_LT_train.txt`` ...) or, for iNaturalist, its
    annotation files (``train2018.json`` ...).

    A class without training images means an incomplete split file or download, refused unless
    ``allow_missing_classes`` (to inspect it, or to train on part of a benchmark on purpose).
    """
    benchmark = BENCHMARKS[name]
    base = resolve_root(root)
    images = Path(image_root).expanduser() if image_root else base
    test_split = test_split or benchmark.test_split
    if test_split not in benchmark.lists or test_split == "train":
        raise DataError(f"{name} has no evaluation split {test_split!r}; choose one of "
                         f"{', '.join(s for s in benchmark.lists if s != 'train')}")
    splits = ("train", test_split)
    num_classes = benchmark.published.classes
    if lists := _where(base, benchmark.lists, splits):
        (train, train_names), (test, test_names) = (read_list(path, images) for path in lists)
        classes, files = class_names(num_classes, train_names, test_names), lists
    elif files := _where(base, benchmark.annotations, splits):
        (train, ids, names), (test, test_ids, _) = (read_annotations(path, images) for path in files)
        if test_ids != ids:
            raise DataError(f"{files[0]} and {files[1]} list different categories; use the "
                             "training and validation files of the same release")
        num_classes, classes = len(ids), class_names(len(ids), names)
    else:
        expected = " and ".join(benchmark.lists[s] for s in splits)
        if benchmark.annotations:
            expected += " (or " + " and ".join(benchmark.annotations[s] for s in splits) + ")"
        raise DatasetNotFound(
            f"{name} split files not found: looked for {expected} in {base}. Put them there "
            "and point data.root (--data-root, LONGTAIL_DATA) at that folder; set "
            "data.source.image_root (--image-root) to the folder the image paths in them start from.")
    empty = int((np.bincount(train.targets, minlength=num_classes) == 0).sum())
    if empty and not allow_missing_classes:
        raise DataError(
            f"{name}: {empty:,} of the {num_classes:,} classes have no training image in {files[0]}: "
            f"an incomplete split file or download? `longtail datasets {name}` compares it with the "
            "published one; set data.source.allow_missing_classes=true to train on it anyway")
    info = {"split_files": [str(f) for f in files], "image_root": str(images), "test_split": test_split}
    return DataSource(name, train, test, classes, tuple(mean), tuple(std), image_size, info,
                      allow_empty_classes=allow_missing_classes)


def profile_mismatches(source: DataSource) -> list[str]:
    """How ``source`` differs from its benchmark's published totals (empty: it matches, or it
    is not one of :data:`BENCHMARKS`)."""
    if source.name not in BENCHMARKS:
        return []
    published = BENCHMARKS[source.name].published
    counts = np.bincount(source.train.targets, minlength=source.num_classes)
    present = counts[counts > 0]
    found = {
        "classes": (source.num_classes, published.classes),
        "training images": (int(counts.sum()), published.train),
        "classes with training images": (len(present), published.classes),
        "images in the largest class": (int(present.max()) if len(present) else 0, published.largest),
        "images in the smallest class": (int(present.min()) if len(present) else 0, published.smallest),
    }
    split = source.info.get("test_split", BENCHMARKS[source.name].test_split)
    found[f"{split} images"] = (len(source.test), published.evaluation[split])
    return [f"{source.name}: {got:,} {what}, the published split has {expected:,}"
            for what, (got, expected) in found.items() if expected is not None and got != expected]


def missing_files(images: ImageSet, examples: int = 3) -> tuple[int, list[str]]:
    """How many of a split's listed image files do not exist, and the first few of them."""
    missing = [path for path in images.paths or [] if not os.path.exists(path)]
    return len(missing), missing[:examples]
