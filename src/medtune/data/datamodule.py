"""Splits and DataLoaders over the preprocessed cohort (images.npy + index.parquet + splits.json).

`load_split` is the single door to images: it refuses the test split unless the caller says
`allow_test=True`, which only the `test` stage does. Training and tuning go through `load_train_data`,
which reads train and val and nothing else. A split's images are an `ImageArray`, a lazy view over the
memory-mapped store: no split is ever copied into memory, and loaders read one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from medtune.data.store import ImageArray
from medtune.data.transforms import train_transform
from medtune.errors import DataError
from medtune.task import Task, read_task

if TYPE_CHECKING:
    import albumentations as A

INDEX_COLUMNS = ("row", "sample_id", "patient_key", "label")  # and `target` or (multilabel) `targets`


@dataclass
class SplitArrays:
    """One split: its images (a lazy (N, C, S, S) view; slices are float32 in [0, 1]), targets, identities.

    `y` is int64 (N,) classes, float32 (N, L) multilabel targets (NaN: not read) or float32 (N,) values.
    """

    x: ImageArray
    y: np.ndarray
    sample_ids: list[str]
    patient_keys: list[str]

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class TrainData:
    """What training and tuning may see: train and val, plus the label space."""

    train: SplitArrays
    val: SplitArrays
    task: Task

    @property
    def image_size(self) -> int:
        return int(self.train.x.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train.x.shape[1])


def read_index(processed_dir: Path) -> pd.DataFrame:
    """index.parquet with its required columns checked, so a stale or foreign file fails in one line."""
    path = Path(processed_dir) / "index.parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found; run the `preprocess` stage first")
    index = pd.read_parquet(path)
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    missing += [] if {"target", "targets"} & set(index.columns) else ["target"]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    return index


def targets_of(rows: pd.DataFrame) -> np.ndarray:
    """The training targets of index rows: class indices, values, or (multilabel) a float matrix."""
    if "targets" in rows.columns:
        return np.array([list(t) for t in rows["targets"]], dtype=np.float32).reshape(len(rows), -1)
    target = rows["target"].to_numpy()
    return target.astype(np.float32) if np.issubdtype(target.dtype, np.floating) else target.astype(np.int64)


def load_split(processed_dir: Path, splits: dict, name: str, *, allow_test: bool = False) -> SplitArrays:
    """Rows of one split, copied out of the memory-mapped image array in the split file's order."""
    if name == "test" and not allow_test:
        raise DataError("the test split is only read by the `test` stage")
    if name not in splits:
        raise DataError(f"splits.json: no '{name}' split; has {sorted(splits)}")
    processed_dir = Path(processed_dir)
    index = read_index(processed_dir).set_index("sample_id", drop=False)
    ids = [str(s) for s in splits[name]]
    unknown = [s for s in ids if s not in index.index]
    if unknown:
        raise DataError(f"splits.json: {len(unknown)} '{name}' id(s) not in index.parquet, e.g. {unknown[0]!r}")
    if not ids:
        raise DataError(f"splits.json: the '{name}' split is empty")
    rows_df = index.loc[ids]
    images = ImageArray(processed_dir / "images.npy", rows_df["row"].to_numpy(dtype=np.int64))
    images.open()  # a missing file or a short one fails here, in one line, not in the first batch
    return SplitArrays(
        x=images,
        y=targets_of(rows_df),
        sample_ids=rows_df["sample_id"].astype(str).tolist(),
        patient_keys=rows_df["patient_key"].astype(str).tolist(),
    )


def load_train_data(processed_dir: Path, splits: dict) -> TrainData:
    """Train and val splits plus the task; never touches the test split."""
    return TrainData(train=load_split(processed_dir, splits, "train"), val=load_split(processed_dir, splits, "val"),
                     task=read_task(Path(processed_dir) / "task.json"))


class ImageDataset(Dataset):
    """(image, target) pairs read from the store one sample at a time; `transform` (train only) augments.

    uint8 images stay uint8 all the way to the device (a quarter of float32's bytes through the loader);
    other stores are normalised to float32 here. The LightningModule normalises uint8 per batch.
    """

    def __init__(self, images: ImageArray, y: np.ndarray, transform: A.Compose | None = None) -> None:
        self.images, self.y, self.transform = images, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images.raw(i)
        if image.dtype != np.uint8:
            image = (image / self.images.scale).astype(np.float32)
        if self.transform is not None:
            image = self._augment(image)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.as_tensor(self.y[i])

    def _augment(self, image: np.ndarray) -> np.ndarray:
        # albumentations wants (H, W) or (H, W, C); the store is channel-first.
        if image.shape[0] == 1:
            return self.transform(image=image[0])["image"][None]
        return self.transform(image=image.transpose(1, 2, 0))["image"].transpose(2, 0, 1)

    def reseed(self, seed: int) -> None:
        """Give this copy its own augmentation stream (each DataLoader worker holds a copy)."""
        if self.transform is not None:
            self.transform.set_random_seed(seed)


def _seed_worker(worker_id: int) -> None:
    """Without this every worker would replay the same augmentations; torch derives a distinct,
    generator-determined seed per worker, so runs stay reproducible."""
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, ImageDataset):
        info.dataset.reseed(info.seed % 2**32)


def make_loaders(
    data: TrainData, batch_size: int, augment: float, num_workers: int, seed: int
) -> tuple[DataLoader, DataLoader]:
    """Shuffled, augmented train loader (seeded) and a fixed-order, unaugmented val loader."""
    train_ds = ImageDataset(data.train.x, data.train.y, train_transform(augment, seed=seed))
    val_ds = ImageDataset(data.val.x, data.val.y, None)
    workers: dict[str, object] = {"num_workers": num_workers, "pin_memory": torch.cuda.is_available()}
    if num_workers > 0:
        workers.update(persistent_workers=True, worker_init_fn=_seed_worker)
    # A last batch of one sample breaks BatchNorm once the feature map is 1x1; drop only that case.
    drop_last = len(train_ds) % batch_size == 1 and len(train_ds) > batch_size
    train = DataLoader(
        train_ds,
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),
        **workers,  # type: ignore[arg-type]
    )
    # Val order is the split file's order, so val predictions line up with data.val.sample_ids.
    val = DataLoader(val_ds, batch_size=max(batch_size, 256), shuffle=False, **workers)  # type: ignore[arg-type]
    return train, val

