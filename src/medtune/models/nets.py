"""The searchable CNN family as plain nn.Modules, built from a small spec.

The spec is stored beside every checkpoint and registered model (like nanoGPT's model args), so a
model loads from its state_dict with nothing but this module: no config, no pickled classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


@dataclass(frozen=True)
class NetSpec:
    """Everything needed to rebuild the network; `num_outputs` is 1 for binary (one logit)."""

    in_channels: int = 1
    num_outputs: int = 1
    depth: int = 3
    width: int = 16
    activation: str = "relu"
    dropout: float = 0.1
    residual: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def conv_block(c_in: int, c_out: int, activation: str) -> nn.Sequential:
    """Two 3x3 convs with batch norm, then a 2x2 max-pool that halves the image."""
    act = ACTIVATION_MODULES[activation]
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        act(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        act(),
        nn.MaxPool2d(2),
    )


class ResidualBlock(nn.Module):
    """The same two convs with a skip connection (1x1 conv when the width changes), then the pool."""

    def __init__(self, c_in: int, c_out: int, activation: str) -> None:
        super().__init__()
        act = ACTIVATION_MODULES[activation]
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), act(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)
        self.out = nn.Sequential(act(), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.skip(x))


class ConvNet(nn.Module):
    """`depth` conv blocks doubling the width each time, global average pool, dropout, linear head."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        if spec.activation not in ACTIVATION_MODULES:
            raise ValueError(f"unknown activation {spec.activation!r}; one of {', '.join(ACTIVATION_MODULES)}")
        widths = [spec.width * 2**i for i in range(spec.depth)]
        blocks, c_in = [], spec.in_channels
        for c_out in widths:
            block = ResidualBlock(c_in, c_out, spec.activation) if spec.residual else conv_block(
                c_in, c_out, spec.activation)
            blocks.append(block)
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(c_in, spec.num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


def build_net(spec: NetSpec) -> nn.Module:
    """The one factory every caller uses (training, registry loading, predict)."""
    return ConvNet(spec)


def load_compatible(net: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Transfer learning: copy every tensor whose name and shape match (a new head or a wider layer
    keeps its fresh init); returns the names that were not copied."""
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def freeze_blocks(net: ConvNet, n: int) -> None:
    """Stop gradients in the first n conv blocks (their batch-norm statistics are frozen too)."""
    for block in list(net.features)[:n]:
        block.requires_grad_(False)
        block.eval()
