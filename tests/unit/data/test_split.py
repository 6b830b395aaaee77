"""Unit tests for patient-grouped splits, the split file, and leakage checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medtune.config import SplitCfg
from medtune.data.fixed_split import fixed_split
from medtune.data.leakage import leakage_report
from medtune.data.split import (
    load_splits,
    load_valid_splits,
    make_splits,
    split_by_patient,
    split_hash,
    validate_splits,
    write_splits,
)
from medtune.errors import ConfigError, DataError

LABELS = ("normal", "pneumonia", "effusion")


def make_index(patients_per_class: list[int], max_images: int = 1, seed: int = 0) -> pd.DataFrame:
    """A synthetic index: patients per class, each with 1..max_images images and a unique pixel hash."""
    rng = np.random.default_rng(seed)
    rows = []
    for target, n_patients in enumerate(patients_per_class):
        for p in range(n_patients):
            for i in range(int(rng.integers(1, max_images + 1))):
                sid = f"s{target}_{p}_{i}"
                rows.append(
                    {
                        "sample_id": sid,
                        "patient_key": f"pat{target}_{p}",
                        "label": LABELS[target],
                        "target": target,
                        "pixel_hash": f"h_{sid}",
                    }
                )
    index = pd.DataFrame(rows)
    index.insert(0, "row", np.arange(len(index)))
    return index


def patient_splits(splits: dict, index: pd.DataFrame) -> pd.Series:
    """Number of distinct splits each patient's samples landed in."""
    split_of = {sid: s for s in ("train", "val", "test") for sid in splits[s]}
    return index.assign(split=index["sample_id"].map(split_of)).groupby("patient_key")["split"].nunique()


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("shape", [([30, 30], 1), ([50, 12], 4), ([5, 40, 9], 3), ([3, 3], 2)])
def test_no_patient_in_two_splits_and_every_sample_once(seed: int, shape: tuple) -> None:
    index = make_index(shape[0], max_images=shape[1], seed=seed)
    splits = split_by_patient(index, 0.15, 0.15, seed)
    assert (patient_splits(splits, index) == 1).all()
    listed = splits["train"] + splits["val"] + splits["test"]
    assert sorted(listed) == sorted(index["sample_id"]) and all(splits[s] for s in splits)
    validate_splits(splits, index)


def test_sizes_near_fractions_and_label_ratio_kept() -> None:
    index = make_index([300, 100], max_images=3, seed=2)
    splits = split_by_patient(index, 0.2, 0.1, seed=5)
    n = len(index)
    for name, fraction in (("train", 0.7), ("val", 0.2), ("test", 0.1)):
        part = index[index["sample_id"].isin(splits[name])]
        assert abs(len(part) / n - fraction) < 0.01, name
        # stratified: each split keeps the cohort's 75% / 25% label mix (unstratified drifts ~0.04)
        assert abs((part["target"] == 0).mean() - (index["target"] == 0).mean()) < 0.01, name


def test_large_patient_does_not_skew_sizes() -> None:
    index = make_index([40, 40], seed=3)
    big = pd.DataFrame(
        {
            "sample_id": [f"big{i}" for i in range(60)],
            "patient_key": "whale",
            "label": "normal",
            "target": 0,
            "pixel_hash": [f"hb{i}" for i in range(60)],
        }
    )
    index = pd.concat([index, big], ignore_index=True)
    splits = split_by_patient(index, 0.15, 0.15, seed=0)
    assert "big0" in splits["train"]  # the 60-image patient only fits the train share
    assert abs(len(splits["test"]) / len(index) - 0.15) < 0.03


def test_deterministic_per_seed_and_independent_of_row_order() -> None:
    index = make_index([40, 25], max_images=3, seed=4)
    first = split_by_patient(index, 0.15, 0.15, seed=11)
    shuffled = index.sample(frac=1.0, random_state=0)
    assert split_by_patient(shuffled, 0.15, 0.15, seed=11) == first
    assert split_by_patient(index, 0.15, 0.15, seed=12) != first


def test_too_few_patients_per_class_names_counts() -> None:
    index = make_index([10, 2])
    with pytest.raises(DataError, match=r"at least 3 patients per class.*normal=10, pneumonia=2"):
        split_by_patient(index, 0.15, 0.15, seed=0)


def test_majority_label_decides_a_patients_stratum() -> None:
    # patient A has two pneumonia images and one normal: it counts as pneumonia when stratifying
    index = make_index([3, 2])
    extra = pd.DataFrame(
        {
            "sample_id": ["a0", "a1", "a2"],
            "patient_key": "A",
            "label": ["pneumonia", "pneumonia", "normal"],
            "target": [1, 1, 0],
            "pixel_hash": ["ha0", "ha1", "ha2"],
        }
    )
    splits = split_by_patient(pd.concat([index, extra], ignore_index=True), 0.2, 0.2, seed=0)
    assert all(splits[s] for s in splits)  # 3 pneumonia patients now: one per split


def test_fixed_split_honoured_exactly() -> None:
    index = make_index([12, 12])
    index["split"] = np.resize(["train", "train", "val", "test", "train"], len(index))
    splits = fixed_split(index)
    for name in ("train", "val", "test"):
        assert splits[name] == sorted(index.loc[index["split"] == name, "sample_id"])


@pytest.mark.parametrize(
    "values, message", [(["train", "dev"], "'dev'"), (["train", "val"], "no samples to test")]
)
def test_fixed_split_rejects_bad_column(values: list[str], message: str) -> None:
    index = make_index([6, 6])
    index["split"] = np.resize(values, len(index))
    with pytest.raises(DataError, match=message):
        fixed_split(index)
    with pytest.raises(DataError, match="no 'split' column"):
        fixed_split(index.drop(columns="split"))


def test_auto_picks_fixed_when_split_column_exists_grouped_ignores_it() -> None:
    index = make_index([20, 20])
    index["split"] = np.resize(["test", "val", "train", "train", "train"], len(index))
    auto = make_splits(index, SplitCfg(method="auto"), seed=0)
    # Lists follow the index's row order (the manifest's path order), not the per-clone sample ids.
    assert auto["method"] == "fixed" and auto["test"] == index.loc[index["split"] == "test", "sample_id"].tolist()
    grouped = make_splits(index, SplitCfg(method="grouped"), seed=0)
    assert grouped["method"] == "grouped" and grouped["test"] != auto["test"]
    assert make_splits(index.drop(columns="split"), SplitCfg(method="auto"), seed=0)["method"] == "grouped"
    counts = auto["counts"]["val"]
    val_rows = index[index["split"] == "val"]
    assert counts["samples"] == len(val_rows) and counts["patients"] == val_rows["patient_key"].nunique()
    assert counts["by_label"] == val_rows["label"].value_counts().to_dict()


def test_validate_catches_patient_across_splits() -> None:
    index = make_index([10, 10], max_images=1)
    index.loc[index["sample_id"] == "s1_0_0", "patient_key"] = "pat0_0"  # one patient, two labels
    splits = {
        "train": ["s0_0_0"] + [s for s in index["sample_id"] if s not in ("s0_0_0", "s1_0_0", "s0_1_0")],
        "val": ["s0_1_0"],
        "test": ["s1_0_0"],
    }
    with pytest.raises(DataError, match=r"patient 'pat0_0' is in both train \(sample 's0_0_0'\) and test"):
        validate_splits(splits, index)


def test_validate_catches_missing_duplicated_and_unknown_samples() -> None:
    index = make_index([10, 10])
    good = split_by_patient(index, 0.2, 0.2, seed=0)
    validate_splits(good, index)
    missing = {**good, "val": good["val"][1:]}
    with pytest.raises(DataError, match=f"sample '{good['val'][0]}' is in no split"):
        validate_splits(missing, index)
    moved = {**good, "test": good["test"] + [good["train"][0]]}
    with pytest.raises(DataError, match=f"sample '{good['train'][0]}' is listed in both train and test"):
        validate_splits(moved, index)
    twice = {**good, "val": good["val"] + [good["val"][0]]}
    with pytest.raises(DataError, match="listed twice in val"):
        validate_splits(twice, index)
    unknown = {**good, "train": good["train"] + ["ghost"]}
    with pytest.raises(DataError, match="'ghost' is not in the index"):
        validate_splits(unknown, index)


def test_leakage_report_finds_planted_duplicates() -> None:
    index = make_index([12, 12])
    splits = split_by_patient(index, 0.2, 0.2, seed=0)
    plant = [
        (splits["train"][0], splits["val"][0]),
        (splits["train"][1], splits["test"][0]),
        (splits["train"][2], splits["train"][3]),
    ]  # the last pair stays inside train
    for a, b in plant:
        index.loc[index["sample_id"] == b, "pixel_hash"] = index.loc[
            index["sample_id"] == a, "pixel_hash"
        ].item()
    report, _ = leakage_report(splits, index)
    assert report["exact_duplicates_across_splits"] == 2
    assert report["exact_duplicate_pairs_by_splits"] == {"train-val": 1, "train-test": 1, "val-test": 0}
    assert report["exact_duplicates_within_splits"] == 1
    assert {tuple(e["sample_ids"]) for e in report["examples"]} == set(plant[:2])
    assert report["patients_in_multiple_splits"] == 0
    validate_splits(splits, index)  # duplicates are reported, not fatal


def test_leakage_report_counts_patients_across_splits() -> None:
    index = make_index([10, 10])
    splits = split_by_patient(index, 0.2, 0.2, seed=0)
    index.loc[index["sample_id"] == splits["test"][0], "patient_key"] = "shared"
    index.loc[index["sample_id"] == splits["train"][0], "patient_key"] = "shared"
    assert leakage_report(splits, index)[0]["patients_in_multiple_splits"] == 1


def test_split_hash_ignores_metadata_and_order_but_tracks_membership() -> None:
    index = make_index([10, 10])
    splits = make_splits(index, SplitCfg(method="grouped", val_fraction=0.2, test_fraction=0.2), seed=0)
    edited = {
        "counts": {"val": {"samples": 999}},
        "comment": "hand edit",
        "test": splits["test"][::-1],
        "val": splits["val"],
        "train": splits["train"],
        "method": "grouped",
    }
    assert split_hash(edited) == split_hash(splits)
    moved = {**splits, "train": splits["train"][1:], "val": splits["val"] + splits["train"][:1]}
    assert split_hash(moved) != split_hash(splits)
    assert len(split_hash(splits)) == 16


def test_write_load_roundtrip_is_hand_editable(tmp_path) -> None:
    index = make_index([8, 8])
    splits = make_splits(index, SplitCfg(method="grouped", val_fraction=0.2, test_fraction=0.2), seed=3)
    path = tmp_path / "splits" / "splits.json"
    write_splits(splits, path)
    assert load_splits(path) == splits
    assert f'\n  "{splits["train"][0]}",\n' in path.read_text()  # one id per line for diffs
    json.loads(path.read_text())


def test_load_splits_errors_name_the_file(tmp_path) -> None:
    broken = tmp_path / "splits.json"
    broken.write_text('{"train": ["a",], }')
    with pytest.raises(DataError, match=f"{broken}: split file is not valid JSON"):
        load_splits(broken)
    broken.write_text('{"train": ["a"], "val": ["b"]}')
    with pytest.raises(DataError, match=f"{broken}: .*under test"):
        load_splits(broken)
    with pytest.raises(DataError, match="not found"):
        load_splits(tmp_path / "absent.json")


def test_missing_patient_key_is_refused() -> None:
    index = make_index([5, 5])
    index.loc[2, "patient_key"] = None
    with pytest.raises(DataError, match="1 sample\\(s\\) with no patient_key"):
        split_by_patient(index, 0.2, 0.2, seed=0)


def with_sites(index: pd.DataFrame, n_sites: int) -> pd.DataFrame:
    """Give each patient one of n_sites manufacturers (round robin over patients)."""
    codes = pd.factorize(index["patient_key"])[0] % n_sites
    return index.assign(manufacturer=[f"site{c}" for c in codes])


def sites_per_split(splits: dict, index: pd.DataFrame) -> dict[str, set]:
    site_of = dict(zip(index["sample_id"], index["manufacturer"]))
    return {s: {site_of[sid] for sid in splits[s]} for s in ("train", "val", "test")}


def test_group_by_site_keeps_each_site_in_one_split() -> None:
    index = with_sites(make_index([30, 30], max_images=2, seed=1), n_sites=5)
    splits = make_splits(index, SplitCfg(method="grouped", group_by="site"), seed=0)
    per_split = sites_per_split(splits, index)
    assert splits["method"] == "grouped_by_site" and all(per_split.values())
    assert sum(len(v) for v in per_split.values()) == 5  # no site in two splits
    validate_splits(splits, index)
    with pytest.raises(DataError, match="at least 3 sites"):
        make_splits(with_sites(index, 2), SplitCfg(method="grouped", group_by="site"), seed=0)


def test_a_patient_seen_at_two_sites_joins_them() -> None:
    index = with_sites(make_index([30, 30], seed=1), n_sites=4)
    moved = index["patient_key"] == "pat0_1"  # site1 patient: add a second image at site2
    extra = index[moved].assign(sample_id="extra", manufacturer="site2", pixel_hash="hx", row=len(index))
    index = pd.concat([index, extra], ignore_index=True)
    splits = make_splits(index, SplitCfg(method="grouped", group_by="site"), seed=3)
    per_split = sites_per_split(splits, index)
    assert any({"site1", "site2"} <= sites for sites in per_split.values())
    validate_splits(splits, index)


def test_holdout_site_is_the_test_split() -> None:
    index = with_sites(make_index([40, 40], seed=2), n_sites=4)
    splits = make_splits(index, SplitCfg(method="grouped", holdout_site="site3", val_fraction=0.2), seed=0)
    assert splits["method"] == "holdout_site"
    assert set(splits["test"]) == set(index.loc[index["manufacturer"] == "site3", "sample_id"])
    rest = len(index) - len(splits["test"])
    assert abs(len(splits["val"]) / rest - 0.2) < 0.05  # val_fraction of what is left
    validate_splits(splits, index)
    with pytest.raises(ConfigError, match=r"holdout_site: 'site9' is not a site.*site0, site1, site2, site3"):
        make_splits(index, SplitCfg(method="grouped", holdout_site="site9"), seed=0)
    with pytest.raises(ConfigError, match="set split.method: grouped"):
        make_splits(index.assign(split="train"), SplitCfg(holdout_site="site3"), seed=0)


def test_grouped_split_keeps_identical_and_linked_images_together() -> None:
    index = make_index([20, 20], seed=0)
    index.loc[index["sample_id"] == "s1_5_0", "pixel_hash"] = "h_s0_3_0"  # same picture, two patients
    links = (np.array([0]), np.array([len(index) - 1]))  # a near-duplicate pair, as index rows
    for seed in range(6):
        splits = make_splits(index, SplitCfg(method="grouped"), seed=seed, links=links)
        split_of = {sid: s for s in ("train", "val", "test") for sid in splits[s]}
        assert split_of["s1_5_0"] == split_of["s0_3_0"]
        assert split_of[index["sample_id"].iloc[0]] == split_of[index["sample_id"].iloc[-1]]


def test_fixed_file_by_path_or_sample_id(tmp_path) -> None:
    from medtune.data.fixed_split import fixed_assignment, read_fixed_file

    index = make_index([6, 6])
    chosen = np.resize(["train", "val", "test"], len(index))
    paths_of = pd.Series([f"dir/{s}.dcm" for s in index["sample_id"]], index=index["sample_id"])
    csv = tmp_path / "official.csv"
    pd.DataFrame({"path": paths_of.to_numpy(), "split": chosen}).to_csv(csv, index=False)
    js = tmp_path / "official.json"
    js.write_text(json.dumps({s: [*index["sample_id"][chosen == s], f"rejected_{s}.dcm"]
                              for s in ("train", "val", "test")}))
    for path, sample_paths in ((csv, paths_of), (js, None)):
        fixed, unmatched = fixed_assignment(index, read_fixed_file(path), sample_paths)
        splits = make_splits(index, SplitCfg(), seed=0, fixed=fixed)
        assert splits["method"] == "fixed_file"
        assert splits["test"] == sorted(index["sample_id"][chosen == "test"])
    assert unmatched == 3
    partial = {k: v for k, v in read_fixed_file(csv).items() if not k.endswith("s0_0_0.dcm")}
    with pytest.raises(DataError, match=r"split.fixed_file: sample 's0_0_0' is not in the file \(1 of 12"):
        fixed_assignment(index, partial, paths_of)
    with pytest.raises(DataError, match="does not exist"):
        read_fixed_file(tmp_path / "absent.csv")


def test_load_valid_splits_refuses_a_bad_hand_edit(tmp_path) -> None:
    index = make_index([10, 10], max_images=3, seed=1)
    (tmp_path / "processed").mkdir()
    index.to_parquet(tmp_path / "processed" / "index.parquet")
    splits = make_splits(index, SplitCfg(method="grouped"), seed=0)
    path = tmp_path / "splits.json"
    write_splits(splits, path)
    assert load_valid_splits(path, tmp_path / "processed") == splits
    edited = json.loads(path.read_text())
    patient_of = dict(zip(index["sample_id"], index["patient_key"]))
    twin = next(a for a in edited["train"] for b in edited["train"] if a != b and patient_of[a] == patient_of[b])
    edited["train"].remove(twin)
    edited["test"].append(twin)  # one image of a train patient moved to test
    path.write_text(json.dumps(edited))
    with pytest.raises(DataError, match=f"^{path}: patient '{patient_of[twin]}' is in both train"):
        load_valid_splits(path, index)
    edited["test"].remove(twin)
    path.write_text(json.dumps(edited))
    with pytest.raises(DataError, match=f"^{path}: sample '{twin}' is in no split"):
        load_valid_splits(path, index)


def mixed_size_index(seed: int, n_patients: int = 60) -> pd.DataFrame:
    """Patients of 1, 2, 3 or 6 images (half of them single-image), two labels, a key-independent order."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        target = p % 2
        rows += [{"sample_id": f"s{p}_{i}", "patient_key": f"k{p}", "patient_order": p, "label": LABELS[target],
                  "target": target, "pixel_hash": f"h{p}_{i}"} for i in range(int(rng.choice([1, 1, 2, 3, 6])))]
    return pd.DataFrame(rows).assign(row=lambda d: np.arange(len(d)))


def test_patient_sizes_are_balanced_across_splits() -> None:
    """Val and test get patients as large as train's on average (dealing the largest patients to train
    first gave val/test 1.7 images per patient against train's 3.6), and image fractions stay close."""
    per_patient: dict[str, list[float]] = {"train": [], "val": [], "test": []}
    for seed in range(40):
        index = mixed_size_index(seed)
        splits = split_by_patient(index, 0.15, 0.15, seed)
        for name, want in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            part = index[index["sample_id"].isin(splits[name])]
            assert abs(len(part) / len(index) - want) <= 0.02, (seed, name)
            per_patient[name].append(len(part) / part["patient_key"].nunique())
    mean = {name: float(np.mean(v)) for name, v in per_patient.items()}
    assert 0.85 < mean["val"] / mean["train"] < 1.15 and 0.85 < mean["test"] / mean["train"] < 1.15, mean


def test_split_depends_on_patient_order_not_on_patient_key_names() -> None:
    """Another clone has another HMAC key, so other patient_key strings; the same patient_order gives
    the same split. Without the order column, renaming the keys changes the split."""
    index = mixed_size_index(seed=5)
    renamed = index.assign(patient_key=index["patient_key"].map(lambda k: f"{k[::-1]}-other-key"))
    assert split_by_patient(renamed, 0.15, 0.15, seed=3) == split_by_patient(index, 0.15, 0.15, seed=3)
    reversed_names = index.assign(patient_key="z" + (1000 - index["patient_order"]).astype(str))
    assert split_by_patient(reversed_names, 0.15, 0.15, seed=3) == split_by_patient(index, 0.15, 0.15, seed=3)
    no_order = index.drop(columns="patient_order")
    assert split_by_patient(reversed_names.drop(columns="patient_order"), 0.15, 0.15, seed=3) != split_by_patient(
        no_order, 0.15, 0.15, seed=3)


def test_tiny_strata_still_give_every_split_a_patient() -> None:
    # Three patients of 10 images per class: no shuffle cut reaches test, the repair gives it one.
    index = make_index([3, 3], max_images=1)
    index = index.loc[index.index.repeat(10)].reset_index(drop=True)
    index["sample_id"] = index["sample_id"] + "_" + index.groupby("sample_id").cumcount().astype(str)
    splits = split_by_patient(index, 0.15, 0.15, seed=0)
    assert all(len(splits[s]) == 20 for s in ("train", "val", "test"))


def test_few_patients_are_announced_in_the_summary() -> None:
    from medtune.data.split import FEW_PATIENTS, few_patients_warning, split_summary

    small = make_splits(make_index([20, 20]), SplitCfg(method="grouped"), seed=0)
    summary = split_summary(small)
    assert summary["patients"]["val"] < FEW_PATIENTS and len(summary["warnings"]) == 1
    warning = summary["warnings"][0]
    assert warning.startswith(f"val has {summary['patients']['val']} patients and test has ")
    assert "model selection" in warning and "test confidence interval" in warning
    assert "K-fold cross-validation grouped by patient" in warning and "split.folds" in warning
    assert few_patients_warning({"val": 40, "test": 12}).startswith("test has 12 patients: the test confidence "
                                                                    "interval rests on very few")
    large = make_splits(make_index([150, 150]), SplitCfg(method="grouped"), seed=0)
    assert split_summary(large)["warnings"] == [] and few_patients_warning({"val": 30, "test": 31}) is None


@pytest.mark.parametrize("kind", ["multilabel", "regression"])
def test_multilabel_and_regression_indexes_split_on_their_strata(kind: str) -> None:
    """A multilabel index has per-label `targets` and no class `target`: the split stage's strata (label
    combinations, target quantiles) are what it balances, still one patient in one split."""
    from medtune.data.split import strata_for
    from medtune.task import Task

    rng = np.random.default_rng(0)
    index = make_index([60], max_images=3)
    if kind == "multilabel":
        task = Task("multilabel", ("ring", "bar"))
        per_patient = {p: [float(v) for v in rng.integers(0, 2, 2)] for p in index["patient_key"].unique()}
        index = index.drop(columns="target").assign(targets=index["patient_key"].map(per_patient))
    else:
        task = Task("regression", ("radius",))
        index = index.assign(target=rng.uniform(1, 5, len(index)))
    index = index.assign(stratum=strata_for(index, task))
    splits = make_splits(index, SplitCfg(), seed=0)
    assert (patient_splits(splits, index) == 1).all()
    assert sorted(s for name in ("train", "val", "test") for s in splits[name]) == sorted(index["sample_id"])
    assert all(len(splits[name]) > 0 for name in ("train", "val", "test"))
