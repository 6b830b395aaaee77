"""train.pretrained: weights from a file or an MLflow model URI, loaded weights-only, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests._registry import local_store, register_untrained

from medtune.config import ParamSpec, TrainCfg
from medtune.errors import ConfigError
from medtune.models.nets import NetSpec, build_net
from medtune.task import Task
from medtune.tracking.pretrained import fetch_state, resolve_pretrained

BINARY = Task("binary", ("a", "b"))
SPACE = (ParamSpec("arch", choices=("convnet", "resnet18")),)


def test_file_bundle_and_bare_state_dict(tmp_path: Path) -> None:
    net = build_net(NetSpec(depth=2, width=4))
    torch.save({"net": {}, "state_dict": net.state_dict()}, tmp_path / "bundle.pt")
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    for name in ("bundle.pt", "bare.pt"):
        state = fetch_state(str(tmp_path / name))
        assert state.keys() == net.state_dict().keys()


def test_resolve_checks_the_file_against_every_arch_of_the_sweep(tmp_path: Path) -> None:
    torch.save(build_net(NetSpec(depth=2, width=4)).state_dict(), tmp_path / "convnet.pt")
    base = TrainCfg(pretrained=str(tmp_path / "convnet.pt"), depth=2, width=4)
    states, lines = resolve_pretrained(base, (), channels=1, task=BINARY)
    assert set(states) == {"convnet"} and "copied" in lines[0]
    with pytest.raises(ConfigError, match="nothing matches a resnet18 network"):
        resolve_pretrained(base, SPACE, channels=1, task=BINARY)
    assert resolve_pretrained(TrainCfg(), SPACE, channels=1, task=BINARY) == ({}, [])


@pytest.mark.parametrize("content, expected", [
    (None, "file '.*missing.pt' does not exist"),
    (b"not torch", "'.*missing.pt' is not a torch weights file"),
])
def test_bad_sources_are_one_line(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "missing.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"params.yaml: train.pretrained: {expected}"):
        fetch_state(str(path))


def test_registered_model_uri(tmp_path: Path) -> None:
    uri, client, experiment_id = local_store(tmp_path, "pretrained")
    meta = {"preprocess": {"image_size": 8}, "task": {"kind": "binary", "names": ["a", "b"]}, "threshold": 0.5}
    _, net = register_untrained(client, experiment_id, "pre", tmp_path / "files", NetSpec(depth=1, width=4),
                                meta, {})
    state = fetch_state("models:/pre/1", uri)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ConfigError, match="cannot fetch 'models:/nope/1'"):
        fetch_state("models:/nope/1", uri)
