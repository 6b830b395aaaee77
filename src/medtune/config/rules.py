"""Rules a parsed Params must satisfy, each failing with one line naming the key and what is allowed."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from medtune.choices import (
    ACTIVATIONS,
    ARCHS,
    CALIBRATIONS,
    FRAME_POLICIES,
    LABEL_KEYS,
    MODES,
    NEW_SPLIT_POLICIES,
    OPTIMIZERS,
    PRECISIONS,
    PREPROCESS_WINDOWS,
    REGRESSION_LOSSES,
    RESIZE_MODES,
    SEARCH_PRESETS,
    SITE_COLUMNS,
    SPLIT_GROUPS,
    SPLIT_METHODS,
    STORE_BITS,
    TASKS,
    THRESHOLD_FORMS,
    THRESHOLD_METHODS,
    THRESHOLD_TARGETS,
    UNCERTAIN_POLICIES,
)
from medtune.config.sections import Params
from medtune.config.space import min_image_size
from medtune.errors import ConfigError

_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def coerce(value: Any, default: Any, where: str) -> Any:
    """Accept a value of the default's type (ints for floats, lists for tuples); None only if default is."""
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(value, type(default)) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")


def parse_threshold_rule(rule: str, where: str = "registry.threshold") -> tuple[str, float | None]:
    """`registry.threshold` as (method, value): (youden|f1, None), (sensitivity|specificity, x) or
    (fixed, t). The one parser of the rule: config validates with it and promote dispatches on it."""
    text = str(rule).strip().lower()
    if text in THRESHOLD_METHODS:
        return text, None
    name, sep, number = text.partition(":")
    try:
        value = float(number if sep else name)
    except ValueError:
        value = math.nan
    if sep and name in THRESHOLD_TARGETS and 0 < value <= 1:
        return name, value
    if not sep and 0 <= value <= 1:
        return "fixed", value
    raise ConfigError(f"{where}: {rule!r} is not one of {', '.join(THRESHOLD_FORMS)}")


def check_train_values(values: dict[str, Any], where: str) -> None:
    """Validate train hyperparameter values; shared by train defaults and every search choice/bound."""
    rules = {
        "lr": (lambda v: v > 0 and math.isfinite(v), "must be > 0"),
        "batch_size": (lambda v: v >= 1, "must be >= 1"),
        "epochs": (lambda v: v >= 1, "must be >= 1"),
        "dropout": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
        "depth": (lambda v: 1 <= v <= 6, "must be in 1..6 (each block halves the image)"),
        "width": (lambda v: v >= 1, "must be >= 1"),
        "activation": (lambda v: v in ACTIVATIONS, f"is not one of {', '.join(ACTIVATIONS)}"),
        "optimizer": (lambda v: v in OPTIMIZERS, f"is not one of {', '.join(OPTIMIZERS)}"),
        "momentum": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
        "weight_decay": (lambda v: v >= 0, "must be >= 0"),
        "augment": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
        "ema_decay": (lambda v: 0 <= v < 1, "must be in [0, 1) (0: no moving average)"),
        "regression_loss": (lambda v: v in REGRESSION_LOSSES, f"is not one of {', '.join(REGRESSION_LOSSES)}"),
        "num_workers": (lambda v: v == "auto" or (isinstance(v, int) and v >= 0), "must be auto or >= 0"),
        "arch": (lambda v: v in ARCHS, f"is not one of {', '.join(ARCHS)}"),
        "pretrained": (lambda v: isinstance(v, str) and v.strip() != "",
                       "must be none, imagenet, a state_dict file or an MLflow model URI"),
        "precision": (lambda v: v in PRECISIONS, f"is not one of {', '.join(PRECISIONS)}"),
        "limit_train_batches": (lambda v: v > 0, "must be > 0"),
        "freeze_blocks": (lambda v: v >= 0, "must be >= 0"),
    }
    for key, value in values.items():
        if key in rules:
            ok, why = rules[key]
            try:
                good = ok(value)
            except TypeError:
                good = False
            if not good:
                raise ConfigError(f"{where}.{key}: {value!r} {why}")


def validate(p: Params, source: str) -> None:
    check_train_values(dataclasses.asdict(p.train), f"{source}: train")
    for spec in p.search.space:
        where = f"{source}: search.space"
        if spec.choices is not None:
            default = getattr(p.train, spec.name)
            for choice in spec.choices:
                coerce(choice, default, f"{where}.{spec.name}")  # same type as the train: value
                check_train_values({spec.name: choice}, where)
        else:
            check_train_values({spec.name: spec.low}, where)
            check_train_values({spec.name: spec.high}, where)
            if isinstance(getattr(p.train, spec.name), int) and not spec.is_int:
                raise ConfigError(f"{where}.{spec.name}: integer parameter needs integer low/high")
    need, why = min_image_size(p.train, p.search.space)
    size = p.preprocess.image_size if p.preprocess.image_size != "auto" else need  # auto: checked later
    checks = [
        (need <= size, "preprocess.image_size", f"is too small for the networks searched ({why}): need >= {need}"),
        (p.preprocess.resize in RESIZE_MODES, "preprocess.resize", f"is not one of {', '.join(RESIZE_MODES)}"),
        (p.preprocess.bits in STORE_BITS, "preprocess.bits", "must be 8 or 16"),
        (p.preprocess.window in PREPROCESS_WINDOWS, "preprocess.window",
         f"is not one of {', '.join(PREPROCESS_WINDOWS)}"),
        (size >= 8, "preprocess.image_size", "must be >= 8 (or auto)"),
        (p.preprocess.channels in (1, 3), "preprocess.channels", "must be 1 or 3"),
        (p.preprocess.frames in FRAME_POLICIES, "preprocess.frames", f"is not one of {', '.join(FRAME_POLICIES)}"),
        (p.ingest.label_key in LABEL_KEYS, "ingest.label_key", f"is not one of {', '.join(LABEL_KEYS)}"),
        (len(p.preprocess.percentiles) == 2 and 0 <= p.preprocess.percentiles[0]
         < p.preprocess.percentiles[1] <= 100, "preprocess.percentiles", "must be [low, high] within 0..100"),
        (p.split.method in SPLIT_METHODS, "split.method", f"is not one of {', '.join(SPLIT_METHODS)}"),
        (0 < p.split.val_fraction < 1, "split.val_fraction", "must be in (0, 1)"),
        (0 < p.split.test_fraction < 1, "split.test_fraction", "must be in (0, 1)"),
        (p.split.val_fraction + p.split.test_fraction < 1, "split", "val_fraction + test_fraction must be < 1"),
        (p.split.group_by in SPLIT_GROUPS, "split.group_by", f"is not one of {', '.join(SPLIT_GROUPS)}"),
        (p.split.site_column in SITE_COLUMNS, "split.site_column", f"is not one of {', '.join(SITE_COLUMNS)}"),
        (p.split.holdout_site is None or isinstance(p.split.holdout_site, str), "split.holdout_site",
         "must be a site name (a value of split.site_column) or null"),
        (p.split.fixed_file is None or isinstance(p.split.fixed_file, str), "split.fixed_file",
         "must be a path to a CSV/JSON split file or null"),
        (0 <= p.split.near_duplicate_hamming <= 64, "split.near_duplicate_hamming",
         "must be in 0..64 (bits of the 256-bit image hash)"),
        (p.split.folds == "auto" or type(p.split.folds) is int and (p.split.folds == 0 or 2 <= p.split.folds <= 20),
         "split.folds", "must be 0 (no cross-validation), a number of folds in 2..20, or auto"),
        (p.ingest.workers >= 1, "ingest.workers", "must be >= 1"),
        (p.ingest.positive_label is None or isinstance(p.ingest.positive_label, str) and p.ingest.positive_label != "",
         "ingest.positive_label", "must be one of the two labels (quote yes/no/true/false: 'yes') or null"),
        (p.ingest.file_timeout_s >= 0, "ingest.file_timeout_s", "must be >= 0 (0: no timeout)"),
        (p.ingest.max_pixels >= 1, "ingest.max_pixels", "must be >= 1 (Rows x Columns of one frame)"),
        (p.ingest.max_frames >= 1, "ingest.max_frames", "must be >= 1"),
        (p.ingest.max_file_mb > 0, "ingest.max_file_mb", "must be > 0"),
        (p.ingest.worker_memory_mb == 0 or p.ingest.worker_memory_mb >= 1024, "ingest.worker_memory_mb",
         "must be >= 1024 (a decode worker's libraries alone map ~700 MB) or 0 (no cap)"),
        (all(isinstance(m, str) and (m.endswith(".py") or _MODULE.fullmatch(m)) for m in p.ingest.decoder_plugins),
         "ingest.decoder_plugins", "must be a list of module names or .py files (e.g. [plugins/decoders.py])"),
        (p.search.num_samples >= 1, "search.num_samples", "must be >= 1"),
        (p.search.max_concurrent_trials >= 1, "search.max_concurrent_trials", "must be >= 1"),
        (p.search.mode in ("auto", *MODES), "search.mode", "must be auto, max or min"),
        (p.ingest.task in ("auto", *TASKS), "ingest.task", f"is not one of auto, {', '.join(TASKS)}"),
        (p.ingest.uncertain in UNCERTAIN_POLICIES, "ingest.uncertain",
         f"is not one of {', '.join(UNCERTAIN_POLICIES)}"),
        (p.search.cpus_per_trial > 0, "search.cpus_per_trial", "must be > 0"),
        (p.search.gpus_per_trial >= 0, "search.gpus_per_trial", "must be >= 0"),
        (_auto_or(p.search.grace_period, 1), "search.grace_period", "must be auto or >= 1 (optimizer steps)"),
        (_auto_or(p.search.n_startup_trials, 0), "search.n_startup_trials", "must be auto or >= 0"),
        (_auto_or(p.search.min_steps, 0), "search.min_steps", "must be auto or >= 0 (0: no minimum)"),
        (_auto_or(p.search.batch_cap, 0), "search.batch_cap", "must be auto or >= 0 (0: no cap)"),
        (p.search.preset is None or p.search.preset in SEARCH_PRESETS, "search.preset",
         f"is not one of {', '.join(SEARCH_PRESETS)} or null"),
        (isinstance(p.search.warm_start, str) and p.search.warm_start.strip() != "", "search.warm_start",
         "must be auto, off or the MLflow run id of an earlier sweep"),
        (p.search.reduction_factor >= 2, "search.reduction_factor", "must be >= 2"),
        (p.search.max_failures >= 0, "search.max_failures", "must be >= 0"),
        (p.search.time_budget_s >= 0, "search.time_budget_s", "must be >= 0 (0: no limit)"),
        (p.search.keep_checkpoints >= 1, "search.keep_checkpoints", "must be >= 1"),
        (p.search.ensemble_top_k >= 1, "search.ensemble_top_k", "must be >= 1 (1: the best trial alone)"),
        (p.test.bootstrap >= 0, "test.bootstrap", "must be >= 0"),
        (1 <= p.test.gradcam_cases <= 16, "test.gradcam_cases",
         "must be in 1..16 (reports/test/gradcam.png is a stage output)"),
        (bool(p.registry.model_name.strip()), "registry.model_name", "must not be empty"),
        (p.registry.min_delta >= 0, "registry.min_delta", "must be >= 0"),
        (p.registry.calibration in CALIBRATIONS, "registry.calibration", f"is not one of {', '.join(CALIBRATIONS)}"),
        (p.registry.on_new_split in NEW_SPLIT_POLICIES, "registry.on_new_split",
         f"is not one of {', '.join(NEW_SPLIT_POLICIES)}"),
    ]
    parse_threshold_rule(p.registry.threshold, f"{source}: registry.threshold")
    for ok, key, why in checks:
        if not ok:
            value = _lookup(p, key)
            raise ConfigError(f"{source}: {key}: {value!r} {why}")


def _auto_or(value: Any, least: int) -> bool:
    """`auto`, or an integer (not a bool) of at least `least`."""
    return value == "auto" or (type(value) is int and value >= least)


def _lookup(p: Params, dotted: str) -> Any:
    obj: Any = p
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
