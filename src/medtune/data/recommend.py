"""What the fingerprint recommends for `auto`: a window that suits the modality, a size this machine can train.

Each recommendation comes with a sentence saying why, printed by ingest and kept in fingerprint.json, so
a user sees what `auto` will do before preprocessing and can set the value instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from medtune.choices import WINDOW_PRESETS

AUTO_SIZE_RANGE = (32, 256)  # `image_size: auto` stays within this range (pixels)
AUTO_SIZE_STEP = 16  # ... and is a multiple of this (keeps every conv block's halving exact)
# BodyPartExamined (upper case) -> the CT preset usually read for it. Chest CT is read in two windows;
# `lung` is the parenchyma one (nodules, consolidation), `mediastinum` shows vessels and contrast.
BODY_PART_WINDOWS = {
    "CHEST": "lung", "THORAX": "lung", "LUNG": "lung",
    "HEAD": "brain", "BRAIN": "brain", "SKULL": "brain",
    "ABDOMEN": "soft_tissue", "PELVIS": "soft_tissue", "ABDOMENPELVIS": "soft_tissue", "ABDOMEN_PELVIS": "soft_tissue",
    "NECK": "soft_tissue", "LIVER": "liver",
    "SPINE": "bone", "CSPINE": "bone", "TSPINE": "bone", "LSPINE": "bone", "EXTREMITY": "bone", "KNEE": "bone",
    "HIP": "bone", "SHOULDER": "bone", "ANKLE": "bone", "WRIST": "bone", "HAND": "bone", "FOOT": "bone",
}
CONSISTENT_WINDOW = 0.9  # header windows count as one choice when this share of files has the same first one
# Compute: the default ConvNet (depth 3, width 16, batch 32) trains fwd+bwd at ~100 img/s on one CPU thread
# at 64 px, and cost grows a little faster than the pixel count (measured 2026-12-02 on this 2-core machine:
# 103 / 19 / 3.4 img/s at 64 / 128 / 256 px, i.e. side^2.5). A first sweep of the demo's shape (8 trials
# of ~4 epochs on all cores) should take about five minutes: past that `auto` halves the size,
# down to MIN_COMPUTE_SIZE.
REF_IMAGES_PER_S_64PX = 100.0
SIZE_EXPONENT = 2.5
SWEEP_EPOCHS = 32
SWEEP_BUDGET_S = 300.0
MIN_COMPUTE_SIZE = 64


def machine_compute() -> dict[str, int]:
    """CPU cores this process may use and NVIDIA GPUs the driver lists (0 without the driver)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    gpu_dir = Path("/proc/driver/nvidia/gpus")
    gpus = len(list(gpu_dir.iterdir())) if gpu_dir.is_dir() else 0
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        gpus = 0
    return {"cpus": cpus, "gpus": gpus}


def size_from_images(manifest: pd.DataFrame) -> int:
    """Median shorter side, rounded down to a multiple of AUTO_SIZE_STEP, within AUTO_SIZE_RANGE."""
    short = float(np.minimum(manifest["rows"], manifest["columns"]).median())
    size = int(short // AUTO_SIZE_STEP * AUTO_SIZE_STEP)
    return int(min(max(size, AUTO_SIZE_RANGE[0]), AUTO_SIZE_RANGE[1]))


def sweep_seconds(n_images: int, size: int, cpus: int) -> float:
    """Rough wall time of a first sweep (SWEEP_EPOCHS epochs over n_images on all cores)."""
    per_epoch = n_images / (REF_IMAGES_PER_S_64PX * (64 / size) ** SIZE_EXPONENT)
    return SWEEP_EPOCHS * per_epoch / max(cpus, 1)


def recommend_image_size(manifest: pd.DataFrame, compute: dict[str, int]) -> tuple[int, str]:
    """The image size `auto` uses, and why: the images' own size, halved while a CPU-only sweep runs long."""
    native = size_from_images(manifest)
    short = int(np.minimum(manifest["rows"], manifest["columns"]).median())
    base = f"images' median shorter side {short} px -> {native} px"
    if compute["gpus"]:
        return native, f"{base}; a GPU is present, so no compute cap"
    n, cpus = len(manifest), compute["cpus"]
    size = native
    while sweep_seconds(n, size, cpus) > SWEEP_BUDGET_S and size // 2 >= MIN_COMPUTE_SIZE:
        size = size // 2 // AUTO_SIZE_STEP * AUTO_SIZE_STEP
    sweep = (f"on this machine ({cpus} CPU core{'s' * (cpus != 1)}, no GPU) a first sweep ({SWEEP_EPOCHS} epochs "
             f"of {n} images)")
    if size == native:
        return size, f"{base}; {sweep} takes {_duration(sweep_seconds(n, size, cpus))} at {size} px"
    return size, (f"{base}; {sweep} would take {_duration(sweep_seconds(n, native, cpus))} at {native} px and "
                  f"{_duration(sweep_seconds(n, size, cpus))} at {size} px; set preprocess.image_size to train larger")


def _duration(seconds: float) -> str:
    """A rough duration for a sentence: ~40 s, ~12 min, ~3 h."""
    if seconds < 90:
        return f"~{max(seconds, 1):.0f} s"
    return f"~{seconds / 60:.0f} min" if seconds < 5400 else f"~{seconds / 3600:.0f} h"


def header_windows(manifest: pd.DataFrame) -> dict:
    """How many files carry several windows and which first window (the one window=header applies) they use."""
    if "window_count" not in manifest.columns:
        return {}
    count = manifest["window_count"].fillna(0).astype(int)
    windowed = manifest[manifest["window_center"].notna() & manifest["window_width"].notna()]
    firsts = [f"{c:g}/{w:g}" for c, w in zip(windowed["window_center"], windowed["window_width"])]
    top = pd.Series(firsts, dtype=str).value_counts()
    return {
        "files_with_window": int((count > 0).sum()),
        "files_with_several": int((count > 1).sum()),
        "distinct_first_windows": int(top.size),
        "first_windows": {str(k): int(v) for k, v in top.head(5).items()},  # "center/width": files
        "header_uses": "each file's first VOI LUT, else its first WindowCenter/WindowWidth pair",
    }


def recommend_window(manifest: pd.DataFrame, windows: dict) -> tuple[str, str]:
    """The window `auto` uses for the main modality, and why (a CT preset from BodyPartExamined when tagged)."""
    modality = manifest["modality"].astype(str).str.strip().str.upper()
    main = modality.value_counts().index[0] if len(modality) else ""
    mostly_windowed = manifest["has_window"].astype(bool).mean() > 0.5
    default = "header" if mostly_windowed else "percentile"
    if main == "CT":
        return _ct_window(manifest[modality == "CT"], windows, mostly_windowed)
    if main == "MR":
        how = "each file's header window" if mostly_windowed else "percentile clipping per image"
        return default, f"MR intensities have no absolute scale, so the CT presets do not apply: {how}"
    why = "most files carry a window (VOI LUT or center/width)" if mostly_windowed else \
        "most files carry no window: percentile clipping per image"
    return default, f"{main or 'unknown modality'}: {why}"


def _ct_window(ct: pd.DataFrame, windows: dict, mostly_windowed: bool) -> tuple[str, str]:
    """CT: the preset of the most common BodyPartExamined, else the header window when files agree on one."""
    presets = ", ".join(WINDOW_PRESETS)
    parts = ct["body_part"].astype(str).str.strip().str.upper()
    parts = parts[parts != ""]
    part = parts.value_counts().index[0] if len(parts) else ""
    if part in BODY_PART_WINDOWS:
        preset = BODY_PART_WINDOWS[part]
        center, width = WINDOW_PRESETS[preset]
        return preset, (f"CT, BodyPartExamined {part}: the {preset} preset (center {center:g} HU, width "
                        f"{width:g}); pick another for your finding ({presets})")
    tagged = f"BodyPartExamined {part} has no preset" if part else "BodyPartExamined is not tagged"
    firsts = windows.get("first_windows", {})
    agree = bool(firsts) and max(firsts.values()) >= CONSISTENT_WINDOW * max(windows.get("files_with_window", 1), 1)
    if mostly_windowed and agree:
        return "header", f"CT, {tagged}: the files' common header window {next(iter(firsts))}; or a preset ({presets})"
    reason = (f"header windows differ between files ({windows.get('distinct_first_windows', 0)} first windows)"
              if mostly_windowed else "most files carry no window")
    return "soft_tissue", (f"CT, {tagged} and {reason}: soft_tissue (40/400 HU) as a neutral choice; "
                           f"set preprocess.window for your finding ({presets})")
