"""Pretrained weights: what a load copies, the stem adapted from RGB, and the refusal to train from random."""

from __future__ import annotations

import pytest
import torch

from medtune.errors import ConfigError
from medtune.models.nets import NetSpec, build_net
from medtune.models.weights import imagenet_file, load_pretrained


def test_a_medtune_state_of_another_head_copies_everything_but_the_head() -> None:
    source = build_net(NetSpec(depth=2, width=4, num_outputs=3)).state_dict()
    spec = NetSpec(depth=2, width=4, num_outputs=1)
    target = build_net(spec)
    report = load_pretrained(target, spec, source, "a.pt")
    assert report.copied == len(source) - 2 and report.total == len(target.state_dict())
    assert torch.equal(target.state_dict()["body.features.0.0.weight"], source["body.features.0.0.weight"])


def test_a_one_channel_stem_is_the_sum_of_the_rgb_weights() -> None:
    rgb = {k.removeprefix("body."): v for k, v in build_net(NetSpec(arch="resnet18", in_channels=3,
                                                                      num_outputs=1000)).state_dict().items()}
    spec = NetSpec(arch="resnet18", in_channels=1, num_outputs=1)
    target = build_net(spec)
    report = load_pretrained(target, spec, rgb, "imagenet")
    assert report.adapted == ["body.conv1.weight"]
    assert torch.allclose(target.state_dict()["body.conv1.weight"], rgb["conv1.weight"].sum(1, keepdim=True))
    # the same response to a grey image copied into three channels
    grey = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        one = torch.nn.functional.conv2d(grey, target.state_dict()["body.conv1.weight"], stride=2, padding=3)
        three = torch.nn.functional.conv2d(grey.repeat(1, 3, 1, 1), rgb["conv1.weight"], stride=2, padding=3)
    assert torch.allclose(one, three, atol=1e-5)


def test_a_head_only_or_foreign_state_is_refused() -> None:
    spec = NetSpec(depth=2, width=4, num_outputs=1)
    head = {k: v for k, v in build_net(spec).state_dict().items() if k.startswith("body.head.")}
    with pytest.raises(ConfigError, match="only the classifier head matches"):
        load_pretrained(build_net(spec), spec, head, "head.pt")
    with pytest.raises(ConfigError, match="nothing matches a convnet network"):
        load_pretrained(build_net(spec), spec, {"fc.weight": torch.zeros(2, 2)}, "other.pt")


def test_imagenet_without_a_cache_names_the_file_to_place(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache; no network here
    from medtune.models.weights import imagenet_state

    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert imagenet_file("resnet18") == expected
    with pytest.raises(ConfigError, match=f"place it at {expected}"):
        imagenet_state("resnet18")
