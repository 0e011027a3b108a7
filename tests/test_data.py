"""jaqc.data: the embedded digits, CIFAR and ImageNet folders, the deterministic splits and the resumable loaders."""

from __future__ import annotations

import os
import pickle
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from jaqc.data import (
    STANDARD_NORMALIZATION,
    DataConfig,
    DataError,
    EpochSampler,
    Normalization,
    batches_per_epoch,
    hash_order,
    labels_of,
    load_splits,
    make_loader,
    resize_images,
    split_for_search,
    stratified_split,
)

DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@pytest.fixture(scope="module")
def digits():
    return load_splits(DataConfig("digits"))


def _floor_half(fraction: float, n: int) -> int:
    return int(np.floor(fraction * n + 0.5))


# --- digits -----------------------------------------------------------------------------------------------------


def test_digits_split_sizes_and_shapes(digits) -> None:
    assert (len(digits.train), len(digits.val), len(digits.test)) == (1293, 145, 359)
    assert digits.class_names == tuple(str(i) for i in range(10))
    image, label = digits.train[0]
    assert image.shape == (3, 8, 8) and image.dtype == torch.float32 and label.dtype == torch.int64
    test_counts = np.bincount(labels_of(digits.test), minlength=10)
    assert test_counts.tolist() == [_floor_half(0.2, n) for n in DIGITS_CLASS_COUNTS]
    total = np.bincount(np.concatenate([labels_of(s) for s in (digits.train, digits.val, digits.test)]))
    assert total.tolist() == DIGITS_CLASS_COUNTS


def test_digits_test_split_is_fixed_and_val_follows_the_seed(digits) -> None:
    other = load_splits(DataConfig("digits", seed=5))
    assert torch.equal(other.test.tensors[0], digits.test.tensors[0])
    assert torch.equal(other.test.tensors[1], digits.test.tensors[1])
    assert len(other.val) == len(digits.val)
    assert not torch.equal(other.val.tensors[0], digits.val.tensors[0])
    again = load_splits(DataConfig("digits"))
    assert torch.equal(again.val.tensors[0], digits.val.tensors[0])


def test_digits_splits_partition_the_dataset() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    everything = sorted(
        (int(label), tuple(image.flatten().tolist())) for image, label in zip(raw.images / 16.0, raw.target)
    )
    splits = load_splits(DataConfig("digits", channels=1, normalization=None, seed=11))
    parts = sorted(
        (int(label), tuple(image.double().flatten().tolist()))
        for split in (splits.train, splits.val, splits.test)
        for image, label in zip(*split.tensors)
    )
    assert parts == everything  # as multisets: every image in exactly one split
    no_val = load_splits(DataConfig("digits", val_fraction=0.0))
    assert (len(no_val.train), len(no_val.val), len(no_val.test)) == (1438, 0, 359)


def test_digits_gray_replicated_resized_and_normalised() -> None:
    plain = load_splits(DataConfig("digits", channels=1, normalization=None)).train.tensors[0]
    assert plain.shape == (1293, 1, 8, 8)
    assert plain.min().item() == 0.0 and plain.max().item() == 1.0
    assert torch.equal(plain * 16, (plain * 16).round())  # the 17 gray levels of digits
    rgb = load_splits(DataConfig("digits")).train.tensors[0]
    assert torch.equal(rgb[:, 0], rgb[:, 2]) and torch.equal(rgb[:, 1], rgb[:, 2])
    norm = STANDARD_NORMALIZATION["digits"]
    assert torch.equal(rgb[:, :1], (plain - norm.mean[0]) / norm.std[0])
    big = load_splits(DataConfig("digits", resolution=16, normalization=None)).train.tensors[0]
    assert big.shape == (1293, 3, 16, 16)
    assert torch.allclose(big.mean(dim=(2, 3))[:, 0], plain.mean(dim=(1, 2, 3)), atol=1e-6)


def test_split_for_search_is_stratified_and_deterministic(digits) -> None:
    weight, arch = split_for_search(digits.train, 0.2, seed=3)
    counts = np.bincount(labels_of(digits.train))
    assert np.bincount(labels_of(arch)).tolist() == [_floor_half(0.2, n) for n in counts]
    assert len(weight) + len(arch) == len(digits.train)
    assert set(weight.indices).isdisjoint(arch.indices)
    assert split_for_search(digits.train, 0.2, seed=3)[1].indices == arch.indices
    assert split_for_search(digits.train, 0.2, seed=4)[1].indices != arch.indices
    nested_weight, nested_arch = split_for_search(weight, 0.5, seed=0)  # a Subset of a Subset
    assert len(nested_weight) + len(nested_arch) == len(weight)
    with pytest.raises(DataError, match="arch_fraction"):
        split_for_search(digits.train, 0.0)


# --- splits and resizing ----------------------------------------------------------------------------------------


def test_hash_order_is_pinned() -> None:
    # The splits must not change with numpy/torch versions: these orders are fixed by the algorithm alone.
    assert hash_order(np.arange(10), 0).tolist() == [3, 5, 7, 4, 1, 2, 8, 9, 6, 0]
    assert hash_order(np.arange(10), 1).tolist() == [7, 0, 6, 8, 3, 1, 2, 9, 5, 4]


def test_stratified_split_counts_and_partition() -> None:
    labels = np.array([0] * 5 + [1] * 3)
    kept, held = stratified_split(labels, 0.5, seed=0)
    assert kept.tolist() == [0, 2, 6] and held.tolist() == [1, 3, 4, 5, 7]
    assert stratified_split(labels, 0.0, seed=0)[1].tolist() == []
    with pytest.raises(DataError, match=r"\[0, 1\)"):
        stratified_split(labels, 1.0, seed=0)


def test_resize_images() -> None:
    images = torch.rand(3, 2, 8, 8)
    assert resize_images(images, 8) is images
    constant = torch.full((2, 3, 5, 7), 0.25)
    assert torch.allclose(resize_images(constant, 4), torch.full((2, 3, 4, 4), 0.25), rtol=0, atol=1e-7)
    assert torch.allclose(resize_images(constant, 11), torch.full((2, 3, 11, 11), 0.25), rtol=0, atol=1e-7)
    ramp = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    assert resize_images(ramp, 4)[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]  # bilinear, half-pixel centres


def test_config_validation() -> None:
    with pytest.raises(DataError, match=r"DataConfig\.name must be one of digits, digits32, cifar10"):
        DataConfig("mnist")
    with pytest.raises(DataError, match="root must not be set for digits"):
        DataConfig("digits", root="/tmp")
    with pytest.raises(DataError, match="root is required for cifar10"):
        DataConfig("cifar10")
    with pytest.raises(DataError, match="channels must be 3 for imagenet"):
        DataConfig("imagenet", root="/x", channels=1)
    with pytest.raises(DataError, match=r"val_fraction must be a number in \[0, 1\), got 1\.0"):
        DataConfig("digits", val_fraction=1.0)
    with pytest.raises(DataError, match=r"val_fraction must be a number in \[0, 1\), got '0\.1'"):
        DataConfig("digits", val_fraction="0.1")
    with pytest.raises(DataError, match="resolution must be an integer >= 1, got True"):
        DataConfig("digits", resolution=True)
    with pytest.raises(DataError, match=r"normalization has 1 channels, DataConfig\.channels is 3"):
        DataConfig("digits", normalization=Normalization((0.5,), (0.5,)))
    with pytest.raises(DataError, match="std must be > 0"):
        Normalization((0.5,), (0.0,))
    assert DataConfig("cifar100", root="/x").resolution == 32
    assert DataConfig("cifar10", root="~/data").root == Path.home() / "data"
    assert DataConfig("imagenet", root="/x").num_classes == 1000
    assert DataConfig("digits", channels=1).normalization == STANDARD_NORMALIZATION["digits"]


# --- CIFAR ------------------------------------------------------------------------------------------------------


def _cifar_images(count: int, offset: int) -> np.ndarray:
    return ((np.arange(count * 3072).reshape(count, 3072) + offset) % 251).astype(np.uint8)


def _dump(path: Path, content: object) -> None:
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=2)  # the real files are python-2 pickles with bytes keys


def _write_cifar10(folder: Path, per_batch: int = 4) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, 6):
        labels = [(i + k) % 10 for k in range(per_batch)]
        _dump(folder / f"data_batch_{i}", {b"data": _cifar_images(per_batch, i), b"labels": labels})
    _dump(folder / "test_batch", {b"data": _cifar_images(3, 100), b"labels": [9, 0, 1]})
    _dump(folder / "batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
    return folder


def test_cifar10_loads_from_root_or_folder(tmp_path: Path) -> None:
    folder = _write_cifar10(tmp_path / "cifar-10-batches-py")
    for root in (tmp_path, folder):
        splits = load_splits(DataConfig("cifar10", root=root, val_fraction=0.0, normalization=None))
        assert (len(splits.train), len(splits.val), len(splits.test)) == (20, 0, 3)
        assert splits.class_names == tuple(f"class{i}" for i in range(10))
        expected = torch.from_numpy(_cifar_images(4, 1).reshape(4, 3, 32, 32).astype(np.float32) / 255)
        assert torch.equal(splits.train.dataset.tensors[0][:4], expected)
        assert labels_of(splits.train).tolist() == [(i + k) % 10 for i in range(1, 6) for k in range(4)]
        assert labels_of(splits.test).tolist() == [9, 0, 1]


def _py2_str(text: bytes) -> bytes:
    return b"U" + bytes([len(text)]) + text if len(text) < 256 else b"T" + struct.pack("<i", len(text)) + text


def _py2_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """``{'data': data, 'labels': labels}`` as python 2's cPickle and numpy 1 wrote the real CIFAR files."""
    rows, cols = data.shape
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R(K\x01"
        + b"M" + struct.pack("<H", rows) + b"M" + struct.pack("<H", cols) + b"\x86cnumpy\ndtype\n" + _py2_str(b"u1")
        + b"K\x00K\x01\x87R(K\x03" + _py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        + _py2_str(data.tobytes()) + b"tb"
    )  # fmt: skip
    label_list = b"](" + b"".join(b"K" + bytes([label]) for label in labels) + b"e"
    return b"\x80\x02}(" + _py2_str(b"data") + array + _py2_str(b"labels") + label_list + b"u."


def test_cifar10_reads_python2_pickles(tmp_path: Path) -> None:
    folder = _write_cifar10(tmp_path / "cifar-10-batches-py")
    (folder / "data_batch_1").write_bytes(_py2_pickle(_cifar_images(2, 5), [3, 7]))
    splits = load_splits(DataConfig("cifar10", root=tmp_path, val_fraction=0.0, normalization=None))
    expected = torch.from_numpy(_cifar_images(2, 5).reshape(2, 3, 32, 32)).float() / 255
    assert torch.equal(splits.train.dataset.tensors[0][:2], expected)
    assert labels_of(splits.train).tolist()[:2] == [3, 7] and len(splits.train) == 18


def test_cifar10_val_split_normalisation_and_resolution(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    splits = load_splits(DataConfig("cifar10", root=tmp_path, val_fraction=0.5, resolution=16))
    counts = np.bincount(labels_of(splits.train.dataset), minlength=10)
    assert len(splits.val) == sum(_floor_half(0.5, n) for n in counts) == 12
    assert len(splits.train) == 8
    assert splits.test[0][0].shape == (3, 16, 16)
    raw = load_splits(DataConfig("cifar10", root=tmp_path, normalization=None)).test.tensors[0]
    norm = STANDARD_NORMALIZATION["cifar10"]
    normalised = load_splits(DataConfig("cifar10", root=tmp_path)).test.tensors[0]
    assert torch.equal(normalised, norm.apply(raw))


def test_cifar100_loads(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(
        folder / "train", {b"data": _cifar_images(6, 0), b"fine_labels": [0, 99, 5, 5, 7, 0], b"coarse_labels": [0] * 6}
    )
    _dump(folder / "test", {b"data": _cifar_images(2, 1), b"fine_labels": [42, 3], b"coarse_labels": [1, 1]})
    _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)], b"coarse_label_names": []})
    splits = load_splits(DataConfig("cifar100", root=tmp_path, val_fraction=0.0))
    assert splits.num_classes == 100 and splits.class_names[99] == "c99"
    assert labels_of(splits.train).tolist() == [0, 99, 5, 5, 7, 0]
    assert labels_of(splits.test).tolist() == [42, 3]


def test_cifar_missing_root_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path / 'nope'))} is not a directory.*cifar-10-batches-py"):
        load_splits(DataConfig("cifar10", root=tmp_path / "nope"))
    folder = _write_cifar10(tmp_path / "cifar-10-batches-py")
    os.remove(folder / "data_batch_3")
    os.remove(folder / "batches.meta")
    with pytest.raises(DataError) as info:
        load_splits(DataConfig("cifar10", root=tmp_path))
    message = str(info.value)
    assert f"{folder} lacks data_batch_3, batches.meta" in message
    assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({b"labels": [0]}, "field 'data' is missing"),
        ({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}, r"field 'data' must be a uint8 array of shape"),
        ({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, r"field 'data' must be a uint8 array.*float32"),
        ({b"data": _cifar_images(2, 0)}, "field 'labels' is missing"),
        ({b"data": _cifar_images(2, 0), b"labels": [0]}, "field 'labels' has 1 labels for 2 images"),
        ({b"data": _cifar_images(1, 0), b"labels": [10]}, r"field 'labels' holds labels outside 0\.\.9"),
        ([1, 2], "expected a pickled dict, found list"),
    ],
)
def test_cifar_malformed_batch_names_file_and_field(tmp_path: Path, content: object, expected: str) -> None:
    folder = _write_cifar10(tmp_path / "cifar-10-batches-py")
    _dump(folder / "data_batch_2", content)
    with pytest.raises(DataError, match=f"data_batch_2: {expected}"):
        load_splits(DataConfig("cifar10", root=tmp_path))


def test_cifar_garbage_and_code_are_rejected(tmp_path: Path) -> None:
    folder = _write_cifar10(tmp_path / "cifar-10-batches-py")
    (folder / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="test_batch: not a CIFAR python-pickle file"):
        load_splits(DataConfig("cifar10", root=tmp_path))
    marker = tmp_path / "executed"
    (folder / "test_batch").write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(DataError, match=r"global (posix|os)\.system is not allowed"):
        load_splits(DataConfig("cifar10", root=tmp_path))
    assert not marker.exists()
    _dump(folder / "test_batch", {b"data": _cifar_images(1, 0), b"labels": [1]})
    _dump(folder / "batches.meta", {b"label_names": [b"a", b"b"]})
    with pytest.raises(DataError, match=r"batches\.meta: field 'label_names' must list 10 class names"):
        load_splits(DataConfig("cifar10", root=tmp_path))


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --- ImageNet ---------------------------------------------------------------------------------------------------


def test_imagenet_missing_or_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=f"{re.escape(str(tmp_path / 'in'))} is not a directory; expected .*train/<class>/"
    ):
        load_splits(DataConfig("imagenet", root=tmp_path / "in"))
    (tmp_path / "train" / "n01").mkdir(parents=True)
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path / 'train'))} holds no class folders with images"):
        load_splits(DataConfig("imagenet", root=tmp_path))
    (tmp_path / "train" / "n01" / "a.JPEG").write_bytes(b"")
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path / 'val'))} is not a directory"):
        load_splits(DataConfig("imagenet", root=tmp_path))
    (tmp_path / "val" / "n99").mkdir(parents=True)
    (tmp_path / "val" / "n99" / "b.png").write_bytes(b"")
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path / 'val'))} has class folders not in .*: n99"):
        load_splits(DataConfig("imagenet", root=tmp_path))


def test_imagenet_without_pillow_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for split in ("train", "val"):
        (tmp_path / split / "n01").mkdir(parents=True)
        (tmp_path / split / "n01" / "x.jpeg").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataError, match="reading ImageNet needs Pillow"):
        load_splits(DataConfig("imagenet", root=tmp_path))


def test_imagenet_image_folder(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image", reason="Pillow (optional, for ImageNet) is not installed")
    colours = {"n02": (255, 0, 0), "n01": (0, 255, 0), "n03": (0, 0, 255)}
    for split, count in (("train", 4), ("val", 1)):
        for name, colour in colours.items():
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                image_module.new("RGB", (12 + k, 10), colour).save(folder / f"img{k}.png")
    (tmp_path / "train" / "n01" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "n01" / "img9.JPEG").write_bytes(b"")  # listed, decoded only when read
    splits = load_splits(DataConfig("imagenet", root=tmp_path, resolution=8, val_fraction=0.2, normalization=None))
    assert splits.class_names == ("n01", "n02", "n03")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 3, 3)
    assert labels_of(splits.test).tolist() == [0, 1, 2]
    for index, colour in enumerate(((0, 255, 0), (255, 0, 0), (0, 0, 255))):
        image, label = splits.test[index]
        assert label == index and image.shape == (3, 8, 8)
        expected = torch.tensor(colour, dtype=torch.float32).div(255).view(3, 1, 1).expand(3, 8, 8)
        assert torch.allclose(image, expected, rtol=0, atol=1e-6)
    jpeg = tmp_path / "train" / "n02" / "photo.JPEG"
    image_module.new("RGB", (30, 20), (200, 100, 50)).save(jpeg, format="JPEG", quality=95)
    with_jpeg = load_splits(DataConfig("imagenet", root=tmp_path, resolution=8, val_fraction=0.0, normalization=None))
    decoded, label = with_jpeg.train.dataset[with_jpeg.train.dataset.samples.index((jpeg, 1))]
    expected = torch.tensor([200, 100, 50], dtype=torch.float32).div(255).view(3, 1, 1).expand(3, 8, 8)
    assert label == 1 and torch.allclose(decoded, expected, rtol=0, atol=0.02)  # JPEG is lossy
    broken = splits.train.dataset.samples.index((tmp_path / "train" / "n01" / "img9.JPEG", 0))
    with pytest.raises(DataError, match=r"cannot decode .*img9\.JPEG"):
        splits.train.dataset[broken]


# --- loaders ----------------------------------------------------------------------------------------------------


def _order(loader) -> list[int]:
    return [int(i) for batch in loader for i in batch[0]]


def test_make_loader_order_is_fixed_by_seed_and_epoch() -> None:
    dataset = TensorDataset(torch.arange(23))
    first = _order(make_loader(dataset, batch_size=5, seed=7, epoch=0))
    assert sorted(first) == list(range(23)) and first != list(range(23))
    assert _order(make_loader(dataset, batch_size=5, seed=7, epoch=0)) == first
    assert _order(make_loader(dataset, batch_size=5, seed=7, epoch=1)) != first
    assert _order(make_loader(dataset, batch_size=5, seed=8, epoch=0)) != first
    assert _order(make_loader(dataset, batch_size=5, shuffle=False)) == list(range(23))
    resumed = make_loader(dataset, batch_size=5, seed=7, epoch=0, skip_batches=2)
    assert _order(resumed) == first[10:] and len(resumed) == 3


def test_sampler_shards_across_ranks_and_batch_counts() -> None:
    shards = [EpochSampler(11, batch_size=2, seed=1, rank=r, world_size=3).epoch_indices() for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set().union(*shards) == set(range(11))
    full = EpochSampler(11, batch_size=2, seed=1).epoch_indices()
    assert shards[1] == (full + full[:1])[1::3]
    assert batches_per_epoch(23, 5) == 5 and batches_per_epoch(23, 5, drop_last=True) == 4
    assert batches_per_epoch(11, 2, world_size=3) == 2
    with pytest.raises(DataError, match="rank must be in"):
        EpochSampler(4, batch_size=1, rank=2, world_size=2)


def test_digits32_is_made_from_each_splits_own_digits_deterministically() -> None:
    """digits32 (issue #12, item 5): 32x32 renderings of the embedded digits; the test split (>= 3000 images) is
    rendered from the held-out test digits only, the same on every load."""
    import numpy as np
    from sklearn.datasets import load_digits

    from jaqc.data import (
        DIGITS32_COPIES,
        DIGITS32_MEAN,
        DIGITS32_SEEDS,
        DIGITS32_STD,
        DIGITS_TEST_FRACTION,
        DIGITS_TEST_SEED,
    )
    from jaqc.digits32 import render

    config = DataConfig("digits32", channels=1, normalization=None)
    splits = load_splits(config)
    assert len(splits.test) >= 3000 and splits.test[0][0].shape == (1, 32, 32)
    digits = load_digits()
    labels = np.asarray(digits.target, dtype=np.int64)
    _, test_idx = stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    images = torch.from_numpy(np.asarray(digits.images, dtype=np.float32) / 16.0).unsqueeze(1)
    expected, expected_labels = render(images[test_idx], torch.from_numpy(labels[test_idx]), 10, DIGITS32_SEEDS["test"])
    assert DIGITS32_COPIES["test"] == 10 and len(splits.test) == 10 * len(test_idx)
    assert torch.equal(splits.test.tensors[0], expected) and torch.equal(splits.test.tensors[1], expected_labels)
    again = load_splits(config)
    assert torch.equal(again.train.tensors[0], splits.train.tensors[0])
    val_digits = len(splits.val) // DIGITS32_COPIES["val"]
    assert len(splits.train) == DIGITS32_COPIES["train"] * (len(labels) - len(test_idx) - val_digits)
    train = splits.train.tensors[0]
    assert float(train.min()) >= 0.0 and float(train.max()) <= 1.0
    # the standard normalization is the train split's own statistics (to the 4 decimals it is written with)
    assert abs(float(train.mean()) - DIGITS32_MEAN) < 6e-5 and abs(float(train.std()) - DIGITS32_STD) < 6e-5
    with pytest.raises(DataError, match="root must not be set for digits32"):
        DataConfig("digits32", root="/tmp")
    rgb = load_splits(DataConfig("digits32", channels=3))
    assert rgb.train[0][0].shape == (3, 32, 32)


def test_digits32_preset_has_cifar_sized_layers_where_k3_selects_several_channels() -> None:
    import math

    from jaqc.search.presets import search_preset

    preset = search_preset("digits32")
    config = preset.supernet
    assert (preset.data.name, config.input_size, config.num_blocks) == ("digits32", 32, 8)
    widest = max(cout * 6 for _, cout, _ in config.block_specs())  # inside the e6 ops
    k = config.quant.csq_k_percent
    assert math.ceil(k / 100 * max(c for _, c, _ in config.block_specs())) >= 3 and math.ceil(k / 100 * widest) >= 20
