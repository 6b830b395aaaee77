"""Dataset fingerprint (after nnU-Net's): what the cohort looks like, and the `auto` defaults it implies.

Built from the manifest (allow-listed header fields only) and a seeded sample of decoded pixel values,
so it is safe to publish: no identifiers, no file paths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medtune.data.recommend import (
    header_windows,
    machine_compute,
    recommend_image_size,
    recommend_window,
    size_from_images,
)


def build_fingerprint(
    manifest: pd.DataFrame, rejected: pd.DataFrame, intensities: dict[str, list[np.ndarray]],
    n_duplicate_pixels: int, n_missing_patient_id: int, orphan_labels: int, compute: dict[str, int] | None = None,
) -> dict:
    """Counts, classes, patients, vendors, sizes, spacings, intensities and recommended settings.

    `compute` (cpus, gpus; this machine's when None) weighs the recommended image size.
    """
    per_patient = manifest.groupby("patient_key").size()
    compute = machine_compute() if compute is None else compute
    windows = header_windows(manifest)
    size, size_why = recommend_image_size(manifest, compute)
    window, window_why = recommend_window(manifest, windows)
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
        "header_windows": windows,
        "n_duplicate_pixels": int(n_duplicate_pixels),
        "intensity": intensity_stats(intensities),
        "compute": compute,
        # preprocess reads image_size and window for `auto`; the rest says where they came from.
        "recommended": {"image_size": size, "window": window, "image_size_from_images": size_from_images(manifest),
                        "why": {"image_size": size_why, "window": window_why}},
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


def summary_lines(fp: dict, window: str, image_size: int | str, positive_set: bool,
                  faults: dict[str, int] | None = None) -> list[str]:
    """What ingest prints under its counts: the task, its classes and the positive one, each `auto`
    recommendation beside the params.yaml value (`window`, `image_size`) it would replace, and what the
    worker pool absorbed (files that hung, crashed a worker or hit an unforeseen error: rejected)."""
    task = fp["task"]
    if "per_class" in task:
        what = "classes " + ", ".join(f"{k}={v}" for k, v in task["per_class"].items())
    elif "per_label" in task:
        what = "labels " + ", ".join(f"{k} {v['positive']}+/{v['negative']}-" for k, v in task["per_label"].items())
    else:
        what = f"{task['names'][0]} from {task['distribution']['min']:.3g} to {task['distribution']['max']:.3g}"
    lines = [f"{fp['n_accepted']} images of {fp['n_patients']} patients; task {task['kind']}: {what}"]
    if "positive_label" in task:
        source = "ingest.positive_label" if positive_set else \
            "inferred from the label names; set ingest.positive_label to change it"
        lines[0] += f"; positive class (target 1): {task['positive_label']!r} ({source})"
    rec, why = fp["recommended"], fp["recommended"]["why"]
    lines.append(f"window: params {window}, recommended {rec['window']} ({why['window']})")
    several = fp.get("header_windows", {}).get("files_with_several", 0)
    if several:
        hw = fp["header_windows"]
        common = ", ".join(f"{k} in {v}" for k, v in list(hw["first_windows"].items())[:3])
        lines.append(f"header windows: {several} of {fp['n_accepted']} files carry several; window=header uses "
                     f"{hw['header_uses']} (center/width: {common})")
    lines.append(f"image_size: params {image_size}, recommended {rec['image_size']} ({why['image_size']})")
    absorbed = {reason: n for reason, n in (faults or {}).items() if n}
    if absorbed:
        lines.append("worker pool absorbed " + ", ".join(f"{k}={v}" for k, v in sorted(absorbed.items())))
    return lines
