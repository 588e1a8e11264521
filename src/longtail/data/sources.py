"""Data sources: where images, labels and class names come from.

A source gives two :class:`ImageSet` splits (train, test) and the class names. Small
datasets (CIFAR, digits, ``.npz``) live in memory as uint8 arrays so that augmentation can run
batched; large ones (image folders, file lists, and the benchmarks of :mod:`.benchmark_sets`)
are lists of files decoded on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2.functional import pil_to_tensor

from ..registry import Registry

SOURCES = Registry("dataset")

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DatasetNotFound(FileNotFoundError):
    """A dataset is not where longtail looked; the message says where and how to provide it."""


@dataclass
class ImageSet:
    """One split: ``images`` (N, H, W, 3) uint8 in memory, or ``paths`` decoded on demand."""

    targets: np.ndarray
    images: np.ndarray | None = None
    paths: list[str] | None = None

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if (self.images is None) == (self.paths is None):
            raise ValueError("an ImageSet holds either images or paths")
        if len(self) != len(self.targets):
            raise ValueError(f"{len(self)} images but {len(self.targets)} labels")

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths)

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def subset(self, indices: np.ndarray) -> ImageSet:
        indices = np.asarray(indices)
        if self.images is not None:
            return ImageSet(self.targets[indices], images=self.images[indices])
        return ImageSet(self.targets[indices], paths=[self.paths[i] for i in indices])

    def load(self, index: int) -> torch.Tensor:
        """Image ``index`` as a uint8 ``(3, H, W)`` RGB tensor."""
        if self.images is not None:
            return torch.from_numpy(self.images[index]).permute(2, 0, 1)
        return read_image(self.paths[index])


try:  # TorchCodec: libjpeg-turbo decoding, the successor of torchvision.io's
    from torchcodec.decoders import decode_image
except (ImportError, OSError, RuntimeError):  # not installed, or built for another torch
    decode_image = None


def read_image(path: str) -> torch.Tensor:
    """An image file as a uint8 ``(3, H, W)`` RGB tensor.

    TorchCodec decodes JPEG, PNG, WebP and GIF (grayscale and CMYK included) about 1.4 times as
    fast as PIL (``benchmarks/decode.py``); PIL reads the other formats, does all the work where
    TorchCodec is missing, and its error names a file that neither can read.
    """
    if decode_image is not None:
        try:
            image = decode_image(path, mode="RGB")
            return image[0] if image.ndim == 4 else image  # an animation: its first frame
        except (RuntimeError, ValueError, OSError):
            pass  # a format TorchCodec does not read, or a broken file: PIL decides which
    try:
        with Image.open(path) as image:
            return pil_to_tensor(image.convert("RGB"))
    except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
        raise OSError(
            f"cannot read image {path!r} ({error}); remove it from the file list or "
            "replace it with a readable image"
        ) from error


@dataclass
class DataSource:
    """A dataset: train and test splits, class names and normalisation statistics."""

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD
    image_size: int = 32
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __post_init__(self) -> None:
        for split, images in (("train", self.train), ("test", self.test)):
            bad = (images.targets < 0) | (images.targets >= self.num_classes)
            if bad.any():
                raise ValueError(
                    f"{self.name} {split}: {int(bad.sum())} labels outside 0..{self.num_classes - 1}"
                    f" (e.g. {int(images.targets[bad][0])}); labels must index the "
                    f"{self.num_classes} classes, so fix the labels or the class list"
                )


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root: the given one, else ``$LONGTAIL_DATA``, else ``./data``."""
    return Path(root or os.environ.get("LONGTAIL_DATA") or "data").expanduser()


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.exists():
        raise DatasetNotFound(f"{what} not found: looked for {path}. {fix}")
    return path


# --- CIFAR ---------------------------------------------------------------------------------


def _cifar(name: str, num_classes: int, root: str | None, download: bool) -> DataSource:
    base = resolve_root(root)
    packed = base / f"{name}.npz"
    if packed.exists():
        arrays = np.load(packed)
        classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
        train = ImageSet(arrays["y_train"], images=arrays["x_train"])
        test = ImageSet(arrays["y_test"], images=arrays["x_test"])
    else:
        import torchvision

        dataset_class = torchvision.datasets.CIFAR10 if num_classes == 10 else torchvision.datasets.CIFAR100
        try:
            splits = [dataset_class(str(base), train=t, download=download) for t in (True, False)]
        except RuntimeError as error:
            raise DatasetNotFound(
                f"{name} not found: looked for {packed} and torchvision's files under {base} "
                f"({error}). Provide it with one of: set data.download=true (needs internet); "
                f"write {packed} (for CIFAR-100: python shared/data/unpack_cifar.py {base}); "
                "or point data.root, --data-root or LONGTAIL_DATA at the folder that holds it."
            ) from error
        classes = list(splits[0].classes)
        train, test = (ImageSet(np.asarray(s.targets), images=np.asarray(s.data)) for s in splits)
    return DataSource(name, train, test, classes or [str(i) for i in range(num_classes)])


@SOURCES.register("cifar10")
def cifar10(root: str | None = None, download: bool = False) -> DataSource:
    """CIFAR-10 from ``ROOT/cifar10.npz`` or torchvision's files (downloaded if allowed)."""
    return _cifar("cifar10", 10, root, download)


@SOURCES.register("cifar100")
def cifar100(root: str | None = None, download: bool = False) -> DataSource:
    """CIFAR-100 from ``ROOT/cifar100.npz`` or torchvision's files (downloaded if allowed)."""
    return _cifar("cifar100", 100, root, download)


# --- small offline data --------------------------------------------------------------------


@SOURCES.register("digits")
def digits(test_per_class: int = 30, image_size: int = 16) -> DataSource:
    """scikit-learn's bundled 8x8 digits, upscaled to ``image_size`` and made RGB.

    There is no official split: ``test_per_class`` images of each class (fixed seed) form
    a balanced test set and the rest are for training.
    """
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images).float()[:, None] / 16.0
    big = F.interpolate(small, size=image_size, mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
    images = images.permute(0, 2, 3, 1).numpy()
    targets = bunch.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(targets == c))[:test_per_class] for c in range(10)]
    )
    is_test = np.zeros(len(targets), dtype=bool)
    is_test[test] = True
    return DataSource(
        "digits",
        ImageSet(targets[~is_test], images=images[~is_test]),
        ImageSet(targets[is_test], images=images[is_test]),
        [str(d) for d in range(10)],
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        image_size=image_size,
    )


@SOURCES.register("npz")
def npz(path: str) -> DataSource:
    """Any ``.npz`` with ``x_train, y_train, x_test, y_test`` (uint8 NHWC) and optional ``classes``."""
    file = _require(Path(path).expanduser(), "npz dataset", "Set data.path to an existing .npz file.")
    arrays = np.load(file)
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise ValueError(f"{file} lacks {', '.join(missing)}; it needs x_train, y_train, x_test, y_test")
    x_train = arrays["x_train"]
    if x_train.dtype != np.uint8 or x_train.ndim != 4 or x_train.shape[-1] != 3:
        raise ValueError(f"{file}: x_train must be uint8 (N, H, W, 3), got {x_train.dtype} {x_train.shape}")
    num_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(i) for i in range(num_classes)]
    mean = tuple(float(m) for m in x_train.reshape(-1, 3).mean(0) / 255)
    std = tuple(float(s) for s in x_train.reshape(-1, 3).std(0) / 255)
    return DataSource(
        file.stem, ImageSet(arrays["y_train"], images=x_train),
        ImageSet(arrays["y_test"], images=arrays["x_test"]), classes, mean, std, x_train.shape[1],
    )


# --- file-based data -----------------------------------------------------------------------


@SOURCES.register("imagefolder")
def imagefolder(path: str, train_dir: str = "train", test_dir: str = "val", image_size: int = 224) -> DataSource:
    """A torchvision ``ImageFolder`` tree: ``PATH/train/CLASS/*.jpg`` and ``PATH/val/CLASS/*.jpg``."""
    from torchvision.datasets import ImageFolder

    base = Path(path).expanduser()
    fix = f"Expected {base}/{train_dir}/<class>/<image> and {base}/{test_dir}/<class>/<image>."
    train = ImageFolder(str(_require(base / train_dir, "training folder", fix)))
    test = ImageFolder(str(_require(base / test_dir, "test folder", fix)))
    if test.classes != train.classes:
        raise ValueError(f"{base}: the {test_dir} classes differ from the {train_dir} classes")
    sets = [ImageSet([t for _, t in d.samples], paths=[p for p, _ in d.samples]) for d in (train, test)]
    return DataSource(base.name, *sets, train.classes, IMAGENET_MEAN, IMAGENET_STD, image_size)


def read_list(list_file: Path, image_root: Path) -> tuple[ImageSet, dict[int, str]]:
    """A split file of ``relative/path.jpg LABEL`` lines (paths may hold spaces), and a name for
    each label: the folder of its first image (e.g. ImageNet's ``n01440764``)."""
    paths, targets, names = [], [], {}
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{list_file}:{number}: expected 'relative/path.jpg LABEL', got {line!r}")
        paths.append(str(image_root / parts[0]))
        targets.append(int(parts[1]))
        names.setdefault(targets[-1], Path(parts[0]).parent.name)
    return ImageSet(targets, paths=paths), names


def class_names(num_classes: int, *names: dict[int, str]) -> list[str]:
    """One name per label, from the first mapping that names it, else the label itself."""
    return [next((n[i] for n in names if n.get(i)), str(i)) for i in range(num_classes)]


@SOURCES.register("filelist")
def filelist(root: str | None, train_list: str, test_list: str, num_classes: int | None = None,
             image_size: int = 224, name: str = "filelist", image_root: str | None = None) -> DataSource:
    """Images listed in text files of ``relative/path LABEL`` lines.

    The lists are looked up in ``root`` (unless absolute); the image paths in them are relative
    to ``image_root`` (default: ``root``).
    """
    base = resolve_root(root)
    images = Path(image_root).expanduser() if image_root else base
    sets, names = [], []
    for list_name in (train_list, test_list):
        list_path = Path(list_name) if Path(list_name).is_absolute() else base / list_name
        split, split_names = read_list(_require(
            list_path, f"{name} file list",
            f"Put {list_name} under data.root (or --data-root / LONGTAIL_DATA).",
        ), images)
        sets.append(split)
        names.append(split_names)
    count = num_classes or int(max(s.targets.max() for s in sets)) + 1
    return DataSource(name, *sets, class_names(count, *names), IMAGENET_MEAN, IMAGENET_STD, image_size)
