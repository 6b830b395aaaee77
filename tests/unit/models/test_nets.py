"""The searchable ConvNet family: every depth and activation the search space allows builds and runs."""

from __future__ import annotations

import pytest
import torch

from medtune.choices import ACTIVATIONS
from medtune.models.nets import NetSpec, build_net


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_output_shape_at_28px(depth: int, activation: str) -> None:
    torch.manual_seed(0)
    net = build_net(NetSpec(depth=depth, width=4, activation=activation)).eval()
    with torch.no_grad():
        out = net(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("num_outputs", [1, 3, 5])
def test_head_size_follows_num_outputs(num_outputs: int) -> None:
    net = build_net(NetSpec(num_outputs=num_outputs, depth=2, width=4)).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 28, 28)).shape == (2, num_outputs)


def test_width_doubles_per_block_and_in_channels_is_honoured() -> None:
    net = build_net(NetSpec(in_channels=3, depth=3, width=4))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 3
    assert [c.out_channels for c in convs[::2]] == [4, 8, 16]


def test_unknown_activation_is_refused() -> None:
    with pytest.raises(ValueError, match="activation"):
        build_net(NetSpec(activation="swishy"))


def test_every_allowed_activation_has_a_module() -> None:
    from medtune.models.nets import ACTIVATION_MODULES

    assert tuple(ACTIVATION_MODULES) == ACTIVATIONS


def test_every_allowed_arch_has_a_builder() -> None:
    from medtune.choices import ARCHS
    from medtune.models.backbones import FAMILIES

    assert ARCHS == ("convnet", *FAMILIES)
