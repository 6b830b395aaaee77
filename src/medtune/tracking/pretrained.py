"""`train.pretrained`, resolved on the driver once per sweep (workers never talk to MLflow or a hub).

Sources: `imagenet` (each backbone's standard weights, from torch.hub's cache), a local file (a medtune
checkpoint bundle or a bare state_dict), or an MLflow model URI (`models:/name@champion`, `runs:/id/model`)
of a model this pipeline registered. Every source is test-loaded into each network the sweep may build,
so a file that fits none of them fails here, in one line, before any trial starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import torch

from medtune.config import ParamSpec, TrainCfg
from medtune.config.space import possible_values
from medtune.errors import ConfigError
from medtune.models.nets import build_net, net_spec_for
from medtune.models.weights import LoadReport, imagenet_state, load_pretrained, read_state
from medtune.task import Task
from medtune.tracking.pyfunc import WEIGHTS

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


def fetch_state(source: str, tracking_uri: str | None = None) -> dict[str, torch.Tensor]:
    """The state_dict in a file or a registered medtune model, loaded with weights_only."""
    if source.startswith(MLFLOW_SCHEMES):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=tracking_uri))
        except Exception as exc:  # noqa: BLE001 - MLflow raises several types for a bad URI; all mean the same
            raise ConfigError(f"params.yaml: train.pretrained: cannot fetch '{source}' "
                              f"({type(exc).__name__})") from None
        found = sorted(local.rglob(WEIGHTS))
        if not found:
            raise ConfigError(f"params.yaml: train.pretrained: '{source}' is not a medtune model "
                              f"(no {WEIGHTS} inside)")
        return read_state(found[0], source)
    if not Path(source).is_file():
        raise ConfigError(f"params.yaml: train.pretrained: file '{source}' does not exist")
    return read_state(Path(source), source)


def resolve_pretrained(base: TrainCfg, space: tuple[ParamSpec, ...], channels: int, task: Task,
                       tracking_uri: str | None = None) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    """arch -> initial weights for every arch a sweep over `space` may build, and one report line per arch.

    `base.pretrained` `none` gives {}. `imagenet` gives each backbone its own weights (the ConvNet has
    none: it trains from scratch, and the report says so). A file or URI is one state offered to every
    arch, test-loaded into the network `base` describes (a ConvNet file fits the depth/width it was
    trained with).
    """
    source, archs = base.pretrained, possible_values("arch", base, space)
    if source == "none":
        return {}, []
    shared = None if source == "imagenet" else fetch_state(source, tracking_uri)
    states, lines = {}, []
    for arch in archs:
        if source == "imagenet" and arch == "convnet":
            lines.append("convnet: no ImageNet weights exist for medtune's ConvNet; it trains from scratch")
            continue
        state = imagenet_state(arch) if shared is None else shared
        spec = net_spec_for(dataclasses.replace(base, arch=arch), task, channels, state)
        report: LoadReport = load_pretrained(build_net(spec), spec, state, source)
        states[arch] = state
        lines.append(f"{arch}: {report.summary()}")
    return states, lines
