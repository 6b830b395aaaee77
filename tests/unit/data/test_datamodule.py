"""Split loading (the test-split door) and the DataLoaders built on it, over real .npy/.parquet files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medtune.data.datamodule import (
    ImageDataset,
    SplitArrays,
    TrainData,
    load_split,
    load_train_data,
    make_loaders,
)
from medtune.data.store import ImageArray
from medtune.data.transforms import train_transform
from medtune.errors import DataError
from medtune.task import Task, write_task

N, SIZE = 30, 16


@pytest.fixture
def processed(tmp_path: Path) -> tuple[Path, dict]:
    """30 uint8 images whose pixel value encodes their row (8 * row), three classes, rows shuffled."""
    torch.set_num_threads(1)
    rows = np.arange(N)
    x = (8 * rows[:, None, None, None] * np.ones((N, 1, SIZE, SIZE))).astype(np.uint8)
    np.save(tmp_path / "images.npy", x)
    order = np.random.default_rng(0).permutation(N)  # index order differs from array order
    names = np.array(["effusion", "normal", "pneumonia"])
    pd.DataFrame({
        "row": order, "sample_id": [f"id{r:02d}" for r in order], "patient_key": [f"p{r // 2}" for r in order],
        "label": names[order % 3], "target": order % 3,
    }).to_parquet(tmp_path / "index.parquet")
    write_task(Task("multiclass", tuple(names)), tmp_path / "task.json")
    ids = [f"id{r:02d}" for r in range(N)]
    return tmp_path, {"train": ids[:18], "val": ids[18:24][::-1], "test": ids[24:]}


def test_test_split_is_refused_without_allow_test(processed: tuple[Path, dict]) -> None:
    root, splits = processed
    with pytest.raises(DataError, match="only read by the `test` stage"):
        load_split(root, splits, "test")
    assert len(load_split(root, splits, "test", allow_test=True)) == 6


def test_split_rows_follow_the_split_file(processed: tuple[Path, dict]) -> None:
    root, splits = processed
    val = load_split(root, splits, "val")
    assert val.sample_ids == splits["val"]
    expected_rows = [int(s[2:]) for s in splits["val"]]
    pixels = val.x[:]
    np.testing.assert_allclose(pixels[:, 0, 0, 0], 8 * np.array(expected_rows) / 255, rtol=1e-6)
    assert pixels.dtype == np.float32 and val.x.shape == (6, 1, SIZE, SIZE)
    np.testing.assert_array_equal(val.x.raw(slice(None))[:, 0, 0, 0], 8 * np.array(expected_rows))
    assert val.y.dtype == np.int64 and list(val.y) == [r % 3 for r in expected_rows]
    assert val.patient_keys == [f"p{r // 2}" for r in expected_rows]


def test_a_split_is_a_lazy_view_not_a_copy(processed: tuple[Path, dict]) -> None:
    """Ray pickles the splits into every trial: only the path and row numbers may travel."""
    root, splits = processed
    train = load_split(root, splits, "train")
    assert isinstance(train.x, ImageArray) and isinstance(train.x.store, np.memmap)
    shipped = pickle.dumps(train.x)
    assert len(shipped) < 1000 + 8 * len(train)  # no pixels inside
    again = pickle.loads(shipped)
    np.testing.assert_array_equal(again[:], train.x[:])


def test_unknown_ids_and_missing_files_fail_in_one_line(processed: tuple[Path, dict], tmp_path: Path) -> None:
    root, splits = processed
    with pytest.raises(DataError, match="not in index.parquet"):
        load_split(root, {"train": ["nope"]}, "train")
    with pytest.raises(DataError, match="not found"):
        load_split(tmp_path / "missing", splits, "train")


def test_train_data_has_train_and_val_and_class_names(processed: tuple[Path, dict]) -> None:
    root, splits = processed
    data = load_train_data(root, splits)
    assert (len(data.train), len(data.val)) == (18, 6)
    assert data.task == Task("multiclass", ("effusion", "normal", "pneumonia")) and data.task.num_outputs == 3
    assert not set(data.train.sample_ids + data.val.sample_ids) & set(splits["test"])


def test_loaders_yield_batches_of_the_right_shape(processed: tuple[Path, dict]) -> None:
    data = load_train_data(*processed)
    train, val = make_loaders(data, batch_size=4, augment=0.5, num_workers=0, seed=0)
    x, y = next(iter(train))
    assert x.shape == (4, 1, SIZE, SIZE) and x.dtype == torch.uint8  # normalised on the device, per batch
    assert y.shape == (4,) and y.dtype == torch.int64
    assert sum(len(b[1]) for b in train) == 18
    assert sum(len(b[1]) for b in val) == 6


def test_val_order_is_fixed_and_train_shuffle_is_seeded(processed: tuple[Path, dict]) -> None:
    data = load_train_data(*processed)

    def first_pixels(loader: torch.utils.data.DataLoader) -> list[float]:
        return (torch.cat([b[0][:, 0, 0, 0] for b in loader]).float() / 255).tolist()

    train_a, val_a = make_loaders(data, batch_size=4, augment=0.0, num_workers=0, seed=1)
    train_b, val_b = make_loaders(data, batch_size=4, augment=0.0, num_workers=0, seed=1)
    train_c, _ = make_loaders(data, batch_size=4, augment=0.0, num_workers=0, seed=2)
    expected = pytest.approx(list(data.val.x[:][:, 0, 0, 0]))
    assert first_pixels(val_a) == first_pixels(val_a) == first_pixels(val_b) == expected
    assert first_pixels(train_a) == first_pixels(train_b) != first_pixels(train_c)


def test_a_lone_last_batch_is_dropped_for_batch_norm(processed: tuple[Path, dict]) -> None:
    data = load_train_data(*processed)  # 18 train images: batch 17 would leave one behind
    train, _ = make_loaders(data, batch_size=17, augment=0.0, num_workers=0, seed=0)
    assert [len(b[1]) for b in train] == [17]


def _store(tmp_path: Path, x: np.ndarray) -> ImageArray:
    np.save(tmp_path / "images.npy", x)
    return ImageArray(tmp_path / "images.npy", np.arange(len(x)))


def test_image_dataset_augments_channel_first_uint8_images(tmp_path: Path) -> None:
    x = (np.random.default_rng(0).random((2, 1, SIZE, SIZE)) * 255).astype(np.uint8)
    ds = ImageDataset(_store(tmp_path, x), np.array([0, 1]), train_transform(1.0, seed=0))
    image, target = ds[0]
    assert image.shape == (1, SIZE, SIZE) and image.dtype == torch.uint8 and int(target) == 0


def test_a_16_bit_store_reaches_the_model_as_float_in_unit_range(tmp_path: Path) -> None:
    x = np.full((2, 3, SIZE, SIZE), 65535, dtype=np.uint16)
    x[1] = 0
    ds = ImageDataset(_store(tmp_path, x), np.array([0, 1]), train_transform(0.5, seed=0))
    image, _ = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, SIZE, SIZE) and float(image.max()) <= 1.0


def test_each_loader_worker_gets_its_own_reproducible_augmentations(tmp_path: Path) -> None:
    x = np.full((4, 1, SIZE, SIZE), 128, dtype=np.uint8)  # identical images: only the RNG differs
    arrays = SplitArrays(_store(tmp_path, x), np.array([0, 1, 0, 1]), list("abcd"), list("abcd"))
    data = TrainData(arrays, arrays, Task("binary", ("n", "p")))

    def batches() -> list[np.ndarray]:
        train, _ = make_loaders(data, batch_size=2, augment=1.0, num_workers=2, seed=0)
        return [b[0].numpy() for b in train]

    first, again = batches(), batches()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])  # batch 0 and 1 come from different workers
