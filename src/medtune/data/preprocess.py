"""Preprocess: decode every accepted file once into one contiguous float32 array on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from medtune.data.dicom import WINDOWS, RejectedFile, decode_pixels, read_dicom
from medtune.data.ingest import pool_context
from medtune.errors import DataError

INDEX_COLUMNS = ("sample_id", "patient_key", "label", "target", "split", "modality", "manufacturer")


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size: INTER_AREA when shrinking (no aliasing), INTER_LINEAR when enlarging.

    The aspect ratio is not kept: radiographs are near square and a fixed grid is what the CNNs expect.
    """
    shrinking = image.shape[0] > size or image.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def pixel_hash(image: np.ndarray) -> str:
    """sha1 of the image quantised to uint8: equal for the same picture saved twice under new UIDs."""
    return hashlib.sha1(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).tobytes()).hexdigest()


def load_image(
    path: Path, image_size: int, window: str, percentiles: tuple[float, float]
) -> tuple[np.ndarray | None, str]:
    """Decode and resize one file to float32 (S, S); (None, reason) when it cannot be decoded."""
    try:
        image = resize(decode_pixels(read_dicom(path), window, percentiles), image_size)
    except RejectedFile as exc:
        return None, exc.reason
    return image.astype(np.float32), pixel_hash(image)


def preprocess(
    manifest: pd.DataFrame,
    raw_dir: Path,
    out_images: Path,
    image_size: int,
    window: str = "header",
    percentiles: tuple[float, float] = (0.5, 99.5),
    workers: int = 1,
) -> pd.DataFrame:
    """Write every manifest row to out_images, a (N, 1, S, S) float32 .npy in [0, 1]; return the index.

    Rows are streamed into a memory-mapped file, so memory stays flat whatever N is. Index row i
    describes images[i]; pixel_hash lets the split stage find the same picture in two splits.
    """
    if window not in WINDOWS:
        raise DataError(f"preprocess: window {window!r} is not one of {', '.join(WINDOWS)}")
    if manifest.empty:
        raise DataError("preprocess: the manifest has no rows; run ingest on a folder with usable images")
    raw_dir, out_images = Path(raw_dir), Path(out_images)
    out_images.parent.mkdir(parents=True, exist_ok=True)
    paths = manifest["path"].tolist()
    images = np.lib.format.open_memmap(
        out_images, mode="w+", dtype=np.float32, shape=(len(paths), 1, image_size, image_size)
    )
    hashes = []
    try:
        for row, (image, info) in enumerate(_decode_all(paths, raw_dir, image_size, window, percentiles, workers)):
            if image is None:
                raise DataError(f"{raw_dir / paths[row]}: cannot be decoded ({info}); re-run ingest")
            images[row, 0] = image
            hashes.append(info)
        images.flush()
    finally:
        del images  # closes the memory map
    index = pd.DataFrame({"row": np.arange(len(paths))})
    for column in INDEX_COLUMNS:
        if column in manifest.columns:
            index[column] = manifest[column].to_numpy()
    index["pixel_hash"] = hashes
    return index


def _decode_all(
    paths: list[str], raw_dir: Path, image_size: int, window: str,
    percentiles: tuple[float, float], workers: int,
) -> Iterator[tuple[np.ndarray | None, str]]:
    """Yield (image, pixel_hash or reason) per path in order, in a process pool when workers > 1."""
    load = partial(_load_task, raw_dir=raw_dir, size=image_size, window=window, percentiles=percentiles)
    if workers <= 1:
        yield from map(load, paths)
        return
    chunk = max(1, min(32, len(paths) // (workers * 8)))
    with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
        yield from pool.map(load, paths, chunksize=chunk)


def _load_task(
    rel: str, raw_dir: Path, size: int, window: str, percentiles: tuple[float, float]
) -> tuple[np.ndarray | None, str]:
    """Pool entry point (module level so it pickles)."""
    return load_image(raw_dir / rel, size, window, percentiles)
