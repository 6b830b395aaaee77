"""The test report: the task's metrics at the model's stored threshold with patient CIs, plots,
per-site breakdown, Grad-CAM.

Everything here takes predictions and a threshold that came with the model (chosen on validation);
none of it fits anything on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.config import Params
from medtune.data.datamodule import SplitArrays
from medtune.data.split import few_patients_warning
from medtune.evaluate.bootstrap import patient_bootstrap
from medtune.evaluate.breakdown import breakdown, write_breakdown
from medtune.evaluate.calibration import calibration_metrics
from medtune.evaluate.gradcam import write_gradcam_grid
from medtune.evaluate.metrics import task_metrics
from medtune.evaluate.task_plots import write_task_plots
from medtune.models.inference import calibrate, member_specs
from medtune.models.nets import NetSpec
from medtune.task import Task

PREDICT_CHUNK = 1024
# The numbers metrics.json carries per task (each with its 95% CI); report.json holds the rest.
HEADLINE = {"binary": ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"),
            "multiclass": ("auroc", "accuracy", "balanced_accuracy", "f1_macro"),
            "multilabel": ("auroc", "sensitivity", "specificity"),
            "regression": ("mae", "rmse", "r2")}
# Per class (multiclass) or per label (multilabel): the metrics.json entries, each with its 95% CI.
PER_NAME = {"multiclass": ("per_class", ("recall", "precision", "f1", "auroc")),
            "multilabel": ("per_label", ("auroc", "sensitivity", "specificity"))}
WIDE_CI = 0.2  # an AUROC CI wider than this says the test split is too small to tell much


def score_test(task: Task, y: np.ndarray, out: np.ndarray, patient_keys: list[str], threshold: Any,
               n_boot: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(headline metrics with `<name>_ci_low/_ci_high`, every metric with its CI) at the stored threshold."""
    names = list(task.names)

    def score(idx: np.ndarray) -> dict[str, Any]:
        return task_metrics(task.kind, y[idx], out[idx], threshold, names)

    full = score(np.arange(len(y)))
    cis = patient_bootstrap(score, patient_keys, n_boot, seed)
    headline: dict[str, Any] = {}
    for key in HEADLINE[task.kind]:
        low, high = cis.get(key, (float("nan"), float("nan")))
        headline |= {key: full[key], f"{key}_ci_low": low, f"{key}_ci_high": high}
    if task.kind in PER_NAME:
        group, keys = PER_NAME[task.kind]
        headline[group] = {name: _with_ci({k: full[f"{group}_{k}"][name] for k in keys}, cis, f"{group}_{{}}.{name}")
                           for name in names}
    headline |= {"n": len(y), "n_patients": len(set(patient_keys)), "task": task.kind}
    if task.kind == "binary":
        headline["threshold"] = float(threshold)
    warnings = _warnings(headline)
    if warnings:  # metrics.json carries them too: `dvc metrics show` readers see why a number is shaky
        headline["warning"] = " ".join(warnings)
    details = full | {"ci": {k: list(v) for k, v in sorted(cis.items())}, "warnings": warnings}
    return headline, details


def _with_ci(values: dict[str, float], cis: dict[str, tuple[float, float]], key: str) -> dict[str, float]:
    """Each value beside its bootstrap CI (`key` formats the metric name into the CI's flattened key)."""
    out: dict[str, float] = {}
    for name, value in values.items():
        low, high = cis.get(key.format(name), (float("nan"), float("nan")))
        out |= {name: value, f"{name}_ci_low": low, f"{name}_ci_high": high}
    return out


def _warnings(headline: dict[str, Any]) -> list[str]:
    """Plain words when the test split is too small for its numbers to mean much."""
    warnings = [w for w in [few_patients_warning({"test": headline["n_patients"]})] if w]
    width = headline.get("auroc_ci_high", np.nan) - headline.get("auroc_ci_low", np.nan)
    if np.isfinite(width) and width > WIDE_CI:
        warnings.append(f"the test AUROC's 95% CI is {width:.2f} wide ({headline['n_patients']} patients): too "
                        "few test patients for this number to mean much")
    return warnings


def model_outputs(model: Any, images: Any) -> np.ndarray:
    """A registered model's uncalibrated outputs for a lazy split, one chunk of the store at a time."""
    python = model.unwrap_python_model()
    parts = [python.raw_outputs(images[i:i + PREDICT_CHUNK]) for i in range(0, len(images), PREDICT_CHUNK)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


def score_and_report(model: Any, test: SplitArrays, index: pd.DataFrame, params: Params,
                     out_dir: Path) -> tuple[dict, dict, dict[str, Path]]:
    """Headline metrics, full details, and the report files (plots, breakdown, Grad-CAM) of a registered
    model on the test split; `index` (index.parquet) gives the test samples' sites for the breakdown."""
    rows = index.set_index("sample_id", drop=False).loc[test.sample_ids]
    meta = model.unwrap_python_model().meta
    task, threshold = Task.from_dict(meta["task"]), meta.get("threshold")
    raw = model_outputs(model, test.x)
    out = calibrate(raw, task.kind, meta.get("calibration"))  # what the stored threshold is about
    metrics, details = score_test(task, test.y, out, test.patient_keys, threshold, params.test.bootstrap,
                                  params.base.seed)
    metrics |= calibration_report(task.kind, test.y, raw, out, meta)
    outputs = write_task_plots(task, test.y, out, threshold, out_dir / "plots")
    table = breakdown(rows, task, test.y, out, threshold, test.patient_keys, params.test.bootstrap, params.base.seed)
    outputs |= write_breakdown(table, out_dir)
    specs = [NetSpec(**spec) for spec in member_specs(meta["net"], int(meta.get("members", 0)))]
    grid = write_gradcam_grid(model.unwrap_python_model().net, specs, task, test.x, test.y, out,
                              threshold, params.test.gradcam_cases, out_dir / "gradcam.png")
    if grid is not None:
        outputs["gradcam.png"] = grid
    return metrics, details, outputs


def calibration_report(kind: str, y: np.ndarray, raw: np.ndarray, out: np.ndarray, meta: dict) -> dict[str, Any]:
    """ECE and Brier score on test before (`_raw`) and after the calibration fitted on validation."""
    if kind == "regression":
        return {}
    before = {f"{k}_raw": v for k, v in calibration_metrics(kind, y, raw).items()}
    method = (meta.get("calibration") or {}).get("method", "none")
    return before | calibration_metrics(kind, y, out) | {"calibration": method, "tta": bool(meta.get("tta"))}


def summary_lines(what: str, metrics: dict[str, Any], details: dict[str, Any]) -> list[str]:
    """The test stage's console output: the headline numbers, then each warning in plain words."""
    numbers = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float) and "_ci_" not in k)
    return [f"{what}: {numbers}", *(f"warning: {w}" for w in details["warnings"])]


def report_files(report_dir: Path, ledger: Path) -> list[Path]:
    """The files of a test report on disk (not the ledger, not writers' temp files), for logging it again."""
    return sorted(p for p in Path(report_dir).rglob("*") if p.is_file() and p != ledger and not p.name.startswith("."))

