"""Train/val/test splits: grouped by hashed patient, stratified by label, seeded, hand-editable JSON.

The split file is data a user may edit (like nnU-Net's splits_final.json), so it is validated on load
and identified by a hash of its id lists alone, which the test-once ledger and the registry tags carry.
"""

from __future__ import annotations

import hashlib
import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
METHODS = ("auto", "grouped")
N_EXAMPLES = 5


def _require_columns(index: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in index.columns]
    if missing:
        raise DataError(f"index is missing column(s) {', '.join(missing)}; re-run the preprocess stage")


def _patient_strata(index: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: image count and majority target (ties go to the smaller target)."""
    by_patient = index.groupby("patient_key", sort=True)["target"]
    majority = by_patient.agg(lambda t: int(t.value_counts().sort_index().idxmax()))
    return pd.DataFrame({"target": majority, "n": by_patient.size()})


def _check_patients_per_class(patients: pd.DataFrame, index: pd.DataFrame) -> None:
    counts = patients["target"].value_counts().sort_index()
    if counts.min() >= len(SPLITS):
        return
    names = index.drop_duplicates("target").set_index("target")["label"]
    per_class = ", ".join(f"{names.get(t, t)}={n}" for t, n in counts.items())
    raise DataError(
        f"grouped split needs at least 3 patients per class (one for each of train/val/test); "
        f"patients per class: {per_class}"
    )


def _assign_stratum(sizes: pd.Series, targets: np.ndarray, rng: np.random.Generator) -> dict[str, list]:
    """Seed each split with one small patient, then give the rest (largest first) to the neediest split.

    `sizes` is images per patient; `targets` the wanted image count per split. Placing large patients
    first keeps image counts near the fractions even when one patient has many images.
    """
    keys = list(sizes.index[rng.permutation(len(sizes))])
    order = sorted(keys, key=lambda k: sizes[k])  # stable: ties keep the seeded order
    assigned: dict[str, list] = {s: [] for s in SPLITS}
    filled = np.zeros(len(SPLITS))
    for name in ("test", "val", "train"):
        key = order.pop(0)
        assigned[name].append(key)
        filled[SPLITS.index(name)] += sizes[key]
    for key in sorted(order, key=lambda k: -sizes[k]):
        i = int(np.argmax(targets - filled))
        assigned[SPLITS[i]].append(key)
        filled[i] += sizes[key]
    return assigned


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"params.yaml: split: val_fraction={val_fraction}, test_fraction={test_fraction}: "
            "each must be in (0, 1) and their sum < 1"
        )


def split_by_patient(
    index: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Split sample_ids so no patient spans two splits, stratified by each patient's majority label."""
    _check_fractions(val_fraction, test_fraction)
    _require_columns(index, ("sample_id", "patient_key", "target", "label"))
    if index.empty:
        raise DataError("index is empty: no images to split")
    if index["patient_key"].isna().any():
        raise DataError(f"index has {int(index['patient_key'].isna().sum())} sample(s) with no patient_key")
    patients = _patient_strata(index)
    _check_patients_per_class(patients, index)
    fractions = np.array([1 - val_fraction - test_fraction, val_fraction, test_fraction])
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for _, stratum in patients.groupby("target", sort=True):
        sizes = stratum["n"]
        for name, keys in _assign_stratum(sizes, fractions * sizes.sum(), rng).items():
            split_of.update({k: name for k in keys})
    assignment = index["patient_key"].map(split_of)
    return {s: sorted(index.loc[assignment == s, "sample_id"].astype(str)) for s in SPLITS}


def fixed_split(index: pd.DataFrame) -> dict[str, list[str]]:
    """Honour the index's `split` column exactly (an official split such as MedMNIST's)."""
    if "split" not in index.columns:
        raise DataError("index has no 'split' column: the labels file gave no official split")
    _require_columns(index, ("sample_id",))
    bad = index.loc[~index["split"].isin(SPLITS), "split"]
    if len(bad):
        values = ", ".join(sorted({repr(v) for v in bad}))
        raise DataError(f"split column has {len(bad)} value(s) not in train/val/test: {values}")
    splits = {s: sorted(index.loc[index["split"] == s, "sample_id"].astype(str)) for s in SPLITS}
    empty = [s for s in SPLITS if not splits[s]]
    if empty:
        raise DataError(f"split column gives no samples to {', '.join(empty)}; every split needs some")
    return splits


def _counts(splits: dict[str, list[str]], index: pd.DataFrame) -> dict[str, dict[str, Any]]:
    rows = index.set_index(index["sample_id"].astype(str))
    out = {}
    for s in SPLITS:
        part = rows.loc[splits[s]]
        by_label = part["label"].astype(str).value_counts().sort_index()
        out[s] = {
            "samples": len(part),
            "patients": int(part["patient_key"].nunique()),
            "by_label": {k: int(v) for k, v in by_label.items()},
        }
    return out


def make_splits(
    index: pd.DataFrame, method: str, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, Any]:
    """Build the JSON-ready split file: method, seed, observed fractions, counts and the id lists.

    `auto` honours an official `split` column when the index has one; `grouped` always splits by patient.
    `fractions` records the share of samples each split actually received.
    """
    if method not in METHODS:
        raise ConfigError(f"params.yaml: split.method: {method!r} is not one of {', '.join(METHODS)}")
    use_fixed = method == "auto" and "split" in index.columns
    if use_fixed:
        splits = fixed_split(index)
    else:
        splits = split_by_patient(index, val_fraction, test_fraction, seed)
    total = sum(len(v) for v in splits.values())
    return {
        "method": "fixed" if use_fixed else "grouped",
        "seed": seed,
        "fractions": {s: round(len(splits[s]) / total, 4) for s in SPLITS},
        "counts": _counts(splits, index),
        **splits,
    }


def _id_lists(splits: dict[str, Any]) -> dict[str, list[str]]:
    """The train/val/test lists of a split dict, or DataError when one is missing or not a list."""
    bad = [s for s in SPLITS if not isinstance(splits.get(s), list)]
    if bad:
        raise DataError(f"split file needs a list of sample ids under {', '.join(bad)}")
    return {s: [str(x) for x in splits[s]] for s in SPLITS}


def validate_splits(splits: dict[str, Any], index: pd.DataFrame) -> None:
    """Check a (possibly hand-edited) split: each index sample in exactly one split, no patient in two."""
    _require_columns(index, ("sample_id", "patient_key"))
    lists = _id_lists(splits)
    split_of: dict[str, str] = {}
    for s in SPLITS:
        if not lists[s]:
            raise DataError(f"split file: the {s} split is empty")
        for sid in lists[s]:
            if sid in split_of:
                where = "twice in" if split_of[sid] == s else f"in both {split_of[sid]} and"
                raise DataError(f"split file: sample {sid!r} is listed {where} {s}")
            split_of[sid] = s
    patient_of = dict(zip(index["sample_id"].astype(str), index["patient_key"].astype(str)))
    unknown = [sid for s in SPLITS for sid in lists[s] if sid not in patient_of]
    if unknown:
        raise DataError(f"split file: sample {unknown[0]!r} is not in the index ({len(unknown)} unknown ids)")
    missing = [sid for sid in patient_of if sid not in split_of]
    if missing:
        raise DataError(
            f"split file: sample {missing[0]!r} is in no split ({len(missing)} index samples missing)"
        )
    first_seen: dict[str, tuple[str, str]] = {}
    for s in SPLITS:
        for sid in lists[s]:
            key = patient_of[sid]
            other_split, other_sid = first_seen.setdefault(key, (s, sid))
            if other_split != s:
                raise DataError(
                    f"split file: patient {key!r} is in both {other_split} (sample {other_sid!r}) "
                    f"and {s} (sample {sid!r}); a patient's images must stay in one split"
                )


def leakage_report(splits: dict[str, Any], index: pd.DataFrame) -> dict[str, Any]:
    """Count patients spanning splits and exact pixel duplicates across splits (reported, not fatal).

    `exact_duplicates_across_splits` counts distinct images (pixel hashes) found in more than one split;
    the pairs of sample ids behind them are counted per split pair; `within` counts surplus copies.
    """
    _require_columns(index, ("sample_id", "patient_key", "pixel_hash"))
    lists = _id_lists(splits)
    split_of = {sid: s for s in SPLITS for sid in lists[s]}
    rows = index.assign(sample_id=index["sample_id"].astype(str))
    rows = rows[rows["sample_id"].isin(split_of)].assign(split=lambda d: d["sample_id"].map(split_of))
    patient_splits = rows.groupby("patient_key")["split"].nunique()
    pairs = {f"{a}-{b}": 0 for a, b in combinations(SPLITS, 2)}
    examples: list[dict[str, list[str]]] = []
    across = within = 0
    # Tally per split, so a hash shared by many images (blank frames) costs no pairwise loop.
    for _, group in rows[rows["pixel_hash"].duplicated(keep=False)].groupby("pixel_hash", sort=True):
        members = {s: sorted(group.loc[group["split"] == s, "sample_id"]) for s in SPLITS}
        within += sum(max(len(m) - 1, 0) for m in members.values())
        across += sum(1 for m in members.values() if m) > 1
        for a, b in combinations(SPLITS, 2):
            pairs[f"{a}-{b}"] += len(members[a]) * len(members[b])
            if members[a] and members[b] and len(examples) < N_EXAMPLES:
                examples.append({"sample_ids": [members[a][0], members[b][0]], "splits": [a, b]})
    return {
        "patients_in_multiple_splits": int((patient_splits > 1).sum()),
        "exact_duplicates_across_splits": int(across),
        "exact_duplicate_pairs_by_splits": pairs,
        "exact_duplicates_within_splits": int(within),
        "examples": examples,
    }


def split_hash(splits: dict[str, Any]) -> str:
    """Identify a split by its membership alone: sha256 (16 hex) of the sorted train/val/test id lists.

    Counts, comments and the order of ids inside a list do not change it; moving an id does.
    """
    canonical = {s: sorted(ids) for s, ids in _id_lists(splits).items()}
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_splits(splits: dict[str, Any], path: Path) -> None:
    """Write the split file as indented JSON (one id per line) so it can be edited and diffed by hand."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(splits, indent=1) + "\n")


def load_splits(path: Path) -> dict[str, Any]:
    """Read a split file; DataError naming the file when it is missing, not JSON or lacks the id lists."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: split file not found; run the split stage (dvc repro split)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: split file is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: split file must hold a JSON object with train/val/test lists")
    try:
        _id_lists(data)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return data
