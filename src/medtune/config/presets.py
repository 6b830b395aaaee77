"""`search.preset`: a whole search for users who do not want to write ranges.

A preset fills only what params.yaml leaves out: every `search:` key and every `search.space` entry the
file gives explicitly wins (a preset never overrides a value a user wrote). MONAI backbones join the
`thorough` arch choices only when the images are big enough for them (MIN_BACKBONE_SIZE px).
"""

from __future__ import annotations

from typing import Any

from medtune.choices import MIN_BACKBONE_SIZE

_LR = {"low": 0.0003, "high": 0.01, "log": True}
_OPTIMIZERS = {"choices": ["adam", "adamw", "sgd_momentum"]}
_MOMENTUM = {"low": 0.8, "high": 0.98}

# name -> search keys and space entries; the cost of each on 2 CPUs is in the README.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"num_samples": 8, "space": {
        "lr": _LR, "epochs": {"low": 2, "high": 4}, "dropout": {"low": 0.0, "high": 0.4},
        "optimizer": _OPTIMIZERS, "momentum": _MOMENTUM}},
    "balanced": {"num_samples": 16, "space": {
        "lr": _LR, "batch_size": {"choices": [16, 32, 64]}, "epochs": {"low": 2, "high": 8},
        "dropout": {"low": 0.0, "high": 0.5}, "depth": {"low": 2, "high": 4}, "width": {"choices": [8, 16, 32]},
        "weight_decay": {"low": 0.000001, "high": 0.001, "log": True}, "optimizer": _OPTIMIZERS,
        "momentum": _MOMENTUM}},
    "thorough": {"num_samples": 32, "space": {
        "lr": {"low": 0.0001, "high": 0.01, "log": True}, "batch_size": {"choices": [16, 32, 64, 128]},
        "epochs": {"low": 3, "high": 12}, "dropout": {"low": 0.0, "high": 0.5}, "depth": {"low": 2, "high": 4},
        "width": {"choices": [8, 16, 32]}, "weight_decay": {"low": 0.000001, "high": 0.001, "log": True},
        "augment": {"low": 0.0, "high": 0.8}, "residual": {"choices": [False, True]},
        "activation": {"choices": ["relu", "leaky_relu", "gelu"]},
        "optimizer": {"choices": ["adam", "adamw", "sgd_momentum", "rmsprop"]}, "momentum": _MOMENTUM}},
}
BACKBONES = ["resnet18", "efficientnet-b0"]  # `thorough` arch choices beside convnet at >= MIN_BACKBONE_SIZE px


def apply_preset(search: dict[str, Any], image_size: Any) -> dict[str, Any]:
    """The raw `search:` mapping with the preset's keys filled in where params.yaml gives none."""
    name = search.get("preset")
    if name is None or str(name).lower() == "none":
        return search
    if name not in PRESETS:
        return search  # config.rules.validate names the error, as for any other search key
    preset = PRESETS[name]
    space = dict(preset["space"])
    if name == "thorough" and isinstance(image_size, int) and image_size >= MIN_BACKBONE_SIZE:
        space["arch"] = {"choices": ["convnet", *BACKBONES]}
    user_space = search.get("space") or {}
    if not isinstance(user_space, dict):
        return search  # parse_space names the error
    return {**{k: v for k, v in preset.items() if k != "space"}, **search, "space": {**space, **user_space}}
