"""Ingest: every file under raw_dir ends accepted (a manifest row) or rejected with one reason code.

Only allow-listed header fields and HMACs of identifiers leave this module (see dicom.ALLOWED_FIELDS).
Files are read in a supervised process pool (pool.py), a bounded number of chunks in flight, so memory
stays flat and a file that hangs or crashes its decoder is rejected instead of stopping the stage.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from medtune.data.dicom import READ_REJECT_REASONS, check_image, header_fields, parse_dicom
from medtune.data.files import scan_files, stored_path
from medtune.data.fingerprint import build_fingerprint
from medtune.data.header import RejectedFile, safe_str
from medtune.data.labels import label_columns, read_labels
from medtune.data.limits import FileLimits, check_file_size, check_size
from medtune.data.phi import hash_id, order_hash
from medtune.data.pixels import modality_pixels, window_fields, window_values
from medtune.data.pool import PoolStats, supervised_map
from medtune.data.targets import (
    cell_kind,
    parse_cells,
    resolve_task,
    target_columns,
    target_mapping,
    target_summary,
)
from medtune.errors import DataError
from medtune.task import Task

__all__ = ["REJECT_REASONS", "FileResult", "IngestResult", "ingest", "read_one"]

REJECT_REASONS = (*READ_REJECT_REASONS, "unlabeled", "bad_label", "duplicate_instance")
INTENSITY_FILES = 200  # decoded images sampled for the fingerprint's intensity statistics
INTENSITY_VALUES = 1000  # pixels kept per sampled image
PROGRESS_EVERY = 200
CHUNK = 32  # files per pool task: large enough to amortise IPC, small enough to balance two workers


@dataclass
class IngestResult:
    """What ingest produced: the manifest, the rejects with reasons, and the dataset fingerprint."""

    manifest: pd.DataFrame
    rejected: pd.DataFrame
    fingerprint: dict
    orphan_labels: int
    task: Task
    faults: dict[str, int] = field(default_factory=dict)  # what the worker pool absorbed (PoolStats)


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
    study_key: str = ""
    patient_id_key: str = ""  # HMAC of PatientID itself ("" when absent): joins patient-keyed labels
    order_hash: str = ""  # public-salt hash of the patient, turned into a rank at ingest and never written


def read_one(path: Path, rel: str, key: bytes, sample_intensity: bool = False,
             limits: FileLimits = FileLimits()) -> FileResult:
    """Read, validate and decode one file once; returns hashes and allowed fields, never pixels or PHI.

    Identifier hashes are filled in even for rejected files, so labels naming them are not orphans.
    Sizes are checked against `limits` before the file is parsed and again before it is decoded.
    """
    result = FileResult(path=rel)
    try:
        check_file_size(path, limits)
        ds = parse_dicom(path)
        _hash_identifiers(ds, rel, key, result)
        check_image(ds, path)
        check_size(ds, limits)
        result.header = header_fields(ds) | window_fields(ds)
        values = modality_pixels(ds)  # the one decode: validates the chain now, not at preprocess time
        window_values(values, ds, "header", (0.5, 99.5))
    except RejectedFile as exc:
        result.reason = exc.reason
        return result
    if sample_intensity:
        flat = values.ravel()
        result.intensities = flat[:: max(1, flat.size // INTENSITY_VALUES)][:INTENSITY_VALUES].astype(np.float32)
    raw = next((ds[k].value for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds), b"")
    result.pixel_sha1 = hashlib.sha1(bytes(raw)).hexdigest()
    return result


def _hash_identifiers(ds: object, rel: str, key: bytes, result: FileResult) -> None:
    """Fill the HMACs of SOPInstanceUID, PatientID and StudyInstanceUID; the raw values are dropped here."""
    instance_uid, patient_id, study_uid = (
        safe_str(ds, keyword) for keyword in ("SOPInstanceUID", "PatientID", "StudyInstanceUID"))
    # No PatientID: files in one folder usually come from one patient or study, so the folder is the
    # conservative grouping (it can only merge patients, never let one patient straddle two splits).
    folder = f"folder:{Path(rel).parent.as_posix()}"
    result.patient_key = hash_id(patient_id or folder, key)
    result.order_hash = order_hash(patient_id or folder)
    result.patient_id_key = hash_id(patient_id, key) if patient_id else ""
    result.missing_patient_id = not patient_id
    result.instance_key = hash_id(instance_uid, key) if instance_uid else ""
    result.study_key = hash_id(study_uid, key) if study_uid else ""


def _read_task(task: tuple[Path, str, bool], key: bytes, limits: FileLimits) -> FileResult:
    """Pool entry point (module level so it pickles): one file."""
    path, rel, sample = task
    return read_one(path, rel, key, sample, limits)


def _failed(task: tuple[Path, str, bool], reason: str) -> FileResult:
    """The result of a file the pool gave up on (timeout, crashed worker, unforeseen error)."""
    return FileResult(path=task[1], reason=reason)


def _with_progress(
    results: Iterable[FileResult], total: int, progress: Callable[[int, int], None] | None
) -> Iterator[FileResult]:
    """Pass results through, calling progress(done, total) every PROGRESS_EVERY files and at the end."""
    for done, result in enumerate(results, start=1):
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            progress(done, total)
        yield result


def _intensity_subset(n_files: int, seed: int = 0) -> set[int]:
    """Seeded choice of at most INTENSITY_FILES file indices whose pixels feed the fingerprint."""
    rng = np.random.default_rng(seed)
    return set(rng.choice(n_files, size=min(n_files, INTENSITY_FILES), replace=False).tolist())


def _join_key(result: FileResult, label_key: str) -> str:
    """The value a labels row is matched on for this file ('' when the file lacks that identifier)."""
    return {"path": result.path, "sop_instance_uid": result.instance_key,
            "patient_id": result.patient_id_key, "study_instance_uid": result.study_key}[label_key]


class _Collector:
    """Sorts streamed FileResults into manifest rows and rejects, keeping only small per-file state."""

    def __init__(self, label_of: pd.DataFrame, label_key: str) -> None:
        self.label_of, self.label_key = label_of, label_key
        self.rows: list[dict] = []
        self.rejected: list[dict] = []
        self.seen: set[str] = set()  # instance keys accepted so far (duplicate_instance)
        self.keys_found: set[str] = set()  # join keys of every parsed file (orphan labels)
        self.intensities: dict[str, list[np.ndarray]] = {}
        self.pixel_counts: Counter[str] = Counter()
        self.n_missing_patient_id = 0

    def add(self, result: FileResult) -> None:
        join = _join_key(result, self.label_key)
        self.keys_found.add(join)
        if result.reason is None and join not in self.label_of.index:
            result.reason = "unlabeled"
        if result.reason is None and self.label_of.at[join, "bad"]:
            result.reason = "bad_label"
        if result.reason is None and result.instance_key and result.instance_key in self.seen:
            result.reason = "duplicate_instance"
        if result.reason is not None:
            self.rejected.append({"path": result.path, "reason": result.reason})
            return
        self.seen.add(result.instance_key)
        self.pixel_counts[result.pixel_sha1] += 1
        self.n_missing_patient_id += result.missing_patient_id
        if result.intensities is not None:
            modality = str(result.header["modality"]) or "unknown"
            self.intensities.setdefault(modality, []).append(result.intensities)
        label = self.label_of.loc[join]
        row = {"sample_id": result.instance_key or "", "path": result.path,
               "patient_key": result.patient_key, "order_hash": result.order_hash, "label": str(label["label"]),
               "value": label["value"]}
        if "split" in self.label_of.columns:
            row["split"] = str(label["split"])
        self.rows.append({**row, "study_key": result.study_key, **result.header})


def ingest(
    raw_dir: Path,
    labels: str,
    key: bytes,
    path_column: str = "path",
    label_column: str = "label",
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    label_key: str = "path",
    key_column: str = "",
    task: str = "auto",
    uncertain: str = "ignore",
    positive_label: str | None = None,
    limits: FileLimits = FileLimits(),
    plugins: Sequence[str] = (),
    hash_paths: bool = False,
) -> IngestResult:
    """Read every file under raw_dir once and sort it into the manifest or the rejects.

    Each file is accepted or rejected with exactly one reason; scanned == accepted + rejected.
    `label_key` says what the labels CSV is keyed by (labels.LABEL_KEYS); identifiers join as HMACs.
    `task` (choices.TASKS or auto) says how label cells become targets, `positive_label` which binary
    class is target 1 (data.targets). `limits` bounds each file's size and decode time; `plugins` are
    imported in every decode worker; `hash_paths` writes each relative path as its HMAC (the labels join
    happens before, on the real path).
    """
    raw_dir = Path(raw_dir)
    files = scan_files(raw_dir)
    label_key = "path" if labels == "folders" else label_key
    label_df = read_labels(labels, raw_dir, path_column, label_column, label_key, key_column, key)
    join_column = "path" if label_key == "path" else "key"
    columns = label_columns(label_column)
    cells = parse_cells(label_df, columns, task, uncertain)
    if cell_kind(task, columns) == "classification":  # a missing or wrong positive_label fails now, not later
        target_mapping(cells.loc[~cells["bad"], "value"], positive_label)
    label_of = pd.concat([label_df.drop(columns=columns), cells], axis=1).set_index(join_column)
    rels = [f.relative_to(raw_dir).as_posix() for f in files]
    sampled = _intensity_subset(len(files))
    tasks = [(f, rel, i in sampled) for i, (f, rel) in enumerate(zip(files, rels))]
    collector, stats = _Collector(label_of, label_key), PoolStats()
    read = supervised_map(partial(_read_task, key=key, limits=limits), tasks, _failed, workers=max(1, workers),
                          timeout_s=limits.timeout_s, memory_mb=limits.worker_memory_mb, chunk=CHUNK,
                          plugins=plugins, stats=stats)
    for result in _with_progress(read, len(tasks), progress):
        collector.add(result)
    assert len(files) == len(collector.rows) + len(collector.rejected), "ingest lost track of a file"
    if not collector.rows:
        raise DataError(f"{raw_dir}: no usable image among {len(files)} files (see the rejected list)")
    manifest = _manifest(collector.rows, key)
    accepted = manifest["value"]
    resolved = resolve_task(accepted, task, columns, positive_label)
    manifest = _store_paths(manifest.drop(columns="value").assign(**target_columns(accepted, resolved)), key,
                            hash_paths)
    rejected = pd.DataFrame(collector.rejected, columns=["path", "reason"]).sort_values("path", ignore_index=True)
    rejected = _store_paths(rejected, key, hash_paths)
    orphans = int((~label_df[join_column].isin(collector.keys_found)).sum())
    n_dup = sum(n - 1 for n in collector.pixel_counts.values() if n > 1)
    fingerprint = build_fingerprint(manifest, rejected, collector.intensities, n_dup,
                                    collector.n_missing_patient_id, orphans)
    fingerprint["task"] = target_summary(manifest, resolved)
    return IngestResult(manifest, rejected, fingerprint, orphans, resolved, stats.as_dict())


def _store_paths(frame: pd.DataFrame, key: bytes, hash_paths: bool) -> pd.DataFrame:
    """The frame with `path` as it is written out (files.stored_path). Rows stay in the real paths' order,
    which is the same in every clone (the split's lists follow it); the per-clone HMACs would not be."""
    if hash_paths:
        frame = frame.assign(path=[stored_path(p, key, True) for p in frame["path"]])
    return frame


def _manifest(rows: list[dict], key: bytes) -> pd.DataFrame:
    """One row per accepted file: hashed ids, the user's path and label, allowed header fields."""
    manifest = pd.DataFrame(rows).sort_values("path", ignore_index=True)
    no_uid = manifest["sample_id"] == ""
    manifest.loc[no_uid, "sample_id"] = [hash_id(p, key) for p in manifest.loc[no_uid, "path"]]
    # Only the patients' rank under the public order hash is kept (it orders the seeded split the same in
    # every clone); the hash itself, recomputable from a PatientID, is dropped here.
    order = manifest.pop("order_hash").rank(method="dense").astype(int) - 1
    manifest.insert(3, "patient_order", order)
    return manifest
