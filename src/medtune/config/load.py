"""Reading params.yaml: sections built from the dataclasses, every value type-checked, then the rules."""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from medtune.config.presets import apply_preset
from medtune.config.rules import coerce, validate
from medtune.config.sections import SECTIONS, Params
from medtune.config.space import parse_space
from medtune.errors import ConfigError

# Keys that take a number or `auto`.
AUTO_KEYS = {("preprocess", "image_size"), ("train", "num_workers"), ("split", "folds"), ("search", "grace_period"),
             ("search", "n_startup_trials"), ("search", "min_steps"), ("search", "batch_cap")}

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
    if isinstance(raw.get("search"), dict):  # a preset fills the search keys the file leaves out
        raw = {**raw, "search": apply_preset(raw["search"], (raw.get("preprocess") or {}).get("image_size", 28))}
    for f in fields(Params):
        cls = SECTIONS[f.name]
        section = raw.get(f.name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {f.name}: expected a mapping, got {type(section).__name__}")
        built[f.name] = _build_section(cls, f.name, section, source)
    # A trial's seed is the pipeline's seed unless train sets its own.
    if "seed" not in (raw.get("train") or {}):
        built["train"] = dataclasses.replace(built["train"], seed=built["base"].seed)
    params = Params(**built)
    validate(params, source)
    return params


def _build_section(cls: type, name: str, section: dict[str, Any], source: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    for key in section:
        if key not in known:
            raise ConfigError(f"{source}: {name}.{key}: unknown key; known: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key == "space":
            values[key] = parse_space(value, source)
            continue
        if (name, key) == ("ingest", "label_column") and isinstance(value, list):
            if not value or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{source}: ingest.label_column: expected a column name or a list of them")
            values[key] = tuple(value)  # several 0/1 columns: a multilabel task
            continue
        if (name, key) in AUTO_KEYS and (value == "auto" or type(value) is int):
            values[key] = value  # auto is resolved later: image_size from the fingerprint, the plan from the cohort
            continue
        if (name, key) == ("search", "preset") and str(value).lower() == "none":
            values[key] = None  # `preset: none`: the ranges params.yaml gives
            continue
        if (name, key) == ("registry", "threshold") and type(value) in (int, float):
            value = str(value)  # `threshold: 0.5` is the fixed-threshold rule "0.5"
        if (name, key) == ("ingest", "positive_label") and type(value) is int:
            value = str(value)  # `positive_label: 1` means the label "1" of the labels file
        default = getattr(cls(), key)
        values[key] = coerce(value, default, f"{source}: {name}.{key}")
    return cls(**values)


def require_path(value: str, key: str, source: str = "params.yaml", is_dir: bool = False) -> Path:
    """Fail with one line when a path named in params.yaml does not exist."""
    path = Path(value)
    if not (path.is_dir() if is_dir else path.exists()):
        kind = "directory" if is_dir else "path"
        raise ConfigError(f"{source}: {key}: {kind} '{value}' does not exist")
    return path
