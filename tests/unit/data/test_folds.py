"""K-fold CV over train + val: grouped by (linked) patient, stratified, test untouched, leakage counted."""

from __future__ import annotations

import dataclasses

import pytest
from tests.unit.data.test_split import make_index

from medtune.config import SplitCfg
from medtune.data.folds import AUTO_MAX_PATIENTS, assign_folds, resolve_folds, validate_folds
from medtune.data.leakage import fold_leakage
from medtune.data.split import make_splits, split_hash, validate_splits
from medtune.errors import DataError


def folds_of(splits: dict) -> dict[str, int]:
    return {sid: k for k, fold in enumerate(splits["folds"]) for sid in fold}


@pytest.mark.parametrize("seed", [0, 3])
def test_every_train_val_patient_in_exactly_one_fold_and_test_in_none(seed: int) -> None:
    index = make_index([25, 15], max_images=3, seed=seed)
    splits = make_splits(index, dataclasses.replace(SplitCfg(), method="grouped", folds=5), seed)
    fold_of = folds_of(splits)
    assert len(splits["folds"]) == 5
    assert sorted(fold_of) == sorted(splits["train"] + splits["val"]) and not set(fold_of) & set(splits["test"])
    patients = index.assign(fold=index["sample_id"].map(fold_of)).dropna(subset=["fold"])
    assert (patients.groupby("patient_key")["fold"].nunique() == 1).all()
    per_fold = patients.groupby("fold")["target"].mean()  # stratified: each fold near the overall ratio
    assert per_fold.max() - per_fold.min() < 0.25
    validate_splits(splits, index)
    assert fold_leakage(splits, index, None, 12) == {"folds": 5, "patients_in_multiple_folds": 0,
                                                      "exact_duplicates_across_folds": 0}


def test_auto_rule_and_the_hash_tracks_folds() -> None:
    assert resolve_folds("auto", AUTO_MAX_PATIENTS - 1) == 5 and resolve_folds("auto", AUTO_MAX_PATIENTS) == 0
    index = make_index([20, 20])
    plain = make_splits(index, dataclasses.replace(SplitCfg(), method="grouped"), 0)
    auto = make_splits(index, dataclasses.replace(SplitCfg(), method="grouped", folds="auto"), 0)
    assert "folds" not in plain and len(auto["folds"]) == 5
    assert split_hash(plain) != split_hash(auto) and split_hash(plain) == split_hash({**auto, "folds": []})


def test_identical_pictures_join_patients_into_one_fold() -> None:
    index = make_index([20, 20])
    index.loc[index["patient_key"] == "pat0_1", "pixel_hash"] = index.loc[index["patient_key"] == "pat1_2",
                                                                          "pixel_hash"].item()
    splits = {"train": list(index["sample_id"]), "val": [], "test": []}
    fold_of = folds_of({"folds": assign_folds(index, splits, 4, seed=1)})
    assert fold_of["s0_1_0"] == fold_of["s1_2_0"]


def test_hand_edited_folds_are_checked() -> None:
    index = make_index([20, 20], max_images=2, seed=1)
    splits = make_splits(index, dataclasses.replace(SplitCfg(), method="grouped", folds=3), 0)
    dup = [list(f) for f in splits["folds"]]
    dup[1].append(dup[0][0])
    with pytest.raises(DataError, match="is in folds 0 and 1"):
        validate_folds({**splits, "folds": dup}, index)
    with pytest.raises(DataError, match="in a fold but not in train/val"):
        validate_folds({**splits, "folds": [*splits["folds"][:-1], [*splits["folds"][-1], splits["test"][0]]]},
                       index)
    two_images = index.groupby("patient_key")["sample_id"].apply(list)
    a, b = next(ids for ids in two_images if len(ids) == 2 and ids[0] in folds_of(splits))
    split_of = folds_of(splits)
    other = [list(f) for f in splits["folds"]]
    other[split_of[b]].remove(b)
    other[(split_of[a] + 1) % 3].append(b)
    with pytest.raises(DataError, match="images must stay in one fold"):
        validate_folds({**splits, "folds": other}, index)
    assert fold_leakage({**splits, "folds": other}, index, None, 12)["patients_in_multiple_folds"] == 1
