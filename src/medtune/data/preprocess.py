"""Preprocess: decode every accepted file once into one contiguous float32 array on disk.

images.npy is (N, C, S, S) float32 in [0, 1], written through a memory map so memory stays flat;
the training loader memory-maps it back and never decodes DICOM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from medtune.choices import CHANNELS, FRAME_POLICIES, WINDOWS
from medtune.config import ParamSpec, PreprocessCfg, TrainCfg, largest
from medtune.data.dicom import read_dicom
from medtune.data.header import RejectedFile
from medtune.data.limits import FileLimits
from medtune.data.pixels import decode_channels
from medtune.data.pool import supervised_map
from medtune.errors import ConfigError, DataError
from medtune.jsonio import atomic_path

INDEX_COLUMNS = ("sample_id", "patient_key", "label", "target", "split", "modality", "manufacturer")
CHUNK = 16


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W) or (C, H, W) to size x size: INTER_AREA when shrinking, INTER_LINEAR when enlarging.

    The aspect ratio is not kept: radiographs are near square and a fixed grid is what the CNNs expect.
    """
    if image.ndim == 3:
        return np.stack([resize(plane, size) for plane in image])
    shrinking = image.shape[0] > size or image.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def pixel_hash(image: np.ndarray) -> str:
    """sha1 of the image quantised to uint8: equal for the same picture saved twice under new UIDs."""
    return hashlib.sha1(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).tobytes()).hexdigest()


def load_sample(
    path: Path, image_size: int, window: str = "header", percentiles: tuple[float, float] = (0.5, 99.5),
    channels: int = 1, frame: int | None = None,
) -> tuple[np.ndarray | None, str]:
    """Decode and resize one frame to float32 (C, S, S); (None, reason) when it cannot be decoded."""
    try:
        image = resize(decode_channels(read_dicom(path), window, percentiles, channels, frame), image_size)
    except RejectedFile as exc:
        return None, exc.reason
    except ValueError:  # a frame index the file does not have (the file changed since ingest)
        return None, "decode_error"
    return image.astype(np.float32), pixel_hash(image)


def load_image(
    path: Path, image_size: int, window: str, percentiles: tuple[float, float]
) -> tuple[np.ndarray | None, str]:
    """Decode and resize one file's (middle) frame to float32 (S, S) grayscale; (None, reason) on failure."""
    image, info = load_sample(path, image_size, window, percentiles)
    return (None if image is None else image[0]), info


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
    limits: FileLimits = FileLimits(),
    plugins: Sequence[str] = (),
) -> pd.DataFrame:
    """Write every sample to out_images, a (N, C, S, S) float32 .npy in [0, 1]; return the index.

    Rows are streamed into a memory-mapped file, so memory stays flat whatever N is. Index row i
    describes images[i]; pixel_hash lets the split stage find the same picture in two splits.
    The array is written to a temp file and renamed into place when complete (never half an images.npy);
    a decode running past `limits.timeout_s` fails the stage with one line instead of hanging it.
    """
    if window not in WINDOWS:
        raise DataError(f"preprocess: window {window!r} is not one of {', '.join(WINDOWS)}")
    if channels not in CHANNELS:
        raise DataError(f"preprocess: channels {channels!r} is not one of 1, 3")
    if manifest.empty:
        raise DataError("preprocess: the manifest has no rows; run ingest on a folder with usable images")
    samples = expand_frames(manifest, frames)
    raw_dir, out_images = Path(raw_dir), Path(out_images)
    out_images.parent.mkdir(parents=True, exist_ok=True)
    tasks = list(zip(samples["path"], samples["frame"].astype(int)))
    with atomic_path(out_images) as tmp:
        images = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(len(tasks), channels, image_size, image_size)
        )
        hashes = []
        try:
            decoded = _decode_all(tasks, raw_dir, image_size, window, percentiles, channels, workers,
                                  limits, plugins)
            for row, (image, info) in enumerate(decoded):
                if image is None:
                    raise DataError(f"{raw_dir / tasks[row][0]}: cannot be decoded ({info}); re-run ingest")
                images[row] = image
                hashes.append(info)
            images.flush()
        finally:
            del images  # closes the memory map
    index = pd.DataFrame({"row": np.arange(len(tasks))})
    for column in INDEX_COLUMNS:
        if column in samples.columns:
            index[column] = samples[column].to_numpy()
    index["pixel_hash"] = hashes
    if frames == "all":
        index["frame"] = samples["frame"].to_numpy()
    return index


def _decode_all(
    tasks: list[tuple[str, int]], raw_dir: Path, image_size: int, window: str,
    percentiles: tuple[float, float], channels: int, workers: int, limits: FileLimits = FileLimits(),
    plugins: Sequence[str] = (),
) -> Iterator[tuple[np.ndarray | None, str]]:
    """Yield (image, pixel_hash or reason) per task in order, in the supervised pool (data/pool.py)."""
    load = partial(_load_one, raw_dir=raw_dir, size=image_size, window=window, percentiles=percentiles,
                   channels=channels)
    yield from supervised_map(load, tasks, _failed, workers=workers, timeout_s=limits.timeout_s,
                              memory_mb=limits.worker_memory_mb, chunk=CHUNK, plugins=plugins)


def _load_one(
    task: tuple[str, int], raw_dir: Path, size: int, window: str, percentiles: tuple[float, float], channels: int,
) -> tuple[np.ndarray | None, str]:
    """Pool entry point (module level so it pickles): one (path, frame) sample."""
    rel, frame = task
    return load_sample(raw_dir / rel, size, window, percentiles, channels, frame)


def _failed(task: tuple[str, int], reason: str) -> tuple[None, str]:
    return None, reason


def resolve_settings(cfg: PreprocessCfg, train: TrainCfg, space: tuple[ParamSpec, ...], fingerprint: dict) -> dict:
    """The preprocessing settings to apply: `cfg` with every `auto` replaced by the fingerprint's recommendation."""
    recommended = fingerprint.get("recommended", {})
    size = recommended.get("image_size") if cfg.image_size == "auto" else cfg.image_size
    window = recommended.get("window") if cfg.window == "auto" else cfg.window
    if size is None or window is None:
        raise ConfigError("params.yaml: preprocess: `auto` needs reports/ingest/fingerprint.json; run ingest")
    depth = int(largest("depth", train, space))
    if 2**depth > size:
        raise ConfigError(f"params.yaml: preprocess.image_size: auto chose {size}px, too small for depth "
                          f"{depth}; set image_size to at least {2**depth}")
    return {"image_size": int(size), "window": window, "percentiles": list(cfg.percentiles),
            "channels": cfg.channels, "frames": cfg.frames}
