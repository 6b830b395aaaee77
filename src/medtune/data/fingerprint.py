"""Dataset fingerprint (after nnU-Net's): what the cohort looks like, and the `auto` defaults it implies.

Built from the manifest (allow-listed header fields only) and a seeded sample of decoded pixel values,
so it is safe to publish: no identifiers, no file paths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AUTO_SIZE_RANGE = (32, 256)  # `image_size: auto` stays within this range (pixels)
AUTO_SIZE_STEP = 16  # ... and is a multiple of this (keeps every conv block's halving exact)


def build_fingerprint(
    manifest: pd.DataFrame, rejected: pd.DataFrame, intensities: dict[str, list[np.ndarray]],
    n_duplicate_pixels: int, n_missing_patient_id: int, orphan_labels: int,
) -> dict:
    """Counts, classes, patients, vendors, sizes, spacings, intensities and recommended settings."""
    per_patient = manifest.groupby("patient_key").size()
    sizes = (manifest["rows"].astype(str) + "x" + manifest["columns"].astype(str)).value_counts()
    return {
        "n_scanned": len(manifest) + len(rejected),
        "n_accepted": len(manifest),
        "n_rejected": len(rejected),
        "rejected_by_reason": counts(rejected["reason"]),
        "orphan_labels": orphan_labels,
        "n_patients": int(per_patient.size),
        "n_missing_patient_id": int(n_missing_patient_id),
        "images_per_patient": {
            "min": int(per_patient.min()), "median": float(per_patient.median()), "max": int(per_patient.max()),
        },
        "modalities": counts(manifest["modality"]),
        "manufacturers": counts(manifest["manufacturer"]),
        "models": counts(manifest["model"]),
        "body_parts": counts(manifest["body_part"]),
        "photometric": counts(manifest["photometric"]),
        "transfer_syntaxes": counts(manifest["transfer_syntax"]),
        "sizes": {str(k): int(v) for k, v in sizes.items()},
        "median_size": [float(manifest["rows"].median()), float(manifest["columns"].median())],
        "spacings": counts(manifest["pixel_spacing"].replace("", "unknown")),
        "median_spacing_mm": _median_spacing(manifest["pixel_spacing"]),
        "frames": {"multi_frame_files": int((manifest["frames"] > 1).sum()),
                   "total_frames": int(manifest["frames"].clip(lower=1).sum())},
        "fraction_with_header_window": float(manifest["has_window"].astype(bool).mean()),
        "n_duplicate_pixels": int(n_duplicate_pixels),
        "intensity": intensity_stats(intensities),
        "recommended": {"image_size": auto_image_size(manifest), "window": auto_window(manifest)},
    }


def counts(values: pd.Series) -> dict[str, int]:
    """value -> count as plain JSON types, most frequent first."""
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _median_spacing(spacings: pd.Series) -> list[float] | None:
    """Median (row, col) spacing in mm over files that state one; None when none does."""
    parsed = [tuple(map(float, s.split("\\")[:2])) for s in spacings if s and s.count("\\") >= 1]
    return [float(v) for v in np.median(np.array(parsed), axis=0)] if parsed else None


def intensity_stats(intensities: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per-modality percentiles, mean and std of the sampled pixel values (modality units)."""
    stats = {}
    for modality, chunks in sorted(intensities.items()):
        values = np.concatenate(chunks).astype(np.float64)
        p005, p50, p995 = np.percentile(values, [0.5, 50, 99.5])
        stats[modality] = {
            "n_images": len(chunks), "p00_5": float(p005), "p50": float(p50), "p99_5": float(p995),
            "mean": float(values.mean()), "std": float(values.std()),
        }
    return stats


def auto_image_size(manifest: pd.DataFrame) -> int:
    """Median shorter side, rounded down to a multiple of AUTO_SIZE_STEP, within AUTO_SIZE_RANGE."""
    short = float(np.minimum(manifest["rows"], manifest["columns"]).median())
    size = int(short // AUTO_SIZE_STEP * AUTO_SIZE_STEP)
    return int(min(max(size, AUTO_SIZE_RANGE[0]), AUTO_SIZE_RANGE[1]))


def auto_window(manifest: pd.DataFrame) -> str:
    """`header` when most files carry a VOI LUT or window, else `percentile` clipping."""
    return "header" if manifest["has_window"].astype(bool).mean() > 0.5 else "percentile"
