"""Every arch in choices.ARCHS: builds at a small size, freezes its first blocks, and Grad-CAM explains it.

One parametrised pass per arch on CPU at 32 px (MIN_BACKBONE_SIZE), batch 2, so the whole file stays a
few seconds: these are the contracts every family must meet, not accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medtune.choices import ARCHS, MIN_BACKBONE_SIZE
from medtune.config import TrainCfg
from medtune.config.sections import ParamSpec
from medtune.config.space import min_image_size
from medtune.evaluate.gradcam import gradcam
from medtune.models.nets import NetSpec, build_net, freeze_blocks, layout

SIZE = MIN_BACKBONE_SIZE


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def spec_of(arch: str) -> NetSpec:
    return NetSpec(arch=arch, depth=2, width=4, dropout=0.0)


@pytest.mark.parametrize("arch", ARCHS)
def test_freeze_blocks_stops_gradients_and_batch_norm_in_the_first_blocks(arch: str) -> None:
    torch.manual_seed(0)
    spec = spec_of(arch)
    net = build_net(spec)
    blocks = layout(spec).blocks
    assert len(blocks) >= 2, arch
    net.train()
    freeze_blocks(net, spec, 1)
    modules = dict(net.named_modules())
    frozen = {name for name in blocks[0]}
    frozen_params = [(n, p) for n, p in net.named_parameters() if any(n.startswith(f + ".") for f in frozen)]
    assert frozen_params, f"{arch}: block 0 {blocks[0]} has no parameters"
    assert all(not p.requires_grad for _, p in frozen_params)
    assert all(not m.training for name in frozen for m in modules[name].modules())
    later = [p for n, p in net.named_parameters() if any(n.startswith(f + ".") for f in blocks[1])]
    assert later and all(p.requires_grad for p in later)
    before = {n: p.detach().clone() for n, p in frozen_params}
    stats = {n: b.clone() for n, b in net.named_buffers() if any(n.startswith(f + ".") for f in frozen)}
    x = torch.rand(2, 1, SIZE, SIZE)
    net(x).sum().backward()
    assert all(p.grad is None for _, p in frozen_params)
    assert all(p.grad is not None for p in later if p.requires_grad)
    for name, value in stats.items():  # running means/vars unchanged by a forward pass in train mode
        assert torch.equal(dict(net.named_buffers())[name], value), name
    for name, value in before.items():
        assert torch.equal(dict(net.named_parameters())[name], value), name


@pytest.mark.parametrize("arch", ARCHS)
def test_gradcam_gives_a_map_per_image_for_every_arch(arch: str) -> None:
    torch.manual_seed(0)
    spec = spec_of(arch)
    net = build_net(spec).eval()
    x = np.random.default_rng(0).random((2, 1, SIZE, SIZE)).astype(np.float32)
    cams = gradcam(net, spec, x, np.array([0, 1]))
    assert cams.shape == (2, SIZE, SIZE) and np.isfinite(cams).all()
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6


def test_a_space_mixing_depth_and_width_with_monai_archs_builds_every_corner() -> None:
    """depth/width shape the ConvNet only: every (arch, depth, width) a sweep can draw builds and runs."""
    space = (ParamSpec("arch", choices=("convnet", "resnet18", "densenet121")),
             ParamSpec("depth", low=1, high=4), ParamSpec("width", choices=(4, 8)))
    base = TrainCfg(depth=3, width=16)
    need, why = min_image_size(base, space)
    assert need == max(2**4, MIN_BACKBONE_SIZE) and "ConvNet depth 4" in why and "MONAI" in why
    x = torch.rand(2, 1, need, need)
    for arch in ("convnet", "resnet18", "densenet121"):
        for depth in (1, 4):
            for width in (4, 8):
                spec = NetSpec(arch=arch, depth=depth, width=width)
                assert build_net(spec).eval()(x).shape == (2, 1), (arch, depth, width)
