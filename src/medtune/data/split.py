"""Train/val/test splits: grouped by hashed patient, stratified by label, seeded, hand-editable JSON.

The split file is data a user may edit (like nnU-Net's splits_final.json), so it is validated on load
and identified by a hash of its id lists alone, which the test-once ledger and the registry tags carry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.choices import SPLIT_NAMES
from medtune.config import SplitCfg
from medtune.data.fixed_split import fixed_split
from medtune.data.folds import assign_folds, validate_folds
from medtune.data.grouping import (
    check_index,
    holdout_site_split,
    link_groups,
    require_columns,
    split_by_group,
)
from medtune.errors import ConfigError, DataError
from medtune.jsonio import write_json
from medtune.task import Task

MIN_STRATUM = 3  # patients: one per split
MAX_COUNTED_LABELS = 50  # splits.json counts images per label up to this many labels (regression: values)


def split_by_patient(
    index: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Split sample_ids so no patient spans two splits, stratified by each patient's majority label."""
    check_index(index)
    fractions = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    return split_by_group(index, link_groups(index, index["patient_key"]), fractions, seed)


def strata_for(index: pd.DataFrame, task: Task) -> pd.Series:
    """What a grouped split balances across train/val/test, per sample (integer codes).

    Classes for classification; the label combination for multilabel (combinations held by fewer than
    MIN_STRATUM patients pooled); quantile bins of the target for regression (about six patients a bin
    at least, five bins at most), so each split sees the whole range.
    """
    if task.kind in ("binary", "multiclass"):
        return index["target"].astype(int)
    if task.kind == "regression":
        bins = int(min(5, max(1, index["patient_key"].nunique() // 6)))
        return pd.Series(pd.qcut(index["target"].astype(float).rank(method="first"), bins, labels=False),
                         index=index.index).astype(int)
    combos = index["targets"].map(lambda t: "".join("?" if pd.isna(v) else str(int(v)) for v in t))
    patients = index.groupby(combos)["patient_key"].nunique()
    combos = combos.where(combos.map(patients) >= MIN_STRATUM, "rare")
    return pd.Series(pd.factorize(combos, sort=True)[0], index=index.index)


FEW_PATIENTS = 30  # fewer patients than this in val or test: selection / the test CI are said to be fragile


def few_patients_warning(patients: dict[str, int]) -> str | None:
    """One plain sentence when val or test rest on fewer than FEW_PATIENTS patients; None otherwise.

    `patients` maps split name -> distinct patients. Worded to stay true whatever the split method.
    """
    few = {s: patients[s] for s in ("val", "test") if s in patients and patients[s] < FEW_PATIENTS}
    if not few:
        return None
    stakes = {"val": "model selection (the champion, its threshold)", "test": "the test confidence interval"}
    where = " and ".join(f"{s} has {n} patient{'s' * (n != 1)}" for s, n in few.items())
    return (f"{where}: {' and '.join(stakes[s] for s in few)} rest{'s' * (len(few) == 1)} on very few patients "
            f"(< {FEW_PATIENTS}); add patients, or prefer K-fold cross-validation grouped by patient "
            "(split.folds: auto or K) to a single split")


def split_summary(splits: dict[str, Any]) -> dict[str, Any]:
    """What reports/split/summary.json holds: method, fractions, per-split counts and plain warnings."""
    counts = splits["counts"]
    warning = few_patients_warning({s: counts[s]["patients"] for s in SPLIT_NAMES})
    return {"method": splits["method"], "seed": splits["seed"], "fractions": splits["fractions"],
            "samples": {s: counts[s]["samples"] for s in SPLIT_NAMES},
            "patients": {s: counts[s]["patients"] for s in SPLIT_NAMES},
            "by_label": {s: counts[s]["by_label"] for s in SPLIT_NAMES},
            "folds": len(splits.get("folds") or []),
            "warnings": [warning] if warning else []}


def _counts(splits: dict[str, list[str]], index: pd.DataFrame) -> dict[str, dict[str, Any]]:
    rows = index.set_index(index["sample_id"].astype(str))
    out = {}
    for s in SPLIT_NAMES:
        part = rows.loc[splits[s]]
        by_label = part["label"].astype(str).value_counts().sort_index().head(MAX_COUNTED_LABELS)
        out[s] = {
            "samples": len(part),
            "patients": int(part["patient_key"].nunique()),
            "by_label": {k: int(v) for k, v in by_label.items()},
        }
    return out


def _sites(index: pd.DataFrame, column: str) -> pd.Series:
    require_columns(index, (column,))
    return index[column].fillna("").astype(str).replace("", "unknown")


def make_splits(
    index: pd.DataFrame, cfg: SplitCfg, seed: int, *, fixed: pd.Series | None = None,
    links: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Build the JSON-ready split file: method, seed, observed fractions, counts and the id lists.

    A fixed assignment wins under `auto` (`fixed`, one split name per index row from split.fixed_file, else
    the index's `split` column); otherwise groups (patient or site, joined through identical pictures and
    the near-duplicate `links`, index row pairs) are kept whole, optionally leaving one site out as test.
    """
    source = None if cfg.method == "grouped" else ("fixed_file" if fixed is not None else
                                                   "fixed" if "split" in index.columns else None)
    if source and (cfg.holdout_site is not None or cfg.group_by != "patient"):
        raise ConfigError(f"params.yaml: split: the labels give a fixed split ({source}), so group_by/"
                          "holdout_site cannot apply; set split.method: grouped to re-split")
    if source == "fixed_file":
        splits = fixed_split(index.assign(split=fixed))
    elif source == "fixed":
        splits = fixed_split(index)
    else:
        splits = _grouped(index, cfg, seed, links)
    splits = in_index_order(splits, index)
    total = sum(len(v) for v in splits.values())
    grouped = "grouped" if cfg.group_by == "patient" else "grouped_by_site"
    method = source or ("holdout_site" if cfg.holdout_site is not None else grouped)
    folds = assign_folds(index, splits, cfg.folds, seed, links)  # [] without CV
    return {
        "method": method,
        "seed": seed,
        "fractions": {s: round(len(splits[s]) / total, 4) for s in SPLIT_NAMES},
        "counts": _counts(splits, index),
        **splits,
        **({"folds": [in_index_order({"f": f}, index)["f"] for f in folds]} if folds else {}),
    }


def in_index_order(splits: dict[str, list[str]], index: pd.DataFrame) -> dict[str, list[str]]:
    """Each id list in the index's row order (the manifest's path order), the same in every clone.

    Sorting by sample id would follow the per-clone HMAC key, and training reads a split in file order.
    """
    rows = index.sort_values("row") if "row" in index.columns else index.sort_values("sample_id")
    position = {sid: i for i, sid in enumerate(rows["sample_id"].astype(str))}
    return {name: sorted(ids, key=position.__getitem__) for name, ids in splits.items()}


def _grouped(index: pd.DataFrame, cfg: SplitCfg, seed: int,
             links: tuple[np.ndarray, np.ndarray] | None) -> dict[str, list[str]]:
    check_index(index)
    if cfg.group_by == "patient":
        groups = link_groups(index, index["patient_key"], links)
    else:
        # Sites stay whole and so do patients (a patient seen at two sites joins them); a copied image
        # across sites does not merge whole sites: the leakage report shows it instead.
        patients = _pairs_within(index["patient_key"])
        groups = link_groups(index, _sites(index, cfg.site_column), patients, join_duplicates=False)
    if cfg.holdout_site is not None:
        sites = _sites(index, cfg.site_column)
        return holdout_site_split(index, groups, sites, cfg.holdout_site, cfg.val_fraction, seed, cfg.group_by)
    train = 1 - cfg.val_fraction - cfg.test_fraction
    fractions = {"train": train, "val": cfg.val_fraction, "test": cfg.test_fraction}
    return split_by_group(index, groups, fractions, seed, cfg.group_by)


def _pairs_within(groups: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs joining each group's members to its first member, as links for link_groups."""
    codes = pd.factorize(groups.to_numpy())[0]
    first = pd.Series(np.arange(len(codes))).groupby(codes).transform("min").to_numpy()
    return first, np.arange(len(codes))


def _id_lists(splits: dict[str, Any]) -> dict[str, list[str]]:
    """The train/val/test lists of a split dict, or DataError when one is missing or not a list."""
    bad = [s for s in SPLIT_NAMES if not isinstance(splits.get(s), list)]
    if bad:
        raise DataError(f"split file needs a list of sample ids under {', '.join(bad)}")
    return {s: [str(x) for x in splits[s]] for s in SPLIT_NAMES}


def validate_splits(splits: dict[str, Any], index: pd.DataFrame) -> None:
    """Check a (possibly hand-edited) split: each index sample in exactly one split, no patient in two."""
    require_columns(index, ("sample_id", "patient_key"))
    lists = _id_lists(splits)
    split_of: dict[str, str] = {}
    for s in SPLIT_NAMES:
        if not lists[s]:
            raise DataError(f"split file: the {s} split is empty")
        for sid in lists[s]:
            if sid in split_of:
                where = "twice in" if split_of[sid] == s else f"in both {split_of[sid]} and"
                raise DataError(f"split file: sample {sid!r} is listed {where} {s}")
            split_of[sid] = s
    patient_of = dict(zip(index["sample_id"].astype(str), index["patient_key"].astype(str)))
    unknown = [sid for s in SPLIT_NAMES for sid in lists[s] if sid not in patient_of]
    if unknown:
        raise DataError(f"split file: sample {unknown[0]!r} is not in the index ({len(unknown)} unknown ids)")
    missing = [sid for sid in patient_of if sid not in split_of]
    if missing:
        raise DataError(
            f"split file: sample {missing[0]!r} is in no split ({len(missing)} index samples missing)"
        )
    validate_folds(splits, index)
    first_seen: dict[str, tuple[str, str]] = {}
    for s in SPLIT_NAMES:
        for sid in lists[s]:
            key = patient_of[sid]
            other_split, other_sid = first_seen.setdefault(key, (s, sid))
            if other_split != s:
                raise DataError(
                    f"split file: patient {key!r} is in both {other_split} (sample {other_sid!r}) "
                    f"and {s} (sample {sid!r}); a patient's images must stay in one split"
                )


def split_hash(splits: dict[str, Any]) -> str:
    """Identify a split by its membership alone: sha256 (16 hex) of the sorted train/val/test id lists.

    Counts, comments and the order of ids inside a list do not change it; moving an id (or a fold) does.
    """
    canonical: dict[str, Any] = {s: sorted(ids) for s, ids in _id_lists(splits).items()}
    if splits.get("folds"):  # a split with folds is another split: its CV estimates differ
        canonical["folds"] = sorted(sorted(map(str, f)) for f in splits["folds"])
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def current_split(splits: dict[str, Any], recorded: str, what: str) -> str:
    """The split's hash, after checking it is the one `what` (an earlier stage's output) was made on."""
    shash = split_hash(splits)
    if recorded != shash:
        raise DataError(f"{what} was made on split {recorded}, not the current {shash}; re-run the stage that "
                        "writes it (dvc repro)")
    return shash


def write_splits(splits: dict[str, Any], path: Path) -> None:
    """Write the split file as indented JSON (one id per line) so it can be edited and diffed by hand."""
    write_json(Path(path), splits, sort_keys=False)


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


def load_valid_splits(path: Path, index: pd.DataFrame | Path) -> dict[str, Any]:
    """Read a split file and check it against the index (`index.parquet`, its folder, or the frame).

    Stages that consume splits call this, so a hand edit that loses a sample or puts one patient in two
    splits fails where the split is used, in one line naming the file.
    """
    if not isinstance(index, pd.DataFrame):
        index_path = Path(index) / "index.parquet" if Path(index).is_dir() else Path(index)
        if not index_path.is_file():
            raise DataError(f"{index_path}: not found; run the `preprocess` stage first")
        index = pd.read_parquet(index_path)
    splits = load_splits(path)
    try:
        validate_splits(splits, index)
    except DataError as exc:
        raise DataError(f"{path}: {str(exc).removeprefix('split file: ')}") from None
    return splits
