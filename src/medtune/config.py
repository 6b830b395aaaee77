"""Typed view of params.yaml: one frozen dataclass per section, validated once on load.

Everything below the stage entry points takes these dataclasses (or plain arguments), never the YAML,
so a bad value fails here with one line naming the key instead of deep inside a library.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from medtune.errors import ConfigError

OPTIMIZERS = ("sgd", "sgd_momentum", "rmsprop", "adagrad", "adam", "adamw")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")
# preprocess.window: `auto` picks header or percentile from the ingest fingerprint; the named presets are
# fixed windows in modality units (medtune.data.pixels.PRESETS).
WINDOWS = ("auto", "header", "percentile", "minmax", "lung", "mediastinum", "soft_tissue", "bone", "brain", "liver")
LABEL_KEYS = ("path", "sop_instance_uid", "patient_id", "study_instance_uid")
FRAME_POLICIES = ("middle", "all")
SPLIT_METHODS = ("auto", "grouped")
SPLIT_GROUPS = ("patient", "site")
SITE_COLUMNS = ("manufacturer", "modality")
MODES = ("max", "min")
NEW_SPLIT_POLICIES = ("promote", "keep")


@dataclass(frozen=True)
class BaseCfg:
    seed: int = 42
    tracking_uri: str = "sqlite:///mlruns.db"
    artifact_root: str = "mlartifacts"
    experiment: str = "medtune"


@dataclass(frozen=True)
class IngestCfg:
    raw_dir: str = "data/raw"
    labels: str = "data/labels.csv"
    path_column: str = "path"
    label_column: str = "label"
    workers: int = 2
    label_key: str = "path"
    key_column: str = ""


@dataclass(frozen=True)
class PreprocessCfg:
    image_size: int | str = 28  # or "auto": from the ingest fingerprint
    window: str = "header"
    percentiles: tuple[float, float] = (0.5, 99.5)
    channels: int = 1
    frames: str = "middle"


@dataclass(frozen=True)
class SplitCfg:
    method: str = "auto"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    group_by: str = "patient"
    site_column: str = "manufacturer"
    holdout_site: str | None = None
    fixed_file: str | None = None
    near_duplicate_hamming: int = 12
    strict: bool = False


@dataclass(frozen=True)
class TrainCfg:
    """One trial's hyperparameters; the tune runner derives each trial with dataclasses.replace."""

    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 4
    dropout: float = 0.1
    depth: int = 3
    width: int = 16
    residual: bool = False
    activation: str = "relu"
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: float = 0.5
    num_workers: int = 0
    limit_train_batches: float = 1.0
    init_from: str | None = None      # transfer learning: a .pt file or an MLflow model URI
    freeze_blocks: int = 0            # with init_from: first N conv blocks are not trained
    seed: int = 42


@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter: a numeric range (optionally log) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and isinstance(self.low, int) and isinstance(self.high, int)


@dataclass(frozen=True)
class SearchCfg:
    num_samples: int = 8
    max_concurrent_trials: int = 2
    metric: str = "val_auroc"
    mode: str = "max"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    grace_period: int = 1
    reduction_factor: int = 2
    time_budget_s: float = 0.0        # stop the sweep after this many seconds (0: no limit)
    max_failures: int = 1             # retries of a trial whose worker died (resumes from its checkpoint)
    keep_checkpoints: int = 2         # best k epoch checkpoints kept per trial (the latest is kept too)
    address: str | None = None
    storage: str = "ray_results"      # sweep state + trial checkpoints; shared by every node on a cluster
    space: tuple[ParamSpec, ...] = ()


@dataclass(frozen=True)
class RegistryCfg:
    model_name: str = "medtune-classifier"
    min_delta: float = 0.0
    on_new_split: str = "promote"  # no comparable champion (other split): promote the new model or keep


@dataclass(frozen=True)
class TestCfg:
    bootstrap: int = 1000
    gradcam_cases: int = 4

    __test__ = False


@dataclass(frozen=True)
class Params:
    base: BaseCfg = field(default_factory=BaseCfg)
    ingest: IngestCfg = field(default_factory=IngestCfg)
    preprocess: PreprocessCfg = field(default_factory=PreprocessCfg)
    split: SplitCfg = field(default_factory=SplitCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    search: SearchCfg = field(default_factory=SearchCfg)
    registry: RegistryCfg = field(default_factory=RegistryCfg)
    test: TestCfg = field(default_factory=TestCfg)

    @property
    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI wins over params, so a cluster points every stage at its server."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.base.tracking_uri


def load_params(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate params.yaml; `overrides` maps 'section.key' to a value (tests, smoke runs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    return parse_params(raw, source=path.name)


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Build Params from a plain dict, naming `source: section.key` in every error."""
    sections = {f.name: f.type for f in fields(Params)}
    unknown = set(raw) - set(sections)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(sections)}")
    built: dict[str, Any] = {}
    for f in fields(Params):
        cls = globals()[f.name.capitalize() + "Cfg"]
        section = raw.get(f.name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {f.name}: expected a mapping, got {type(section).__name__}")
        built[f.name] = _build_section(cls, f.name, section, source)
    # A trial's seed is the pipeline's seed unless train sets its own.
    if "seed" not in (raw.get("train") or {}):
        built["train"] = dataclasses.replace(built["train"], seed=built["base"].seed)
    params = Params(**built)
    _validate(params, source)
    return params


def _build_section(cls: type, name: str, section: dict[str, Any], source: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    for key in section:
        if key not in known:
            raise ConfigError(f"{source}: {name}.{key}: unknown key; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key == "space":
            values[key] = _parse_space(value, source)
            continue
        if (name, key) == ("preprocess", "image_size") and value == "auto":
            values[key] = value  # resolved by the preprocess stage from the fingerprint
            continue
        default = getattr(cls(), key)
        values[key] = _coerce(value, default, f"{source}: {name}.{key}")
    return cls(**values)


def _coerce(value: Any, default: Any, where: str) -> Any:
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


def _parse_space(space: Any, source: str) -> tuple[ParamSpec, ...]:
    if not isinstance(space, dict):
        raise ConfigError(f"{source}: search.space: expected a mapping of hyperparameter -> range")
    train_keys = {f.name for f in fields(TrainCfg)} - {"seed", "num_workers", "init_from"}
    specs = []
    for name, spec in space.items():
        where = f"{source}: search.space.{name}"
        if name not in train_keys:
            raise ConfigError(f"{where}: not a train parameter; searchable: {', '.join(sorted(train_keys))}")
        if not isinstance(spec, dict) or not ({"choices"} <= set(spec) or {"low", "high"} <= set(spec)):
            raise ConfigError(f"{where}: expected {{low, high[, log]}} or {{choices: [...]}}, got {spec!r}")
        extra = set(spec) - {"low", "high", "log", "choices"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{where}.choices: expected a non-empty list, got {choices!r}")
            specs.append(ParamSpec(name, choices=tuple(choices)))
            continue
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        for bound, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}.{bound}: expected a number, got {value!r}")
        if not low < high:
            raise ConfigError(f"{where}: low ({low}) must be below high ({high})")
        if log and low <= 0:
            raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.log: expected true/false, got {log!r}")
        specs.append(ParamSpec(name, low=low, high=high, log=log))
    return tuple(specs)


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
        "num_workers": (lambda v: v >= 0, "must be >= 0"),
        "limit_train_batches": (lambda v: v > 0, "must be > 0"),
        "freeze_blocks": (lambda v: v >= 0, "must be >= 0"),
        "init_from": (lambda v: v is None or isinstance(v, str), "must be a path or an MLflow model URI"),
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


def _validate(p: Params, source: str) -> None:
    check_train_values(dataclasses.asdict(p.train), f"{source}: train")
    for spec in p.search.space:
        where = f"{source}: search.space"
        if spec.choices is not None:
            default = getattr(p.train, spec.name)
            for choice in spec.choices:
                _coerce(choice, default, f"{where}.{spec.name}")  # same type as the train: value
                check_train_values({spec.name: choice}, where)
        else:
            check_train_values({spec.name: spec.low}, where)
            check_train_values({spec.name: spec.high}, where)
            if isinstance(getattr(p.train, spec.name), int) and not spec.is_int:
                raise ConfigError(f"{where}.{spec.name}: integer parameter needs integer low/high")
    deepest = max([p.train.depth] + [int(s.high) for s in p.search.space if s.name == "depth" and s.high]
                  + [int(max(s.choices)) for s in p.search.space if s.name == "depth" and s.choices])
    size = p.preprocess.image_size if p.preprocess.image_size != "auto" else 2**deepest  # auto: checked later
    checks = [
        (2**deepest <= size, "preprocess.image_size",
         f"is too small for depth {deepest} (each conv block halves the image; need >= {2**deepest})"),
        (p.preprocess.window in WINDOWS, "preprocess.window", f"is not one of {', '.join(WINDOWS)}"),
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
        (p.ingest.workers >= 1, "ingest.workers", "must be >= 1"),
        (p.search.num_samples >= 1, "search.num_samples", "must be >= 1"),
        (p.search.max_concurrent_trials >= 1, "search.max_concurrent_trials", "must be >= 1"),
        (p.search.mode in MODES, "search.mode", "must be max or min"),
        (p.search.cpus_per_trial > 0, "search.cpus_per_trial", "must be > 0"),
        (p.search.gpus_per_trial >= 0, "search.gpus_per_trial", "must be >= 0"),
        (p.search.grace_period >= 1, "search.grace_period", "must be >= 1"),
        (p.search.reduction_factor >= 2, "search.reduction_factor", "must be >= 2"),
        (p.search.max_failures >= 0, "search.max_failures", "must be >= 0"),
        (p.search.time_budget_s >= 0, "search.time_budget_s", "must be >= 0 (0: no limit)"),
        (p.search.keep_checkpoints >= 1, "search.keep_checkpoints", "must be >= 1"),
        (p.test.bootstrap >= 0, "test.bootstrap", "must be >= 0"),
        (0 <= p.test.gradcam_cases <= 16, "test.gradcam_cases", "must be in 0..16"),
        (bool(p.registry.model_name.strip()), "registry.model_name", "must not be empty"),
        (p.registry.min_delta >= 0, "registry.min_delta", "must be >= 0"),
        (p.registry.on_new_split in NEW_SPLIT_POLICIES, "registry.on_new_split",
         f"is not one of {', '.join(NEW_SPLIT_POLICIES)}"),
    ]
    for ok, key, why in checks:
        if not ok:
            value = _lookup(p, key)
            raise ConfigError(f"{source}: {key}: {value!r} {why}")


def _lookup(p: Params, dotted: str) -> Any:
    obj: Any = p
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def require_path(value: str, key: str, source: str = "params.yaml", is_dir: bool = False) -> Path:
    """Fail with one line when a path named in params.yaml does not exist."""
    path = Path(value)
    if not (path.is_dir() if is_dir else path.exists()):
        kind = "directory" if is_dir else "path"
        raise ConfigError(f"{source}: {key}: {kind} '{value}' does not exist")
    return path
