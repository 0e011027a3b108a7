"""Datasets for the search and retraining: scikit-learn's digits (embedded), CIFAR-10/100 and ImageNet from disk.

``load_splits(DataConfig(...))`` returns the train / val / test datasets of one configuration. Nothing is ever
downloaded: digits ship inside scikit-learn; CIFAR must be in a user folder in the python-pickle layout of
https://www.cs.toronto.edu/~kriz/cifar.html; ImageNet in an ImageFolder layout (decoded with Pillow, an optional
dependency). Every split is a pure function of the labels and a seed (a version-independent hash, not a library
RNG), so the same configuration gives the same split on every machine. docs/data.md lists the exact sizes.

``split_for_search`` cuts a training set into the weight-train / arch-train halves of the bi-level search, and
``make_loader`` builds a ``DataLoader`` whose order is fixed by (seed, epoch) and that can start mid-epoch, which
is how a resumed run skips the batches it consumed before the checkpoint.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from attrs import field, frozen
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, TensorDataset

from jaqc.core import JaqcError

#: The datasets ``DataConfig.name`` accepts.
DATASET_NAMES: tuple[str, ...] = ("digits", "digits32", "cifar10", "cifar100", "imagenet")
#: The datasets made from scikit-learn's embedded digits (no ``root``).
EMBEDDED: tuple[str, ...] = ("digits", "digits32")
#: Classes per dataset.
NUM_CLASSES: dict[str, int] = {"digits": 10, "digits32": 10, "cifar10": 10, "cifar100": 100, "imagenet": 1000}
#: The side of the stored images; the default ``DataConfig.resolution``.
NATIVE_RESOLUTION: dict[str, int] = {"digits": 8, "digits32": 32, "cifar10": 32, "cifar100": 32, "imagenet": 224}
#: digits32 (:mod:`jaqc.digits32`): renderings per source digit in each split, and the seed of each split's.
DIGITS32_COPIES: dict[str, int] = {"train": 4, "val": 6, "test": 10}
DIGITS32_SEEDS: dict[str, int] = {"train": 3201, "val": 3202, "test": 3203}
#: Fraction of digits held out as the fixed test split, and the seed that fixes it (independent of the config).
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0
#: File suffixes an ImageFolder tree may hold (compared case-insensitively).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpeg", ".jpg", ".png")

_CIFAR_LAYOUT: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    # name: (folder, train files, test file, meta file)
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
    ),
    "cifar100": ("cifar-100-python", ("train",), "test", "meta"),
}
_CIFAR_LABEL_KEY = {"cifar10": "labels", "cifar100": "fine_labels"}
_CIFAR_NAMES_KEY = {"cifar10": "label_names", "cifar100": "fine_label_names"}
_RESIZE_CHUNK = 2048


class DataError(JaqcError):
    """A dataset that is missing, malformed or badly configured; the message names the path or field."""


def _check(predicate: Callable[[Any], bool], requirement: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    def validate(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not predicate(value):
            raise DataError(f"{type(inst).__name__}.{attribute.name} must be {requirement}, got {value!r}")

    return validate


def _float_tuple(value: Any) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise DataError(f"expected a sequence of numbers, got {value!r}") from None


@frozen
class Normalization:
    """Per-channel ``(x - mean) / std`` applied to images scaled to [0, 1]."""

    mean: tuple[float, ...] = field(converter=_float_tuple, validator=_check(bool, "non-empty"))
    std: tuple[float, ...] = field(converter=_float_tuple, validator=_check(lambda s: all(v > 0 for v in s), "> 0"))

    def __attrs_post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise DataError(f"Normalization: mean has {len(self.mean)} channels but std has {len(self.std)}")

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, C, H, W) or (C, H, W) normalised per channel; C must equal ``len(mean)``."""
        channels = images.shape[-3]
        if channels != len(self.mean):
            raise DataError(f"Normalization has {len(self.mean)} channels, the images have {channels}")
        mean = torch.tensor(self.mean, dtype=images.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype).view(-1, 1, 1)
        return (images - mean) / std


#: digits32's training images' mean and standard deviation (measured on the train split of seed 0).
DIGITS32_MEAN, DIGITS32_STD = 0.2524, 0.2459

#: The usual per-channel statistics of each dataset's training images (digits: all 1797 images, gray).
STANDARD_NORMALIZATION: dict[str, Normalization] = {
    "digits": Normalization((0.3053,), (0.3760,)),
    "digits32": Normalization((DIGITS32_MEAN,), (DIGITS32_STD,)),
    "cifar10": Normalization((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": Normalization((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_path(value: Any) -> Path | None:
    return None if value is None else Path(value).expanduser()


def _default_normalization(config: DataConfig) -> Normalization | None:
    standard = STANDARD_NORMALIZATION.get(config.name)
    if standard is None or len(standard.mean) == config.channels:
        return standard
    return Normalization(standard.mean * config.channels, standard.std * config.channels)


@frozen
class DataConfig:
    """Which dataset to load, from where, at what resolution, and how its validation split is drawn.

    ``normalization`` defaults to the dataset's standard statistics; ``None`` leaves the images in [0, 1].
    ``seed`` fixes the val split (the digits test split is fixed by ``DIGITS_TEST_SEED`` whatever the seed).
    """

    name: str = field(validator=_check(lambda n: n in DATASET_NAMES, f"one of {', '.join(DATASET_NAMES)}"))
    root: Path | None = field(default=None, converter=_optional_path)
    resolution: int = field(
        default=attrs.Factory(lambda self: NATIVE_RESOLUTION.get(self.name, 0), takes_self=True),
        validator=_check(lambda r: _is_int(r) and r >= 1, "an integer >= 1"),
    )
    channels: int = field(default=3, validator=_check(lambda c: c in (1, 3), "1 or 3"))
    val_fraction: float = field(
        default=0.1, validator=_check(lambda f: isinstance(f, float | int) and 0.0 <= f < 1.0, "a number in [0, 1)")
    )
    seed: int = field(default=0, validator=_check(lambda s: _is_int(s) and s >= 0, "an integer >= 0"))
    normalization: Normalization | None = field(
        default=attrs.Factory(_default_normalization, takes_self=True),
        validator=attrs.validators.optional(attrs.validators.instance_of(Normalization)),
    )

    def __attrs_post_init__(self) -> None:
        if self.name in EMBEDDED and self.root is not None:
            raise DataError(f"DataConfig.root must not be set for {self.name} (made from scikit-learn's digits)")
        if self.name not in EMBEDDED and self.root is None:
            raise DataError(f"DataConfig.root is required for {self.name}: the folder that holds the dataset")
        if self.name not in EMBEDDED and self.channels != 3:
            raise DataError(f"DataConfig.channels must be 3 for {self.name} (RGB images), got {self.channels}")
        if self.normalization is not None and len(self.normalization.mean) != self.channels:
            raise DataError(
                f"DataConfig.normalization has {len(self.normalization.mean)} channels, "
                f"DataConfig.channels is {self.channels}"
            )

    @property
    def num_classes(self) -> int:
        """The number of classes of the dataset."""
        return NUM_CLASSES[self.name]


@frozen
class Splits:
    """The train / val / test datasets of one configuration; each item is ``(image (C, H, W) float32, label)``."""

    train: Dataset
    val: Dataset
    test: Dataset
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)


def load_splits(config: DataConfig) -> Splits:
    """The train / val / test splits ``config`` describes (digits and CIFAR in memory, ImageNet read lazily)."""
    if config.name in EMBEDDED:
        return _load_digits(config)
    if config.name in _CIFAR_LAYOUT:
        return _load_cifar(config)
    return _load_imagenet(config)


# --- deterministic splits ---------------------------------------------------------------------------------------


def _splitmix64(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of ``values`` offset by ``seed``: well-mixed uint64 keys, identical on every platform."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = values.astype(np.uint64) + np.uint64(seed % 2**64) * golden + golden
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hash_order(indices: np.ndarray, seed: int) -> np.ndarray:
    """``indices`` in a pseudo-random order fixed by ``seed`` alone (no library RNG involved)."""
    return indices[np.argsort(_splitmix64(indices, seed), kind="stable")]


def stratified_split(labels: Sequence[int] | np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)``, both sorted; each class holds out ``floor(fraction * n_class + 0.5)``."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"split fraction must be in [0, 1), got {fraction!r}")
    labels = np.asarray(labels)
    held: list[np.ndarray] = []
    for label in np.unique(labels):
        members = hash_order(np.flatnonzero(labels == label), seed)
        held.append(members[: math.floor(fraction * len(members) + 0.5)])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept.astype(np.int64), held_out.astype(np.int64)


def labels_of(dataset: Dataset) -> np.ndarray:
    """The label of every item of a ``TensorDataset``, ``ImageFolderDataset`` or ``Subset`` of one."""
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].numpy()
    if isinstance(dataset, ImageFolderDataset):
        return np.asarray(dataset.targets, dtype=np.int64)
    raise DataError(
        f"cannot read the labels of a {type(dataset).__name__}; expected TensorDataset, Subset or ImageFolderDataset"
    )


def split_for_search(train: Dataset, arch_fraction: float = 0.2, seed: int = 0) -> tuple[Subset, Subset]:
    """``(weight_train, arch_train)``: a stratified split of ``train`` for the bi-level search (JAQ: 80 / 20)."""
    if not 0.0 < arch_fraction < 1.0:
        raise DataError(f"arch_fraction must be in (0, 1), got {arch_fraction!r}")
    weight_idx, arch_idx = stratified_split(labels_of(train), arch_fraction, seed)
    return Subset(train, weight_idx.tolist()), Subset(train, arch_idx.tolist())


def _split_val(dataset: TensorDataset | ImageFolderDataset, config: DataConfig) -> tuple[Dataset, Dataset]:
    train_idx, val_idx = stratified_split(labels_of(dataset), config.val_fraction, config.seed)
    return Subset(dataset, train_idx.tolist()), Subset(dataset, val_idx.tolist())


# --- image tensors ----------------------------------------------------------------------------------------------


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Float images (N, C, H, W) resized to (N, C, resolution, resolution), bilinear (antialiased when shrinking)."""
    if images.shape[-2:] == (resolution, resolution):
        return images
    shrink = resolution < min(images.shape[-2:])
    chunks = [
        F.interpolate(chunk, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrink)
        for chunk in images.split(_RESIZE_CHUNK)
    ]
    return torch.cat(chunks) if chunks else images.new_zeros((0, images.shape[1], resolution, resolution))


def _prepare(images: torch.Tensor, config: DataConfig) -> torch.Tensor:
    """Float images in [0, 1] resized, expanded to ``config.channels`` and normalised."""
    images = resize_images(images, config.resolution)
    if images.shape[1] == 1 and config.channels == 3:
        images = images.expand(-1, 3, -1, -1)
    images = images.contiguous()
    if config.normalization is not None:  # in place: these tensors are ours, and CIFAR's are large
        norm = config.normalization
        images.sub_(torch.tensor(norm.mean).view(-1, 1, 1)).div_(torch.tensor(norm.std).view(-1, 1, 1))
    return images


def _tensor_dataset(images: torch.Tensor, labels: np.ndarray, config: DataConfig) -> TensorDataset:
    return TensorDataset(_prepare(images, config), torch.as_tensor(labels, dtype=torch.int64))


# --- digits -----------------------------------------------------------------------------------------------------


def _load_digits(config: DataConfig) -> Splits:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        raise DataError("the digits dataset needs scikit-learn (pip install scikit-learn)") from None
    digits = load_digits()
    images = torch.from_numpy(np.asarray(digits.images, dtype=np.float32) / 16.0).unsqueeze(1)
    labels = np.asarray(digits.target, dtype=np.int64)
    rest, test_idx = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    rest_order = stratified_split(labels[rest], config.val_fraction, config.seed)
    train_idx, val_idx = rest[rest_order[0]], rest[rest_order[1]]
    names = tuple(str(int(n)) for n in digits.target_names)
    if config.name == "digits32":  # each split rendered from its own source digits only (jaqc.digits32)
        from jaqc.digits32 import render

        def rendered(split: str, index: np.ndarray) -> TensorDataset:
            out, out_labels = render(images[index], torch.from_numpy(labels[index]), DIGITS32_COPIES[split],
                                     DIGITS32_SEEDS[split])  # fmt: skip
            return _tensor_dataset(out, out_labels.numpy(), config)

        return Splits(
            train=rendered("train", train_idx), val=rendered("val", val_idx), test=rendered("test", test_idx),
            class_names=names,
        )  # fmt: skip
    full = _tensor_dataset(images, labels, config)
    return Splits(
        train=TensorDataset(*(t[train_idx] for t in full.tensors)),
        val=TensorDataset(*(t[val_idx] for t in full.tensors)),
        test=TensorDataset(*(t[test_idx] for t in full.tensors)),
        class_names=names,
    )


# --- CIFAR ------------------------------------------------------------------------------------------------------


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays only: a CIFAR batch file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR file")


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            content = _ArrayUnpickler(handle, encoding="latin1").load()  # python-2 pickles, as numpy advises
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: not a CIFAR python-pickle file ({error})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else str(key): value for key, value in content.items()}


def _field(content: dict[str, Any], key: str, path: Path) -> Any:
    if key not in content:
        raise DataError(f"{path}: field {key!r} is missing (found: {', '.join(sorted(content)) or 'none'})")
    return content[key]


def _cifar_folder(config: DataConfig) -> Path:
    folder_name, train_files, test_file, meta_file = _CIFAR_LAYOUT[config.name]
    expected = (*train_files, test_file, meta_file)
    root = config.root
    assert root is not None
    if not root.is_dir():
        raise DataError(f"{config.name}: {root} is not a directory; expected a folder holding {folder_name}/")
    folder = root / folder_name if (root / folder_name).is_dir() else root
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"{config.name}: {folder} lacks {', '.join(missing)}; expected {root}/{folder_name}/ (or that folder "
            f"itself) with {', '.join(expected)} (the python version of the dataset)"
        )
    return folder


def _read_cifar_batch(path: Path, config: DataConfig) -> tuple[torch.Tensor, np.ndarray]:
    content = _read_pickle(path)
    data = _field(content, "data", path)
    labels_raw = _field(content, _CIFAR_LABEL_KEY[config.name], path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DataError(f"{path}: field 'data' must be a uint8 array of shape (N, 3072), got {dtype} {shape}")
    try:
        labels = np.asarray(labels_raw, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: field {_CIFAR_LABEL_KEY[config.name]!r} must be a list of integers") from None
    key = _CIFAR_LABEL_KEY[config.name]
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: field {key!r} has {labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= config.num_classes):
        raise DataError(f"{path}: field {key!r} holds labels outside 0..{config.num_classes - 1}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float().div_(255.0)
    return images, labels


def _read_cifar_names(path: Path, config: DataConfig) -> tuple[str, ...]:
    key = _CIFAR_NAMES_KEY[config.name]
    names = _field(_read_pickle(path), key, path)
    if not isinstance(names, list | tuple) or len(names) != config.num_classes:
        raise DataError(f"{path}: field {key!r} must list {config.num_classes} class names")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _load_cifar(config: DataConfig) -> Splits:
    folder = _cifar_folder(config)
    _, train_files, test_file, meta_file = _CIFAR_LAYOUT[config.name]
    parts = [_read_cifar_batch(folder / name, config) for name in train_files]
    train_images = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    train_labels = np.concatenate([p[1] for p in parts])
    del parts
    test_images, test_labels = _read_cifar_batch(folder / test_file, config)
    class_names = _read_cifar_names(folder / meta_file, config)
    train, val = _split_val(_tensor_dataset(train_images, train_labels, config), config)
    return Splits(train=train, val=val, test=_tensor_dataset(test_images, test_labels, config), class_names=class_names)


# --- ImageNet (ImageFolder) -------------------------------------------------------------------------------------


def _require_pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading ImageNet needs Pillow: pip install pillow (or jaqc[imagenet])") from None
    return Image


def _list_class_folders(split_dir: Path) -> dict[str, list[Path]]:
    if not split_dir.is_dir():
        raise DataError(f"imagenet: {split_dir} is not a directory; expected {split_dir}/<class>/<image>.JPEG")
    classes: dict[str, list[Path]] = {}
    for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if entry.is_dir():
            files = sorted(
                Path(f.path) for f in os.scandir(entry.path) if f.is_file() and f.name.lower().endswith(IMAGE_SUFFIXES)
            )
            classes[entry.name] = files
    if not classes or not any(classes.values()):
        raise DataError(
            f"imagenet: {split_dir} holds no class folders with images; expected {split_dir}/<class>/<image>.JPEG "
            f"(suffixes {', '.join(IMAGE_SUFFIXES)})"
        )
    return classes


class ImageFolderDataset(Dataset):
    """Images of an ImageFolder tree, decoded on access: shorter side resized to ``resolution``, centre-cropped."""

    def __init__(self, samples: Sequence[tuple[Path, int]], config: DataConfig) -> None:
        self.samples = list(samples)
        self.targets = [label for _, label in self.samples]
        self.config = config

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image_module = _require_pillow()
        try:
            with image_module.open(path) as image:
                rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except OSError as error:
            raise DataError(f"imagenet: cannot decode {path} ({error})") from None
        tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)
        tensor = _resize_short_side_center_crop(tensor, self.config.resolution)
        if self.config.normalization is not None:
            tensor = self.config.normalization.apply(tensor)
        return tensor[0], label


def _resize_short_side_center_crop(image: torch.Tensor, resolution: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = resolution / min(height, width)
    size = (max(resolution, round(height * scale)), max(resolution, round(width * scale)))
    if size != (height, width):
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    return image[..., top : top + resolution, left : left + resolution].contiguous()


def _load_imagenet(config: DataConfig) -> Splits:
    root = config.root
    assert root is not None
    if not root.is_dir():
        raise DataError(f"imagenet: {root} is not a directory; expected {root}/train/<class>/ and {root}/val/<class>/")
    train_classes = _list_class_folders(root / "train")
    val_classes = _list_class_folders(root / "val")
    class_names = tuple(train_classes)
    unknown = sorted(set(val_classes) - set(class_names))
    if unknown:
        raise DataError(f"imagenet: {root / 'val'} has class folders not in {root / 'train'}: {', '.join(unknown)}")
    index = {name: i for i, name in enumerate(class_names)}

    def samples(classes: dict[str, list[Path]]) -> list[tuple[Path, int]]:
        return [(path, index[name]) for name, files in classes.items() for path in files]

    _require_pillow()
    train, val = _split_val(ImageFolderDataset(samples(train_classes), config), config)
    return Splits(train=train, val=val, test=ImageFolderDataset(samples(val_classes), config), class_names=class_names)


# --- loaders ----------------------------------------------------------------------------------------------------


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's permutation, derived from the run seed and the epoch number."""
    return int(_splitmix64(np.array([epoch], dtype=np.int64), seed)[0] >> np.uint64(1))


class EpochSampler(Sampler[int]):
    """The indices of one epoch: a permutation fixed by ``(seed, epoch)``, this rank's share of it, and the first
    ``skip_batches`` batches of that share left out (how a resumed epoch continues where it stopped).

    With ``world_size > 1`` the permutation is padded by repeating its start to a multiple of ``world_size`` and
    rank ``r`` takes every ``world_size``-th index from ``r`` (as ``DistributedSampler``).
    """

    def __init__(
        self,
        num_samples: int,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        skip_batches: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or skip_batches < 0 or epoch < 0 or seed < 0:
            raise DataError(
                f"EpochSampler: batch_size >= 1, skip_batches, epoch and seed >= 0 required, got batch_size="
                f"{batch_size}, skip_batches={skip_batches}, epoch={epoch}, seed={seed}"
            )
        if not 0 <= rank < world_size:
            raise DataError(f"EpochSampler: rank must be in [0, world_size={world_size}), got {rank}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.skip_batches = skip_batches
        self.rank = rank
        self.world_size = world_size

    def epoch_indices(self) -> list[int]:
        """This rank's indices of the whole epoch, before skipping."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        if self.world_size > 1 and order:
            padded = math.ceil(len(order) / self.world_size) * self.world_size
            order = (order * math.ceil(padded / len(order)))[:padded]
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.skip_batches * self.batch_size :])

    def __len__(self) -> int:
        per_rank = math.ceil(self.num_samples / self.world_size) if self.world_size > 1 else self.num_samples
        return max(0, per_rank - self.skip_batches * self.batch_size)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    skip_batches: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A loader over one epoch of ``dataset`` in the order ``EpochSampler`` fixes, starting at batch
    ``skip_batches``; worker seeds derive from ``(seed, epoch)`` too, so the epoch is reproducible."""
    sampler = EpochSampler(
        len(dataset),  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
        skip_batches=skip_batches,
        rank=rank,
        world_size=world_size,
    )
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=generator,
    )


def batches_per_epoch(num_samples: int, batch_size: int, *, drop_last: bool = False, world_size: int = 1) -> int:
    """How many batches one rank's full epoch has."""
    per_rank = math.ceil(num_samples / world_size) if world_size > 1 else num_samples
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
