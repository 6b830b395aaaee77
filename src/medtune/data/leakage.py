"""Leakage guards for a split: one patient in two splits, and the same picture (exact or near) in two.

Near-duplicates are found with a 256-bit difference hash (dHash) of each preprocessed image and a
vectorised popcount over all pairs. On 28 px chest X-rays a 64-bit dHash collides for clearly different
images; at 16x16 distinct PneumoniaMNIST images stay >= ~20 bits apart while re-encoded, re-windowed or
rescaled copies land within ~12.
"""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.choices import SPLIT_NAMES
from medtune.data.store import open_images
from medtune.errors import DataError
from medtune.jsonio import write_atomic, write_json

HASH_SIDE = 16  # dHash grid: 16 rows x 17 columns -> 256 bits
N_EXAMPLES = 5
CHUNK = 1024  # rows compared at once: 1024 x N uint64 temporaries stay small


def _area_weights(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging input pixels into n_out equal bins by overlap (area resampling)."""
    edges = np.linspace(0, n_in, n_out + 1)
    left, right = np.arange(n_in), np.arange(1, n_in + 1)
    overlap = np.clip(np.minimum(edges[1:, None], right) - np.maximum(edges[:-1, None], left), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def dhash(images: np.ndarray, side: int = HASH_SIDE) -> np.ndarray:
    """Difference hash of (N, [1,] H, W) images: packed bits (N, side*side/8) of 'brighter than left'.

    Area-resampled to side x (side+1), so it ignores noise, windowing tweaks and rescaling but not content.
    """
    x = np.asarray(images, dtype=np.float64)
    x = x.reshape(len(x), x.shape[-2], x.shape[-1])
    small = _area_weights(side, x.shape[1]) @ (x @ _area_weights(side + 1, x.shape[2]).T)
    bits = small[:, :, 1:] > small[:, :, :-1]
    return np.packbits(bits.reshape(len(x), -1), axis=1)


def hash_image_rows(images_path: Path, rows: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """dHash of images.npy rows, read from the memory map in chunks so memory stays flat."""
    rows = np.asarray(rows, dtype=np.int64)
    images = open_images(images_path, rows)
    parts = [dhash(images[rows[i:i + chunk]]) for i in range(0, len(rows), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, HASH_SIDE * HASH_SIDE // 8), np.uint8)


def _words(hashes: np.ndarray) -> np.ndarray:
    """Packed hash bytes as (N, W) uint64 words, zero-padded, for popcount in W operations per pair."""
    h = np.asarray(hashes, dtype=np.uint8)
    padded = np.pad(h, ((0, 0), (0, (-h.shape[1]) % 8)))
    return np.ascontiguousarray(padded).view(np.uint64)


def near_duplicate_pairs(
    hashes: np.ndarray, max_distance: int, groups: np.ndarray | None = None, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose hashes differ in at most max_distance bits, and their distances.

    With `groups` (e.g. each image's split) only pairs from different groups are returned.
    """
    words = _words(hashes)
    n = len(words)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, n, chunk):
        block = words[start:start + chunk]
        dist = np.zeros((len(block), n - start), dtype=np.uint16)
        for k in range(words.shape[1]):
            dist += np.bitwise_count(block[:, k, None] ^ words[None, start:, k])
        i, j = np.nonzero(dist <= max_distance)
        keep = j > i  # upper triangle: each pair once, no self-pairs
        i, j = i[keep], j[keep]
        d, i, j = dist[i, j], i + start, j + start
        if groups is not None:
            other = groups[i] != groups[j]
            i, j, d = i[other], j[other], d[other]
        found.append((i, j, d))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint16)
    return tuple(np.concatenate(part) for part in zip(*found))  # type: ignore[return-value]


def _split_rows(splits: dict[str, Any], index: pd.DataFrame) -> pd.DataFrame:
    """Index rows that the split lists, with a `split` column; sample_id as str."""
    split_of = {str(sid): s for s in SPLIT_NAMES for sid in splits[s]}
    rows = index.assign(sample_id=index["sample_id"].astype(str))
    rows = rows[rows["sample_id"].isin(split_of)].reset_index(drop=True)
    return rows.assign(split=rows["sample_id"].map(split_of))


def _patients_across(rows: pd.DataFrame) -> dict[str, Any]:
    spans = rows.groupby("patient_key")["split"].agg(lambda s: sorted(set(s)))
    spanning = spans[spans.map(len) > 1]
    examples = [{"patient_key": k, "splits": v} for k, v in spanning.head(N_EXAMPLES).items()]
    return {"patients_in_multiple_splits": len(spanning), "patient_examples": examples}


def _exact_duplicates(rows: pd.DataFrame) -> dict[str, Any]:
    """Distinct pictures (pixel hashes) in more than one split; pairs per split pair; surplus copies within."""
    pairs = {f"{a}-{b}": 0 for a, b in combinations(SPLIT_NAMES, 2)}
    examples: list[dict[str, Any]] = []
    across = within = 0
    # Tally per split, so a hash shared by many images (blank frames) costs no pairwise loop.
    for _, group in rows[rows["pixel_hash"].duplicated(keep=False)].groupby("pixel_hash", sort=True):
        members = {s: sorted(group.loc[group["split"] == s, "sample_id"]) for s in SPLIT_NAMES}
        within += sum(max(len(m) - 1, 0) for m in members.values())
        across += sum(1 for m in members.values() if m) > 1
        for a, b in combinations(SPLIT_NAMES, 2):
            pairs[f"{a}-{b}"] += len(members[a]) * len(members[b])
            if members[a] and members[b] and len(examples) < N_EXAMPLES:
                examples.append({"sample_ids": [members[a][0], members[b][0]], "splits": [a, b]})
    return {"exact_duplicates_across_splits": int(across), "exact_duplicate_pairs_by_splits": pairs,
            "exact_duplicates_within_splits": int(within), "examples": examples}


def near_duplicate_table(rows: pd.DataFrame, hashes: np.ndarray, max_distance: int) -> pd.DataFrame:
    """Every cross-split pair within max_distance bits: ids, splits, Hamming distance, exact copy or not."""
    i, j, d = near_duplicate_pairs(hashes, max_distance, groups=rows["split"].to_numpy())
    # Order each pair train -> val -> test so split-pair names read one way.
    order = rows["split"].map(SPLIT_NAMES.index).to_numpy()
    swap = order[i] > order[j]
    first = rows.iloc[np.where(swap, j, i)].reset_index(drop=True)
    second = rows.iloc[np.where(swap, i, j)].reset_index(drop=True)
    table = pd.DataFrame({"sample_id_a": first["sample_id"], "split_a": first["split"],
                          "sample_id_b": second["sample_id"], "split_b": second["split"],
                          "hamming": d.astype(int), "exact": (first["pixel_hash"] == second["pixel_hash"])})
    return table.sort_values(["hamming", "sample_id_a", "sample_id_b"], ignore_index=True)


def leakage_report(
    splits: dict[str, Any], index: pd.DataFrame, hashes: np.ndarray | None = None, max_distance: int = 12
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Leakage across splits (report dict, near-duplicate pair table); `hashes` are dHashes per index row.

    Near-duplicate pairs include exact copies (distance 0). Without hashes the near-duplicate check is skipped.
    """
    missing = [c for c in ("sample_id", "patient_key", "pixel_hash") if c not in index.columns]
    if missing:
        raise DataError(f"index is missing column(s) {', '.join(missing)}; re-run the preprocess stage")
    rows = _split_rows(splits, index)
    report = {**_patients_across(rows), **_exact_duplicates(rows)}
    if hashes is None:
        return report, pd.DataFrame()
    hashes = np.asarray(hashes)
    if len(hashes) != len(index):
        raise ValueError(f"expected one hash per index row ({len(index)}), got {len(hashes)}")
    listed = index["sample_id"].astype(str).isin(set(rows["sample_id"])).to_numpy()
    started = time.perf_counter()
    table = near_duplicate_table(rows, hashes[listed], max_distance)
    by_pair = (table["split_a"] + "-" + table["split_b"]).value_counts()
    report |= {
        "near_duplicate_max_hamming": int(max_distance),
        "near_duplicate_pairs_across_splits": len(table),
        "near_duplicate_pairs_by_splits": {f"{a}-{b}": int(by_pair.get(f"{a}-{b}", 0))
                                           for a, b in combinations(SPLIT_NAMES, 2)},
        "near_duplicate_examples": table.head(N_EXAMPLES).to_dict("records"),
        "near_duplicate_seconds": round(time.perf_counter() - started, 3),
    }
    return report, table


def fold_leakage(splits: dict[str, Any], index: pd.DataFrame, hashes: np.ndarray | None,
                 max_distance: int) -> dict[str, int]:
    """The same checks across the CV folds of train + val (`folds` in splits.json); {} without folds."""
    fold_of = {str(sid): k for k, fold in enumerate(splits.get("folds") or []) for sid in fold}
    if not fold_of:
        return {}
    listed = index["sample_id"].astype(str).isin(fold_of).to_numpy()
    rows = index[listed].assign(fold=index.loc[listed, "sample_id"].astype(str).map(fold_of))
    report = {"folds": len(splits["folds"]),
              "patients_in_multiple_folds": int((rows.groupby("patient_key")["fold"].nunique() > 1).sum()),
              "exact_duplicates_across_folds": int((rows.groupby("pixel_hash")["fold"].nunique() > 1).sum())}
    if hashes is not None:
        near = near_duplicate_pairs(np.asarray(hashes)[listed], max_distance, groups=rows["fold"].to_numpy())
        report["near_duplicate_pairs_across_folds"] = len(near[0])
    return report


def leakage_problems(report: dict[str, Any]) -> list[str]:
    """Human-readable findings that a strict split refuses; empty when nothing crosses splits or folds."""
    checks = [("patients_in_multiple_splits", "patient(s) in more than one split"),
              ("exact_duplicates_across_splits", "identical image(s) in more than one split"),
              ("near_duplicate_pairs_across_splits", "near-duplicate image pair(s) across splits"),
              ("patients_in_multiple_folds", "patient(s) in more than one CV fold"),
              ("exact_duplicates_across_folds", "identical image(s) in more than one CV fold"),
              ("near_duplicate_pairs_across_folds", "near-duplicate image pair(s) across CV folds")]
    return [f"{report[key]} {what}" for key, what in checks if report.get(key)]


def check_leakage(splits: dict[str, Any], index: pd.DataFrame, hashes: np.ndarray, max_distance: int,
                  strict: bool, report_path: Path, pairs_path: Path, **extra: Any) -> str:
    """Write the leakage report (JSON, `extra` merged in) and the cross-split near-duplicate pairs (CSV);
    return a one-line summary. With `strict`, any leak is a DataError that names both files."""
    report, table = leakage_report(splits, index, hashes, max_distance)
    report |= fold_leakage(splits, index, hashes, max_distance)
    problems = leakage_problems(report)
    write_json(report_path, report | extra | {"strict": strict, "leaks": len(problems)})
    write_atomic(pairs_path, table.to_csv(index=False))
    if problems and strict:
        raise DataError(f"split.strict: {'; '.join(problems)} (see {report_path}, {pairs_path})")
    return (f"leakage: {'; '.join(problems) or 'none found'} (near-duplicate search "
            f"{report['near_duplicate_seconds']:.2f} s over {len(index)} images)")
