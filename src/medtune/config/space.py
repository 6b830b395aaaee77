"""search.space: parsing `{low, high[, log]}` / `{choices}` entries, and the widest value a sweep can ask for."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from medtune.choices import MIN_BACKBONE_SIZE
from medtune.config.sections import ParamSpec, TrainCfg
from medtune.errors import ConfigError


def parse_space(space: Any, source: str) -> tuple[ParamSpec, ...]:
    if not isinstance(space, dict):
        raise ConfigError(f"{source}: search.space: expected a mapping of hyperparameter -> range")
    train_keys = {f.name for f in fields(TrainCfg)} - {"seed", "num_workers", "precision", "pretrained"}
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




def possible_values(name: str, base: TrainCfg, space: tuple[ParamSpec, ...]) -> list[Any]:
    """What a train key can be in some trial: its searched choices or range ends, else its train: value."""
    for spec in space:
        if spec.name == name:
            return list(spec.choices) if spec.choices is not None else [spec.low, spec.high]
    return [getattr(base, name)]


def largest(name: str, base: TrainCfg, space: tuple[ParamSpec, ...]) -> Any:
    """The largest value of a train key any trial can get: its train: value or the top of its searched range.

    The one answer to "deepest depth" (image size checks) and "most epochs" (ASHA's max_t).
    """
    values = [getattr(base, name)]
    for spec in space:
        if spec.name == name:
            values.append(spec.top)
    return max(values)


def min_image_size(base: TrainCfg, space: tuple[ParamSpec, ...]) -> tuple[int, str]:
    """The smallest image every network a sweep may build can take, and why.

    depth shapes the ConvNet only (each block halves the image); MONAI backbones have a fixed depth
    and need MIN_BACKBONE_SIZE px.
    """
    archs = possible_values("arch", base, space)
    deepest = int(largest("depth", base, space)) if "convnet" in archs else 0
    backbone = MIN_BACKBONE_SIZE if set(archs) - {"convnet"} else 0
    why = (f"ConvNet depth {deepest} halves it {deepest} times" if deepest else "") + \
          ("; " if deepest and backbone else "") + (f"MONAI backbones need {backbone}px" if backbone else "")
    return max(2**deepest, backbone), why

