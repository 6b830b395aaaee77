"""Group-preserving assignment: the units a split keeps whole, and how units are dealt to splits.

A unit is a patient (or a site) joined with every other unit it shares a picture with, so neither a
patient nor an identical or near-identical image can end up on both sides of a split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from medtune.choices import SPLIT_NAMES
from medtune.errors import ConfigError, DataError

CANDIDATES = 64  # seeded shuffles tried per stratum; the one closest to the wanted image counts is kept


def require_columns(index: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in index.columns]
    if missing:
        raise DataError(f"index is missing column(s) {', '.join(missing)}; re-run the preprocess stage")


def link_groups(
    index: pd.DataFrame, base: pd.Series, links: tuple[np.ndarray, np.ndarray] | None = None,
    join_duplicates: bool = True,
) -> pd.Series:
    """The unit a split keeps whole: samples sharing a base group (patient or site), a pixel hash or a
    near-duplicate link (index row pairs) are joined. Each unit is named by its smallest base key."""
    n = len(index)
    base_codes, base_names = pd.factorize(base.astype(str).to_numpy(), sort=True)
    joined = join_duplicates and "pixel_hash" in index.columns
    hash_codes = pd.factorize(index["pixel_hash"])[0] if joined else np.arange(n)
    n_base = len(base_names)
    # Graph over samples, base groups and pixel hashes; connected components are the units.
    src = np.concatenate([np.arange(n), np.arange(n)])
    dst = np.concatenate([n + base_codes, n + n_base + hash_codes])
    if links is not None:
        src, dst = np.concatenate([src, links[0]]), np.concatenate([dst, links[1]])
    size = n + n_base + int(hash_codes.max(initial=-1)) + 1
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    sample_component = component[:n]
    # The smallest base code in a component names it, so names do not depend on row order.
    first = pd.Series(base_codes).groupby(sample_component).transform("min").to_numpy()
    return pd.Series(np.asarray(base_names)[first], index=index.index, name="group")


def _strata(index: pd.DataFrame, groups: pd.Series, stratify: bool, order: pd.Series) -> pd.DataFrame:
    """One row per group: image count, stratum (majority `stratum` code, else majority target, ties to
    the smaller; 0 unstratified) and its order key, sorted by that key (the seeded shuffle starts here)."""
    codes = index[_codes_column(index)]
    by_group = codes.groupby(groups, sort=True)
    majority: pd.Series | int = 0
    if stratify:  # images per (group, code); idxmax takes the first (smallest) code on ties
        per_code = codes.groupby([groups, codes]).size().unstack(fill_value=0)
        majority = per_code.idxmax(axis=1).astype(int)
    strata = pd.DataFrame({"target": majority, "n": by_group.size(), "order": order.groupby(groups).min()})
    return strata.sort_values("order", kind="stable")


def unit_order(index: pd.DataFrame, groups: pd.Series, unit: str) -> pd.Series:
    """Per-sample key that orders the units before the seeded shuffle; the same in every clone.

    Patients: ingest's `patient_order` (a rank from a public salt, not the per-clone HMAC key), so two
    clones with different keys deal the same patients to the same splits. Sites: their names. An index
    written before `patient_order` existed falls back to the unit name (stable only under one HMAC key).
    """
    if unit == "patient" and "patient_order" in index.columns:
        return index["patient_order"].astype(np.int64)
    return groups.astype(str)


def _check_groups_per_stratum(strata: pd.DataFrame, index: pd.DataFrame, unit: str, needed: int) -> None:
    counts = strata["target"].value_counts().sort_index()
    if counts.min() >= needed:
        return
    if unit == "site":
        raise DataError(f"site split needs at least {needed} sites (one per split); found {len(strata)}")
    codes = _codes_column(index)
    names = index.drop_duplicates(codes).set_index(codes)["label"]
    per_class = ", ".join(f"{names.get(t, t)}={n}" for t, n in counts.items())
    what = "class" if codes == "target" or index[codes].equals(index.get("target")) else "stratum"
    raise DataError(f"grouped split needs at least {needed} patients per {what} (one for each split); "
                    f"patients per {what}: {per_class}")


def _codes_column(index: pd.DataFrame) -> str:
    """The per-sample integer codes a split balances: `stratum` (the split stage's, any task), else the
    class `target`."""
    return "stratum" if "stratum" in index.columns else "target"


def _assign_stratum(sizes: pd.Series, targets: dict[str, float], rng: np.random.Generator) -> dict[str, list]:
    """Deal one stratum's groups to splits at random, keeping image counts near the targets.

    Each candidate shuffles the groups and cuts the sequence where the running image count crosses the
    split boundaries (a group goes where its middle image falls), so which patients land in val or test
    does not depend on how many images they have (dealing the largest first left val/test with the
    single-image patients). Of CANDIDATES seeded shuffles the one nearest the targets wins; a split left
    empty takes the smallest group of the split holding most groups.
    """
    names, n = list(targets), sizes.to_numpy(dtype=np.float64)
    want = np.array([targets[s] for s in names])
    bounds = np.cumsum(want)[:-1]
    best, best_cost = np.zeros(0, dtype=np.int64), np.inf
    for _ in range(CANDIDATES):
        perm = rng.permutation(len(n))
        middle = np.cumsum(n[perm]) - n[perm] / 2
        which = np.empty(len(n), dtype=np.int64)
        which[perm] = np.searchsorted(bounds, middle, side="right")
        filled = np.bincount(which, weights=n, minlength=len(names))
        empty = int((np.bincount(which, minlength=len(names)) == 0).sum())
        cost = empty * n.sum() + np.abs(filled - want).sum()
        if cost < best_cost:
            best, best_cost = which, cost
    _fill_empty(best, n, len(names))
    return {name: list(sizes.index[best == i]) for i, name in enumerate(names)}


def _fill_empty(which: np.ndarray, n: np.ndarray, n_splits: int) -> None:
    """Give each empty split the smallest group of the split holding most groups (in place)."""
    for split in range(n_splits):
        if (which == split).any():
            continue
        donor = int(np.bincount(which, minlength=n_splits).argmax())
        members = np.flatnonzero(which == donor)
        which[members[np.argmin(n[members])]] = split  # argmin: first of equals


def check_index(index: pd.DataFrame) -> None:
    require_columns(index, ("sample_id", "patient_key", "label", _codes_column(index)))
    if index.empty:
        raise DataError("index is empty: no images to split")
    if index["patient_key"].isna().any():
        raise DataError(f"index has {int(index['patient_key'].isna().sum())} sample(s) with no patient_key")


def split_by_group(
    index: pd.DataFrame, groups: pd.Series, fractions: dict[str, float], seed: int, unit: str = "patient"
) -> dict[str, list[str]]:
    """Split sample_ids so no group spans two splits; patient groups are stratified by majority label.

    `fractions` maps split name to its share (in order, e.g. train, val, test); unlisted splits stay empty.
    """
    check_index(index)
    strata = _strata(index, groups, unit == "patient", unit_order(index, groups, unit))
    _check_groups_per_stratum(strata, index, unit, needed=len(fractions))
    share = np.array(list(fractions.values()))
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for _, stratum in strata.groupby("target", sort=True):
        sizes = stratum["n"]
        targets = dict(zip(fractions, share * sizes.sum()))
        for name, keys in _assign_stratum(sizes, targets, rng).items():
            split_of.update({k: name for k in keys})
    assignment = groups.map(split_of)
    return {s: sorted(index.loc[assignment == s, "sample_id"].astype(str)) for s in SPLIT_NAMES}


def holdout_site_split(
    index: pd.DataFrame, groups: pd.Series, sites: pd.Series, site: str, val_fraction: float, seed: int,
    unit: str = "patient",
) -> dict[str, list[str]]:
    """Leave one site out: its images (and every unit linked to them) are test; the rest split train/val."""
    at_site = (sites.astype(str) == site).to_numpy()
    if not at_site.any():
        known = ", ".join(sorted(sites.astype(str).unique()))
        raise ConfigError(f"params.yaml: split.holdout_site: {site!r} is not a site in the index; sites: {known}")
    test = groups.isin(set(groups[at_site])).to_numpy()
    if test.all():
        raise DataError(f"holdout site {site!r}: every image is linked to it, none left for train/val")
    rest = index[~test]
    fractions = {"train": 1 - val_fraction, "val": val_fraction}
    splits = split_by_group(rest, groups[~test], fractions, seed, unit)
    return {**splits, "test": sorted(index.loc[test, "sample_id"].astype(str))}
