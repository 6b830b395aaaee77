"""Small cohort: is the validation estimate honest? K-fold out-of-fold vs one 15% val split.

A synthetic DICOM cohort of ~60 patients (3 images each, 32 px, ring vs blob) whose signal is weak the way a
real one is: a fifth of the patients are labelled against their images (readers disagree), so a model that
learns the images still scores an AUROC near 0.7 (`--label-noise`; without it, the trials learn nothing in 4
epochs and everything in 8, and the comparison is void either way). It goes through the real stages twice,
on the same train/val/test lists (same seed): once with `split.folds: 5` (promote refits the best config
per fold; the estimate is out-of-fold over every train+val patient, with a patient-bootstrap CI) and once
with the single val split (the estimate is the best trial's val AUROC, on ~9 patients, that also chose the
trial and its epoch). Each arm's champion is then scored once on the held-out test split. All of it on
--seeds cohorts, because one cohort's ~9 test patients make a single gap mostly noise; the summary is each
arm's mean and median absolute gap (estimate - test AUROC). The truth both estimates are after is measured
too: each champion scores a 300-patient external cohort from the same generator (`medtune predict`, bench
only). Writes bench/results/small_cohort.json.

    python -m bench.small_cohort                # 5 cohorts of 60 patients, 6 trials of up to 12 epochs per arm
    python -m bench.small_cohort --smoke-test   # 1 cohort of 24 patients, 2 one-epoch trials, 3 folds
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from bench.common import RESULTS, machine, write_result
from bench.quality import make_project, sh
from medtune.data.sample import BINARY_LABELS
from medtune.evaluate.metrics import auroc

# Two trials side by side on one CPU each, as small_cohort.json was measured.
FULL = {"preprocess": {"image_size": 32}, "ingest": {"workers": 1},
        "train": {"batch_size": 16, "width": 16, "depth": 3, "augment": 0.3},
        "search": {"num_samples": 6, "max_concurrent_trials": 2, "cpus_per_trial": 1, "grace_period": 1,
                   "space": {"lr": {"low": 0.001, "high": 0.01, "log": True}, "epochs": {"low": 4, "high": 12},
                             "dropout": {"low": 0.0, "high": 0.3}}},
        "test": {"bootstrap": 1000}}
SMOKE = {"preprocess": {"image_size": 16}, "ingest": {"workers": 1},
         "train": {"batch_size": 16, "epochs": 1, "width": 8, "depth": 2, "augment": 0.0},
         "search": {"num_samples": 2, "max_concurrent_trials": 2, "cpus_per_trial": 1, "grace_period": 1,
                    "space": {"lr": {"low": 0.001, "high": 0.01, "log": True}}},
         "test": {"bootstrap": 100}}


def run_arm(work: Path, overrides: dict, folds: int, patients: int, seed: int, label_noise: float,
            external: tuple[int, int, float]) -> dict:
    """One dvc repro; the champion's validation estimate (tags) next to its test and external results."""
    proj = make_project(work, overrides | {"split": {"folds": folds}}, 0,
                        ["--patients", str(patients), "--seed", str(seed), "--label-noise", str(label_noise)])
    out = sh(["dvc", "repro"], proj, 3600)
    test = json.loads((proj / "reports/test/metrics.json").read_text())
    client = MlflowClient(f"sqlite:///{proj / 'mlruns.db'}")
    tags = client.get_model_version_by_alias("medtune-classifier", "champion").tags
    arm = {"test_auroc": test["auroc"], "test_auroc_ci": [test["auroc_ci_low"], test["auroc_ci_high"]],
           "test_patients": test["n_patients"], "selection": tags.get("medtune.selection"),
           "best_trial_val_auroc": float(tags.get("medtune.val_cmp_auroc_best_trial_on_val",
                                                  tags["medtune.val_auroc"]))}
    arm["external_auroc"] = truth = external_auroc(proj, external)
    if folds:
        low, high = float(tags["medtune.val_cv_auroc_oof_ci_low"]), float(tags["medtune.val_cv_auroc_oof_ci_high"])
        arm |= {"estimate": "out-of-fold AUROC over all train+val patients",
                "oof_auroc": float(tags["medtune.val_cv_auroc_oof"]), "oof_auroc_ci": [low, high],
                "test_within_oof_ci": low <= test["auroc"] <= high, "external_within_oof_ci": low <= truth <= high}
        estimate = arm["oof_auroc"]
    else:
        arm["estimate"] = "best trial's val AUROC (the split that chose it)"
        estimate = arm["best_trial_val_auroc"]
    arm |= {"gap_estimate_minus_test": estimate - test["auroc"], "estimate_minus_external": estimate - truth,
            "test_minus_external": test["auroc"] - truth}
    arm["promote_line"] = next((line for line in out.splitlines() if line.startswith("promote: medtune")), "")
    return arm


def external_auroc(proj: Path, external: tuple[int, int, float]) -> float:
    """The champion's image-level AUROC on a large cohort from the same generator (`medtune predict`): the
    truth both estimates are after, which ~9 test patients cannot give. Scored by the bench only."""
    patients, seed, label_noise = external
    sh(["medtune", "sample-data", "--out", "external/raw", "--labels", "external/labels.csv", "--patients",
        str(patients), "--seed", str(seed), "--label-noise", str(label_noise)], proj, 1800)
    sh(["medtune", "predict", "external/raw", "--out", "external/preds.csv"], proj, 1800)
    labels = pd.read_csv(proj / "external/labels.csv")
    preds = pd.read_csv(proj / "external/preds.csv")
    raw = (proj / "external/raw").resolve()
    preds["path"] = [str((proj / p).resolve().relative_to(raw)) for p in preds["path"]]
    rows = labels.merge(preds[preds["status"] == "ok"], on="path", validate="one_to_one")
    finding = BINARY_LABELS[1]
    return auroc((rows["label"] == finding).to_numpy(), rows[f"prob_{finding}"].to_numpy())


def one_seed(seed: int, overrides: dict, patients: int, k: int, label_noise: float, n_external: int) -> dict:
    """Both arms on one cohort (the seed draws the patients, their labels and the split), each champion also
    scored on an external cohort (seed + 1000) of `n_external` patients."""
    arms = {}
    for name, folds in (("kfold", k), ("single_val_split", 0)):
        with tempfile.TemporaryDirectory(prefix=f"medtune-small-{name}-") as tmp:
            arms[name] = run_arm(Path(tmp), overrides, folds, patients, seed, label_noise,
                                 (n_external, seed + 1000, label_noise))
    cv, single = arms["kfold"], arms["single_val_split"]
    print(f"seed {seed}: kfold OOF {cv['oof_auroc']:.3f} (test {cv['test_auroc']:.3f}, within its CI: "
          f"{cv['test_within_oof_ci']}; external {cv['external_auroc']:.3f}); single split val "
          f"{single['best_trial_val_auroc']:.3f} (test {single['test_auroc']:.3f}; external "
          f"{single['external_auroc']:.3f})", flush=True)
    return {"seed": seed, "arms": arms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5, help="the first cohort's seed")
    parser.add_argument("--seeds", type=int, default=5, help="cohorts (seeds seed .. seed + seeds - 1)")
    parser.add_argument("--label-noise", type=float, default=0.2, help="fraction of patients labelled wrongly")
    parser.add_argument("--external", type=int, default=300, help="patients in the external cohort")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    overrides, patients, k, n = (SMOKE, 24, 3, 1) if args.smoke_test else (FULL, args.patients, 5, args.seeds)
    n_external = 20 if args.smoke_test else args.external
    started = time.perf_counter()
    runs = [one_seed(seed, overrides, patients, k, args.label_noise, n_external)
            for seed in range(args.seed, args.seed + n)]
    arms = {}
    for name in ("kfold", "single_val_split"):
        gaps = [r["arms"][name]["gap_estimate_minus_test"] for r in runs]
        arms[name] = {"gap_mean": statistics.mean(gaps), "abs_gap_median": statistics.median(map(abs, gaps)),
                      "gaps": gaps, "test_auroc": [r["arms"][name]["test_auroc"] for r in runs]}
        for what in ("estimate", "test"):  # against the external truth
            off = [r["arms"][name][f"{what}_minus_external"] for r in runs]
            arms[name] |= {f"{what}_minus_external": off, f"{what}_abs_error_median": statistics.median(map(abs, off))}
    within = sum(r["arms"]["kfold"]["test_within_oof_ci"] for r in runs)
    truth_within = sum(r["arms"]["kfold"]["external_within_oof_ci"] for r in runs)
    gap_ratio = arms["single_val_split"]["abs_gap_median"] / max(arms["kfold"]["abs_gap_median"], 1e-6)
    print(f"{'arm':<18}{'mean gap':>10}{'median |gap|':>14}   estimate - test AUROC over {n} cohorts")
    for name, arm in arms.items():
        print(f"{name:<18}{arm['gap_mean']:>10.3f}{arm['abs_gap_median']:>14.3f}")
    print(f"|gap| single / |gap| kfold = {gap_ratio:.2f}; test within the OOF CI in {within} of {n} cohorts")
    print("median |error| vs the external cohort: " + "; ".join(
        f"{name} estimate {arm['estimate_abs_error_median']:.3f}, its test {arm['test_abs_error_median']:.3f}"
        for name, arm in arms.items()) + f"; the external AUROC within the OOF CI in {truth_within} of {n} cohorts")
    write_result(args.results, "small_cohort-smoke.json" if args.smoke_test else "small_cohort.json", {
        "bench": "small_cohort" + ("-smoke" if args.smoke_test else ""), "patients": patients, "folds": k,
        "seeds": [r["seed"] for r in runs], "label_noise": args.label_noise, "arms": arms,
        "abs_gap_ratio_single_vs_kfold": gap_ratio, "test_within_oof_ci": within,
        "external_within_oof_ci": truth_within, "per_seed": runs,
        "wall_s": round(time.perf_counter() - started, 1), "machine": machine()})


if __name__ == "__main__":
    main()
