"""Data sources: where images, labels and class names come from.

A source gives two :class:`ImageSet` splits (train, test) and the class names. Small
datasets (CIFAR, digits, ``.npz``) live in memory as uint8 arrays so that augmentation can run
batched; large ones (image folders, file lists, and the benchmarks of :mod:`.benchmark_sets`)
are lists of files decoded on demand.

In-memory images are uint8 ``(N, H, W, 3)``. Grayscale arrays (``(N, H, W)`` or
``(N, H, W, 1)``) are repeated into three equal channels when loaded, as PIL's
``convert("RGB")`` does for grayscale image files: every model, augmentation and normalisation
in longtail takes RGB, so grayscale data trains like any other. Every split is checked when
the source is built (shapes, dtypes, labels, image sizes), and image files are checked by
:meth:`ImageSet.check_readable` before training, so that bad data fails before the first step.
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import DataError, DatasetNotFound
from ..registry import Registry

SOURCES = Registry("dataset")

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# What PIL raises for a missing, truncated, corrupt or oversized image file.
_UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
# The bytes a whole file ends with; truncation (an interrupted copy or download) cuts them off.
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


def _unreadable(path: str) -> str | None:
    """Why the image file ``path`` cannot be decoded, or None if it can.

    A JPEG or PNG that parses and ends with its format's end marker is taken as whole: a header
    read and a seek (~0.05 ms here), where decoding a 500x375 JPEG takes ~3 ms: minutes for the
    440k images of iNaturalist 2018 at every start. Any other file, or one without the marker
    (some cameras append data after it), is decoded in full.
    """
    try:
        with Image.open(path) as image:
            marker = _END_MARKERS.get(image.format)
            if marker is not None:
                with open(path, "rb") as handle:
                    handle.seek(max(0, os.path.getsize(path) - len(marker)))
                    if handle.read() == marker:
                        return None
            image.load()
    except _UNREADABLE as error:
        return str(error) or type(error).__name__
    return None


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

    def check_readable(self, split: str, threads: int = 1) -> None:
        """Raise :class:`DataError` naming the files of this split that cannot be decoded
        (nothing to do for images in memory); ``threads`` read files in parallel."""
        if self.paths is None:
            return
        with ThreadPoolExecutor(max(1, threads)) as pool:
            reasons = list(pool.map(_unreadable, self.paths))
        bad = [f"{path} ({reason})" for path, reason in zip(self.paths, reasons) if reason]
        if bad:
            raise DataError(
                f"{len(bad)} of the {len(self)} {split} images cannot be read: {'; '.join(bad[:3])}"
                f"{'; ...' if len(bad) > 3 else ''}. Replace them with readable copies, or delete "
                "them (and their lines in the file list), before training"
            )


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
    except _UNREADABLE as error:
        raise DataError(
            f"cannot read image {path!r} ({error}); remove it from the file list or "
            "replace it with a readable image"
        ) from error


@dataclass
class DataSource:
    """A dataset: train and test splits, class names and normalisation statistics.

    Every class needs training images unless ``allow_empty_classes`` (a benchmark's fixed class
    list read from a partial download, which :mod:`.benchmark_sets` has already reported).
    """

    name: str
    train: ImageSet
    test: ImageSet
    classes: list[str]
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD
    image_size: int = 32
    info: dict = field(default_factory=dict)
    allow_empty_classes: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __post_init__(self) -> None:
        for split, images in (("train", self.train), ("test", self.test)):
            if not len(images):
                raise DataError(f"{self.name}: the {split} split holds no images; give it some")
            bad = (images.targets < 0) | (images.targets >= self.num_classes)
            if bad.any():
                raise DataError(
                    f"{self.name} {split}: {int(bad.sum())} labels outside 0..{self.num_classes - 1}"
                    f" (e.g. {int(images.targets[bad][0])}); labels must index the "
                    f"{self.num_classes} classes, so fix the labels or the class list"
                )
        empty = np.flatnonzero(np.bincount(self.train.targets, minlength=self.num_classes) == 0)
        if len(empty) and not self.allow_empty_classes:
            names = ", ".join(repr(self.classes[i]) for i in empty[:3]) + (", ..." if len(empty) > 3 else "")
            raise DataError(
                f"{self.name}: {len(empty)} of the {self.num_classes} classes have no training image "
                f"({names}); the class list names classes the labels never use: remove those "
                "names or add their images"
            )
        if self.train.in_memory and self.test.in_memory:
            train_shape, test_shape = self.train.images.shape[1:], self.test.images.shape[1:]
            if train_shape != test_shape:
                raise DataError(
                    f"{self.name}: the test images are {_hwc(test_shape)} but the training images "
                    f"{_hwc(train_shape)}; both splits need one size: resize the test images to "
                    f"{_hwc(train_shape)}"
                )


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root: the given one, else ``$LONGTAIL_DATA``, else ``./data``."""
    return Path(root or os.environ.get("LONGTAIL_DATA") or "data").expanduser()


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.exists():
        raise DatasetNotFound(f"{what} not found: looked for {path}. {fix}")
    return path


def _image_array(array: np.ndarray, where: str) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` images from RGB or grayscale (``(N, H, W)``, ``(N, H, W, 1)``) ones."""
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        channels_first = array.ndim == 4 and array.shape[1] in (1, 3)
        raise DataError(
            f"{where} must be (N, H, W, 3) RGB or (N, H, W) grayscale images, got shape "
            f"{array.shape}" + ("; channels first? store x.transpose(0, 2, 3, 1)" if channels_first else "")
        )
    if array.dtype != np.uint8:
        raise DataError(f"{where} must hold uint8 pixels 0..255, got {array.dtype}; convert it, e.g. "
                        "(x * 255).round().astype(numpy.uint8) for floats in 0..1")
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def _label_array(array: np.ndarray, where: str) -> np.ndarray:
    """int64 class indices from integer (or whole-number float) labels of shape (N,) or (N, 1)."""
    if array.ndim == 2 and array.shape[1] == 1:  # e.g. Keras' CIFAR labels
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(f"{where} must be a vector of class indices, one per image, got shape {array.shape}")
    if array.dtype.kind in "US":
        raise DataError(f"{where} holds strings (e.g. {str(array[0])!r}), not class indices; store "
                        "the names once as classes and the labels as indices into them, e.g. "
                        "classes, y = numpy.unique(names, return_inverse=True)")
    if array.dtype.kind == "f":
        fractional = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if len(fractional):
            i = int(fractional[0])
            raise DataError(f"{where} holds labels that are not whole numbers (e.g. {array[i]} at "
                            f"index {i}); labels are class indices: store them as integers")
    elif array.dtype.kind not in "iu":
        raise DataError(f"{where} must hold integer class indices, got {array.dtype}")
    return array.astype(np.int64)


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(file: Path) -> tuple[ImageSet, ImageSet, list[str] | None]:
    """The two splits of an ``.npz`` (``x_train, y_train, x_test, y_test``) and its ``classes``, if any."""
    layout = "x_train, y_train, x_test, y_test (uint8 images, integer labels) and optionally classes"
    if not zipfile.is_zipfile(file):
        raise DataError(f"{file} is not an .npz archive (a zip of .npy arrays); write one holding "
                        f"{layout} with numpy.savez")
    arrays = {}
    with np.load(file) as archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            raise DataError(f"{file} lacks {', '.join(missing)} (it holds "
                            f"{', '.join(archive.files) or 'nothing'}); it needs {layout}")
        for key in (*_NPZ_KEYS, "classes"):
            try:
                arrays[key] = archive[key] if key in archive.files else None
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                fix = ("it holds Python objects, which longtail never unpickles: store numbers, and "
                       "class names as numpy.array(names, dtype=str)") if "pickle" in str(error) else (
                       "the file is damaged: write it again")
                raise DataError(f"{file}: cannot load {key} ({error}); {fix}") from None
    splits = []
    for split in ("train", "test"):
        images = _image_array(arrays[f"x_{split}"], f"{file}: x_{split}")
        labels = _label_array(arrays[f"y_{split}"], f"{file}: y_{split}")
        if len(images) != len(labels):
            raise DataError(f"{file}: x_{split} holds {len(images)} images but y_{split} "
                            f"{len(labels)} labels; give one label per image")
        splits.append(ImageSet(labels, images=images))
    classes = arrays["classes"]
    if classes is not None and classes.ndim != 1:
        raise DataError(f"{file}: classes must be a vector of names, got shape {classes.shape}")
    return splits[0], splits[1], None if classes is None else [str(c) for c in classes]


def _label_count(train: ImageSet) -> int:
    """Classes implied by the training labels: the largest + 1 (0 if there are none)."""
    return int(train.targets.max()) + 1 if len(train) else 0


# --- CIFAR ---------------------------------------------------------------------------------


def _cifar(name: str, num_classes: int, root: str | None, download: bool) -> DataSource:
    base = resolve_root(root)
    packed = base / f"{name}.npz"
    if packed.exists():
        train, test, classes = _read_npz(packed)
    else:
        import torchvision

        dataset_class = torchvision.datasets.CIFAR10 if num_classes == 10 else torchvision.datasets.CIFAR100
        try:
            splits = [dataset_class(str(base), train=t, download=download) for t in (True, False)]
        except (RuntimeError, OSError) as error:  # not there, or the download failed
            failed = f" (the download failed: {error})" if isinstance(error, OSError) else ""
            raise DatasetNotFound(
                f"{name} not found: looked for {packed} and torchvision's folder "
                f"{base / dataset_class.base_folder}{failed}. Provide it in one of three ways: "
                "set data.source.download=true to fetch torchvision's files (needs internet); "
                f"write {packed} with numpy.savez: x_train, y_train, x_test, y_test "
                "(uint8 (N, 32, 32, 3) images, integer labels) and optionally classes; or point "
                "data.root, --data-root or LONGTAIL_DATA at the folder that holds either."
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
    """Any ``.npz`` with ``x_train, y_train, x_test, y_test`` and optional ``classes``.

    Images are uint8 ``(N, H, W, 3)``, or grayscale ``(N, H, W)`` / ``(N, H, W, 1)``, which are
    repeated into 3 channels; labels are integer class indices (whole-number floats are accepted).
    """
    file = _require(Path(path).expanduser(), "npz dataset",
                    "Set data.source.path to an existing .npz file.")
    train, test, classes = _read_npz(file)
    pixels = train.images.reshape(-1, 3)
    mean = tuple(float(m) for m in pixels.mean(0) / 255)
    std = tuple(float(s) for s in pixels.std(0) / 255)
    classes = classes or [str(i) for i in range(_label_count(train))]
    return DataSource(str(file), train, test, classes, mean, std, train.images.shape[1])


# --- file-based data -----------------------------------------------------------------------


@SOURCES.register("imagefolder")
def imagefolder(path: str, train_dir: str = "train", test_dir: str = "val", image_size: int = 224) -> DataSource:
    """A torchvision ``ImageFolder`` tree: ``PATH/train/CLASS/*.jpg`` and ``PATH/val/CLASS/*.jpg``."""
    from torchvision.datasets import ImageFolder

    base = Path(path).expanduser()
    fix = f"Expected {base}/{train_dir}/<class>/<image> and {base}/{test_dir}/<class>/<image>."
    folders = []
    for folder, what in ((train_dir, "training folder"), (test_dir, "test folder")):
        root = _require(base / folder, what, fix)
        try:
            folders.append(ImageFolder(str(root)))
        except FileNotFoundError as error:  # torchvision: no class folders, or no images in them
            raise DataError(f"{root}: {error} {fix}") from None
    train, test = folders
    if test.classes != train.classes:
        only = sorted(set(train.classes) ^ set(test.classes))
        raise DataError(f"{base}: the class folders of {test_dir} differ from those of {train_dir} "
                        f"(in one only: {', '.join(only[:5]) or 'none; the order differs'}); give "
                        "both splits the same class folders")
    sets = [ImageSet([t for _, t in d.samples], paths=[p for p, _ in d.samples]) for d in (train, test)]
    return DataSource(str(base), *sets, train.classes, IMAGENET_MEAN, IMAGENET_STD, image_size)


def read_list(list_file: Path, image_root: Path) -> tuple[ImageSet, dict[int, str]]:
    """A split file of ``relative/path.jpg LABEL`` lines (paths may hold spaces), and a name for
    each label: the folder of its first image (e.g. ImageNet's ``n01440764``)."""
    paths, targets, names = [], [], {}
    for number, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{list_file}:{number}: expected 'relative/path.jpg LABEL', got {line!r}; "
                            "fix that line")
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
    count = num_classes or _label_count(sets[0])
    return DataSource(name, *sets, class_names(count, *names), IMAGENET_MEAN, IMAGENET_STD, image_size)
