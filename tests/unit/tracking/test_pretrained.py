"""train.init_from: weights from a file or an MLflow model URI, loaded weights-only, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests._registry import local_store, register_untrained

from medtune.errors import ConfigError
from medtune.models.nets import NetSpec, build_net, load_compatible
from medtune.tracking.pretrained import load_init_state


def test_file_bundle_and_bare_state_dict(tmp_path: Path) -> None:
    net = build_net(NetSpec(depth=2, width=4))
    torch.save({"net": {}, "state_dict": net.state_dict()}, tmp_path / "bundle.pt")
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    for name in ("bundle.pt", "bare.pt"):
        state = load_init_state(str(tmp_path / name))
        assert state.keys() == net.state_dict().keys()
    assert load_init_state(None) is None and load_init_state("") is None  # no init_from: a random init


def test_head_of_another_shape_keeps_its_fresh_init() -> None:
    source = build_net(NetSpec(depth=2, width=4, num_outputs=3)).state_dict()
    target = build_net(NetSpec(depth=2, width=4, num_outputs=1))
    skipped = load_compatible(target, source)
    assert skipped == ["head.bias", "head.weight"]
    assert torch.equal(target.state_dict()["features.0.0.weight"], source["features.0.0.weight"])


@pytest.mark.parametrize("content, expected", [
    (None, "file '.*missing.pt' does not exist"),
    (b"not torch", "'.*missing.pt' is not a torch weights file"),
])
def test_bad_sources_are_one_line(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "missing.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"params.yaml: train.init_from: {expected}"):
        load_init_state(str(path))


def test_registered_model_uri(tmp_path: Path) -> None:
    uri, client, experiment_id = local_store(tmp_path, "pretrained")
    meta = {"preprocess": {"image_size": 8}, "class_names": ["a", "b"], "threshold": 0.5}
    _, net = register_untrained(client, experiment_id, "pre", tmp_path / "files", NetSpec(depth=1, width=4),
                                meta, {})
    state = load_init_state("models:/pre/1", uri)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ConfigError, match="cannot fetch 'models:/nope/1'"):
        load_init_state("models:/nope/1", uri)
