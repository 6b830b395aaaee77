"""Patient-grouped, stratified K-fold CV over train + val (`split.folds`); the test split stays out.

Every train+val sample lands in exactly one fold, and the unit a fold keeps whole is the split's own: a
patient joined with every patient that shares an identical or near-identical picture with it. Folds are
lists of sample ids under `folds` in splits.json, validated on load like the splits. How promote uses them:
docs/architecture.md (K-fold CV).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medtune.data.grouping import link_groups
from medtune.errors import DataError

# split.folds: auto means K-fold CV when train + val hold fewer patients than this (a 15% val split of
# fewer than 200 patients is under 30 patients: too few to choose a champion, threshold or calibration on).
AUTO_MAX_PATIENTS = 200
AUTO_FOLDS = 5


def resolve_folds(setting: int | str, n_patients: int) -> int:
    """The number of folds `split.folds` asks for here: 0 (no CV) or K >= 2."""
    if setting == "auto":
        return AUTO_FOLDS if n_patients < AUTO_MAX_PATIENTS else 0
    return int(setting)


def assign_folds(index: pd.DataFrame, splits: dict[str, Any], setting: int | str, seed: int,
                 links: tuple[np.ndarray, np.ndarray] | None = None) -> list[list[str]]:
    """K lists of train+val sample ids (K from `setting`; [] for none), grouped by linked patient and
    stratified by the index's `stratum` (else `target`), seeded."""
    pool = {str(s) for name in ("train", "val") for s in splits[name]}
    listed = index["sample_id"].astype(str).isin(pool).to_numpy()
    rows = index[listed]
    k = resolve_folds(setting, rows["patient_key"].nunique())
    if k == 0:
        return []
    kept = None
    if links is not None:  # near-duplicate links are index row pairs: keep those inside train+val, renumbered
        at = np.full(len(index), -1)
        at[listed] = np.arange(int(listed.sum()))
        inside = (at[links[0]] >= 0) & (at[links[1]] >= 0)
        kept = (at[links[0][inside]], at[links[1][inside]])
    groups = link_groups(rows.reset_index(drop=True), rows["patient_key"].reset_index(drop=True), kept)
    if groups.nunique() < k:
        raise DataError(f"split.folds: {k} folds need at least {k} patients in train + val, found "
                        f"{groups.nunique()}")
    strata = rows["stratum"] if "stratum" in rows.columns else rows.get("target", pd.Series(0, index=rows.index))
    # Imported here: the tune, promote and test stages read folds but never make them (~1 s of scikit-learn).
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    ids = rows["sample_id"].astype(str).to_numpy()
    return [sorted(ids[held]) for _, held in cv.split(ids, np.asarray(strata).astype(int), groups.to_numpy())]


def validate_folds(splits: dict[str, Any], index: pd.DataFrame) -> None:
    """A (possibly hand-edited) fold list: each train+val sample in exactly one fold, no test sample in any,
    no patient in two folds. A split without `folds` passes."""
    folds = splits.get("folds")
    if not folds:
        return
    if not isinstance(folds, list) or len(folds) < 2 or not all(isinstance(f, list) and f for f in folds):
        raise DataError("split file: folds must be a list of at least 2 non-empty lists of sample ids")
    fold_of: dict[str, int] = {}
    for k, fold in enumerate(folds):
        for sid in map(str, fold):
            if sid in fold_of:
                raise DataError(f"split file: sample {sid!r} is in folds {fold_of[sid]} and {k}")
            fold_of[sid] = k
    pool = {str(s) for name in ("train", "val") for s in splits[name]}
    if set(fold_of) != pool:
        odd = sorted(set(fold_of) ^ pool)[0]
        where = "a fold but not in train/val" if odd in fold_of else "train/val but in no fold"
        raise DataError(f"split file: sample {odd!r} is in {where}; folds cover train + val exactly")
    patient_of = dict(zip(index["sample_id"].astype(str), index["patient_key"].astype(str)))
    seen: dict[str, int] = {}
    for sid, k in fold_of.items():
        other = seen.setdefault(patient_of[sid], k)
        if other != k:
            raise DataError(f"split file: patient {patient_of[sid]!r} is in folds {other} and {k}; a patient's "
                            "images must stay in one fold")
