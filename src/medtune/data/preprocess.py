"""Preprocess: decode every accepted file once into one compact image store on disk.

images.npy is (N, C, S, S) uint8 (or uint16), windowed and resized as preprocess.* says, written through
a memory map so memory stays flat and renamed into place only when complete (data/store.py); the
training loader memory-maps it back and never decodes DICOM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset

from medtune.choices import FRAME_POLICIES
from medtune.config import ParamSpec, PreprocessCfg, TrainCfg
from medtune.config.space import min_image_size
from medtune.data.dicom import read_dicom
from medtune.data.geometry import resize
from medtune.data.header import RejectedFile
from medtune.data.limits import FileLimits
from medtune.data.pixels import decode_channels
from medtune.data.pool import supervised_map
from medtune.data.store import open_store, to_store
from medtune.errors import ConfigError, DataError

# patient_order: ingest's key-independent patient rank, which orders the seeded grouped split.
INDEX_COLUMNS = ("sample_id", "patient_key", "patient_order", "label", "target", "targets", "split", "modality",
                 "manufacturer")
CHUNK = 16


def pixel_hash(image: np.ndarray) -> str:
    """sha1 of the image quantised to uint8: equal for the same picture saved twice under new UIDs."""
    return hashlib.sha1(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).tobytes()).hexdigest()


def decode_sample(
    ds: Dataset, image_size: int, window: str = "header", percentiles: tuple[float, float] = (0.5, 99.5),
    channels: int = 1, resize_mode: str = "pad", frame: int | None = None,
) -> np.ndarray:
    """One frame as float32 (C, S, S) in [0, 1]: the decode chain training and predict share.

    Raises RejectedFile when the pixels cannot be used; ValueError for a frame the file does not have.
    """
    image = decode_channels(ds, window, percentiles, channels, frame)
    return resize(image, image_size, resize_mode).astype(np.float32)


def load_sample(
    path: Path, image_size: int, window: str = "header", percentiles: tuple[float, float] = (0.5, 99.5),
    channels: int = 1, frame: int | None = None, resize_mode: str = "pad", bits: int = 8,
) -> tuple[np.ndarray | None, str]:
    """One frame as the store's (C, S, S) integers and its pixel hash; (None, reason) on failure."""
    try:
        image = decode_sample(read_dicom(path), image_size, window, percentiles, channels, resize_mode, frame)
    except RejectedFile as exc:
        return None, exc.reason
    except ValueError:  # a frame index the file does not have (the file changed since ingest)
        return None, "decode_error"
    return to_store(image, bits), pixel_hash(image)


def expand_frames(manifest: pd.DataFrame, frames: str) -> pd.DataFrame:
    """One row per sample: per file (its middle frame) or, with frames='all', per frame of every file.

    Frames of one file share patient_key, so a patient-grouped split keeps them together.
    """
    if frames not in FRAME_POLICIES:
        raise DataError(f"preprocess: frames {frames!r} is not one of {', '.join(FRAME_POLICIES)}")
    counts = manifest["frames"].clip(lower=1).astype(int) if "frames" in manifest else pd.Series(1, manifest.index)
    if frames == "middle":
        return manifest.assign(frame=(counts // 2).where(counts > 1, 0)).reset_index(drop=True)
    out = manifest.loc[manifest.index.repeat(counts)].copy()
    out["frame"] = out.groupby(level=0).cumcount().to_numpy()
    multi = out.index.map(counts) > 1
    out.loc[multi, "sample_id"] = out.loc[multi, "sample_id"] + "-f" + out.loc[multi, "frame"].astype(str)
    return out.reset_index(drop=True)


def preprocess(
    manifest: pd.DataFrame,
    raw_dir: Path,
    out_images: Path,
    image_size: int,
    window: str = "header",
    percentiles: tuple[float, float] = (0.5, 99.5),
    workers: int = 1,
    channels: int = 1,
    frames: str = "middle",
    resize_mode: str = "pad",
    bits: int = 8,
    limits: FileLimits = FileLimits(),
    plugins: Sequence[str] = (),
) -> pd.DataFrame:
    """Write every sample to out_images, a (N, C, S, S) uint8/uint16 .npy; return the index.

    Rows are streamed into a memory-mapped file, so memory stays flat whatever N is, and the file
    appears only when complete. Index row i describes images[i]; pixel_hash lets the split stage find
    the same picture in two splits. A decode running past `limits.timeout_s` fails the stage with one
    line instead of hanging it.
    """
    if manifest.empty:
        raise DataError("preprocess: the manifest has no rows; run ingest on a folder with usable images")
    samples = expand_frames(manifest, frames)
    raw_dir, out_images = Path(raw_dir), Path(out_images)
    out_images.parent.mkdir(parents=True, exist_ok=True)
    tasks = list(zip(samples["path"], samples["frame"].astype(int)))
    load = partial(_load_one, raw_dir=raw_dir, size=image_size, window=window, percentiles=percentiles,
                   channels=channels, resize_mode=resize_mode, bits=bits)
    decoded = supervised_map(load, tasks, _failed, workers=workers, timeout_s=limits.timeout_s,
                             memory_mb=limits.worker_memory_mb, chunk=CHUNK, plugins=plugins)
    hashes = []
    with open_store(out_images, (len(tasks), channels, image_size, image_size), bits) as images:
        for row, (image, info) in enumerate(decoded):
            if image is None:
                raise DataError(f"{raw_dir / tasks[row][0]}: cannot be decoded ({info}); re-run ingest")
            images[row] = image
            hashes.append(info)
    index = pd.DataFrame({"row": np.arange(len(tasks))})
    for column in INDEX_COLUMNS:
        if column in samples.columns:
            index[column] = samples[column].to_numpy()
    index["pixel_hash"] = hashes
    if frames == "all":
        index["frame"] = samples["frame"].to_numpy()
    return index


def _load_one(
    task: tuple[str, int], raw_dir: Path, size: int, window: str, percentiles: tuple[float, float], channels: int,
    resize_mode: str, bits: int,
) -> tuple[np.ndarray | None, str]:
    """Pool entry point (module level so it pickles): one (path, frame) sample."""
    rel, frame = task
    return load_sample(raw_dir / rel, size, window, percentiles, channels, frame, resize_mode, bits)


def _failed(task: tuple[str, int], reason: str) -> tuple[None, str]:
    return None, reason


def resolve_settings(cfg: PreprocessCfg, train: TrainCfg, space: tuple[ParamSpec, ...], fingerprint: dict) -> dict:
    """The preprocessing settings to apply: `cfg` with every `auto` replaced by the fingerprint's recommendation."""
    recommended = fingerprint.get("recommended", {})
    size = recommended.get("image_size") if cfg.image_size == "auto" else cfg.image_size
    window = recommended.get("window") if cfg.window == "auto" else cfg.window
    if size is None or window is None:
        raise ConfigError("params.yaml: preprocess: `auto` needs reports/ingest/fingerprint.json; run ingest")
    need, why = min_image_size(train, space)
    if need > size:
        raise ConfigError(f"params.yaml: preprocess.image_size: auto chose {size}px, too small for the "
                          f"networks searched ({why}); set image_size to at least {need}")
    return {"image_size": int(size), "window": window, "percentiles": list(cfg.percentiles),
            "channels": cfg.channels, "frames": cfg.frames, "resize": cfg.resize, "bits": cfg.bits}
