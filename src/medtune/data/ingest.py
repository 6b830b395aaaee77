"""Ingest: every file under raw_dir ends accepted (a manifest row) or rejected with one reason code.

Only allow-listed header fields and HMACs of identifiers leave this module (see dicom.ALLOWED_FIELDS).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from medtune.data.dicom import (
    READ_REJECT_REASONS,
    RejectedFile,
    decode_pixels,
    header_fields,
    identifiers,
    modality_pixels,
    read_dicom,
)
from medtune.data.phi import hash_id
from medtune.errors import DataError

REJECT_REASONS = (*READ_REJECT_REASONS, "unlabeled", "duplicate_instance")
INTENSITY_FILES = 200  # decoded images sampled for the fingerprint's intensity statistics
INTENSITY_VALUES = 1000  # pixels kept per sampled image
PROGRESS_EVERY = 200


@dataclass
class IngestResult:
    """What ingest produced: the manifest, the rejects with reasons, and the dataset fingerprint."""

    manifest: pd.DataFrame
    rejected: pd.DataFrame
    fingerprint: dict
    orphan_labels: int


@dataclass
class FileResult:
    """One file's outcome as a worker returns it: nothing identifying, only hashes and allowed fields."""
    path: str
    reason: str | None = None
    header: dict = field(default_factory=dict)
    instance_key: str = ""
    patient_key: str = ""
    missing_patient_id: bool = False
    pixel_sha1: str = ""
    intensities: np.ndarray | None = None


def scan_files(raw_dir: Path) -> list[Path]:
    """Every regular file under raw_dir, recursively and sorted; hidden files and DICOMDIR are skipped."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: image folder does not exist")
    files = []
    for path in raw_dir.rglob("*"):
        parts = path.relative_to(raw_dir).parts
        if any(part.startswith(".") for part in parts) or path.name == "DICOMDIR":
            continue
        if path.is_file():
            files.append(path)
    return sorted(files)


def read_labels(
    labels: str, raw_dir: Path, path_column: str = "path", label_column: str = "label"
) -> pd.DataFrame:
    """Labels as a frame (path relative to raw_dir, label, optional split) from a CSV or "folders".

    "folders" means the first folder under raw_dir names the class; a CSV may also carry a split column.
    """
    raw_dir = Path(raw_dir)
    if labels == "folders":
        rels = [f.relative_to(raw_dir) for f in scan_files(raw_dir)]
        rows = [(r.as_posix(), r.parts[0]) for r in rels if len(r.parts) > 1]
        return pd.DataFrame(rows, columns=["path", "label"], dtype=str)
    table = _read_csv(Path(labels), [path_column, label_column])
    out = pd.DataFrame({
        "path": [_relative(p, raw_dir) for p in table[path_column].str.strip()],
        "label": table[label_column].str.strip(),
    })
    if "split" in table.columns:
        out["split"] = table["split"].str.strip()
        bad = sorted(set(out["split"]) - {"train", "val", "test"})
        if bad:
            raise DataError(f"{labels}: column 'split' has {bad[0]!r}; allowed values are train, val, test")
    empty = out.index[(out["path"] == "") | (out["label"] == "")]
    if len(empty):
        raise DataError(f"{labels}: row {empty[0] + 2} has an empty '{path_column}' or '{label_column}'")
    out = out.drop_duplicates(ignore_index=True)
    clash = out["path"][out["path"].duplicated()]
    if len(clash):
        raise DataError(f"{labels}: '{clash.iloc[0]}' is listed more than once with different values")
    return out


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a labels CSV as strings, or raise DataError naming the file and the missing column."""
    if not path.is_file():
        raise DataError(f"{path}: labels file not found (or pass labels: folders)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc.__class__.__name__})") from exc
    for column in columns:
        if column not in table.columns:
            raise DataError(f"{path}: no column '{column}' (columns: {', '.join(map(str, table.columns))})")
    if table.empty:
        raise DataError(f"{path}: labels file has no rows")
    return table


def _relative(value: str, raw_dir: Path) -> str:
    """A labels-file path as posix relative to raw_dir (absolute paths under raw_dir are accepted)."""
    path = Path(value.replace("\\", "/"))
    if path.is_absolute():
        try:
            path = path.relative_to(raw_dir.resolve())
        except ValueError:
            path = path.relative_to(path.anchor)  # not under raw_dir: stays unmatched, counted as orphan
    return path.as_posix().removeprefix("./")


def read_one(path: Path, rel: str, key: bytes, sample_intensity: bool = False) -> FileResult:
    """Read, validate and fully decode one file; returns hashes and allowed fields, never pixels or PHI."""
    try:
        ds = read_dicom(path)
        header = header_fields(ds)
        decode_pixels(ds)  # validates the whole decode chain now, not at preprocess time
        intensities = _intensity_sample(modality_pixels(ds)) if sample_intensity else None
    except RejectedFile as exc:
        return FileResult(path=rel, reason=exc.reason)
    instance_uid, patient_id = identifiers(ds)  # hashed below, never stored
    # No PatientID: files in one folder usually come from one patient or study, so the folder is the
    # conservative grouping (it can only merge patients, never let one patient straddle two splits).
    parent = Path(rel).parent.as_posix()
    patient_key = hash_id(patient_id, key) if patient_id else hash_id(f"folder:{parent}", key)
    raw = next((ds[k].value for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds), b"")
    instance_key = hash_id(instance_uid, key) if instance_uid else ""
    return FileResult(rel, None, header, instance_key, patient_key, not patient_id,
                      hashlib.sha1(bytes(raw)).hexdigest(), intensities)


def _read_task(task: tuple[Path, str, bool], key: bytes) -> FileResult:
    """Pool entry point (module level so it pickles)."""
    return read_one(task[0], task[1], key, task[2])


def _intensity_sample(values: np.ndarray) -> np.ndarray:
    """An evenly strided sample of at most INTENSITY_VALUES pixel values, in modality units."""
    flat = values.ravel()
    return flat[:: max(1, flat.size // INTENSITY_VALUES)][:INTENSITY_VALUES].astype(np.float32)


def _run_reads(
    tasks: list[tuple[Path, str, bool]], key: bytes, workers: int,
    progress: Callable[[int, int], None] | None,
) -> Iterator[FileResult]:
    """Yield FileResults in task order, in a process pool when workers > 1, reporting progress."""
    read = partial(_read_task, key=key)
    total = len(tasks)
    if workers > 1:
        chunk = max(1, min(64, total // (workers * 8)))
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
            yield from _with_progress(pool.map(read, tasks, chunksize=chunk), total, progress)
    else:
        yield from _with_progress(map(read, tasks), total, progress)


def pool_context() -> multiprocessing.context.BaseContext:
    """Forkserver with the data modules preloaded: workers fork from a clean, already-warm server.

    Plain fork is unsafe once the parent holds threads (pyarrow, Ray, MLflow); spawn re-imports numpy,
    pandas and pydicom in every worker, which costs more than a small cohort's whole ingest.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["medtune.data.ingest", "medtune.data.preprocess"])
    return context


def _with_progress(
    results: Iterable[FileResult], total: int, progress: Callable[[int, int], None] | None
) -> Iterator[FileResult]:
    """Pass results through, calling progress(done, total) every PROGRESS_EVERY files and at the end."""
    for done, result in enumerate(results, start=1):
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
        yield result


def ingest(
    raw_dir: Path,
    labels: str,
    key: bytes,
    path_column: str = "path",
    label_column: str = "label",
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Read every file under raw_dir once and sort it into the manifest or the rejects.

    Each file is accepted or rejected with exactly one reason; scanned == accepted + rejected.
    """
    raw_dir = Path(raw_dir)
    files = scan_files(raw_dir)
    label_df = read_labels(labels, raw_dir, path_column, label_column)
    rels = [f.relative_to(raw_dir).as_posix() for f in files]
    sampled = _intensity_subset(len(files))
    tasks = [(f, rel, i in sampled) for i, (f, rel) in enumerate(zip(files, rels))]
    label_of = label_df.set_index("path")
    accepted, rejected, seen = [], [], set()
    for result in _run_reads(tasks, key, max(1, workers), progress):
        if result.reason is None and result.path not in label_of.index:
            result.reason = "unlabeled"
        if result.reason is None and result.instance_key and result.instance_key in seen:
            result.reason = "duplicate_instance"
        if result.reason is not None:
            rejected.append({"path": result.path, "reason": result.reason})
            continue
        seen.add(result.instance_key)
        accepted.append(result)
    assert len(files) == len(accepted) + len(rejected), "ingest lost track of a file"
    if not accepted:
        raise DataError(f"{raw_dir}: no usable image among {len(files)} files (see the rejected list)")
    manifest = _manifest(accepted, label_of, key)
    rejected_df = pd.DataFrame(rejected, columns=["path", "reason"]).sort_values("path", ignore_index=True)
    orphans = int((~label_df["path"].isin(set(rels))).sum())
    fingerprint = build_fingerprint(manifest, rejected_df, accepted, orphans)
    return IngestResult(manifest, rejected_df, fingerprint, orphans)


def _intensity_subset(n_files: int, seed: int = 0) -> set[int]:
    """Seeded choice of at most INTENSITY_FILES file indices whose pixels feed the fingerprint."""
    rng = np.random.default_rng(seed)
    return set(rng.choice(n_files, size=min(n_files, INTENSITY_FILES), replace=False).tolist())


def _manifest(accepted: list[FileResult], label_of: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """One row per accepted file: hashed ids, the user's path and label, allowed header fields."""
    rows = []
    for result in accepted:
        row = {
            "sample_id": result.instance_key or hash_id(result.path, key),
            "path": result.path,
            "patient_key": result.patient_key,
            "label": str(label_of.at[result.path, "label"]),
        }
        if "split" in label_of.columns:
            row["split"] = str(label_of.at[result.path, "split"])
        rows.append({**row, **result.header})
    manifest = pd.DataFrame(rows).sort_values("path", ignore_index=True)
    classes = sorted(manifest["label"].unique())
    manifest.insert(4, "target", manifest["label"].map({c: i for i, c in enumerate(classes)}).astype(int))
    return manifest


def build_fingerprint(
    manifest: pd.DataFrame, rejected: pd.DataFrame, accepted: list[FileResult], orphan_labels: int
) -> dict:
    """Dataset fingerprint (nnU-Net style): counts, classes, patients, vendors, sizes, intensities."""
    per_patient = manifest.groupby("patient_key").size()
    sizes = (manifest["rows"].astype(str) + "x" + manifest["columns"].astype(str)).value_counts()
    pixel_counts = Counter(r.pixel_sha1 for r in accepted)
    return {
        "n_scanned": len(manifest) + len(rejected),
        "n_accepted": len(manifest),
        "n_rejected": len(rejected),
        "rejected_by_reason": _counts(rejected["reason"]),
        "orphan_labels": orphan_labels,
        "classes": _counts(manifest["label"]),
        "n_patients": int(per_patient.size),
        "n_missing_patient_id": sum(r.missing_patient_id for r in accepted),
        "images_per_patient": {
            "min": int(per_patient.min()), "median": float(per_patient.median()), "max": int(per_patient.max()),
        },
        "modalities": _counts(manifest["modality"]),
        "manufacturers": _counts(manifest["manufacturer"]),
        "sizes": {str(k): int(v) for k, v in sizes.items()},
        "n_duplicate_pixels": sum(n - 1 for n in pixel_counts.values() if n > 1),
        "intensity": _intensity_stats(accepted),
    }


def _counts(values: pd.Series) -> dict[str, int]:
    """value -> count as plain JSON types, most frequent first."""
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _intensity_stats(accepted: list[FileResult]) -> dict[str, dict[str, float]]:
    """Per-modality percentiles, mean and std of the sampled pixel values (modality units)."""
    by_modality: dict[str, list[np.ndarray]] = {}
    for result in accepted:
        if result.intensities is not None:
            by_modality.setdefault(str(result.header["modality"]) or "unknown", []).append(result.intensities)
    stats = {}
    for modality, chunks in sorted(by_modality.items()):
        values = np.concatenate(chunks).astype(np.float64)
        p005, p50, p995 = np.percentile(values, [0.5, 50, 99.5])
        stats[modality] = {
            "n_images": len(chunks), "p00_5": float(p005), "p50": float(p50), "p99_5": float(p995),
            "mean": float(values.mean()), "std": float(values.std()),
        }
    return stats
