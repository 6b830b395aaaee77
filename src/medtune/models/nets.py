"""The networks as plain nn.Modules, built from a small spec: our ConvNet and MONAI's backbones.

The spec is stored beside every checkpoint and registered model (like nanoGPT's model args), so a
model loads from its state_dict with nothing but this module: no config, no pickled classes. Every
network is `Network(norm, body)`: `norm` is the input normalisation its weights expect (identity, or
ImageNet's mean/std for ImageNet-initialised backbones), `body` the CNN; `layout(spec)` says where the
stem, the blocks, the head and the Grad-CAM layer are, for every family alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from medtune.choices import ARCHS
from medtune.config import TrainCfg
from medtune.models.backbones import FAMILIES, build_backbone
from medtune.task import Task

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
# ImageNet statistics; one channel uses their mean, matching a stem whose RGB weights were summed.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class NetSpec:
    """Everything needed to rebuild the network; `num_outputs` is 1 for binary (one logit).

    depth, width, activation and residual shape the ConvNet only; MONAI backbones have fixed shapes.
    """

    arch: str = "convnet"
    task: str = "binary"      # what the outputs mean (choices.TASKS): sigmoid, softmax, sigmoids, or a value
    in_channels: int = 1
    num_outputs: int = 1
    depth: int = 3
    width: int = 16
    activation: str = "relu"
    dropout: float = 0.1
    residual: bool = False
    input_norm: str = "none"  # none | imagenet

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    """State-dict paths of one built network (all under `body.`)."""

    stem: str
    head: str
    blocks: tuple[tuple[str, ...], ...]
    cam_layer: str


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


class InputNorm(nn.Module):
    """Per-channel (x - mean) / std, as buffers, so a served model normalises exactly as in training."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN if channels == 3 else [sum(IMAGENET_MEAN) / 3] * channels)
        std = torch.tensor(IMAGENET_STD if channels == 3 else [sum(IMAGENET_STD) / 3] * channels)
        self.register_buffer("mean", mean.view(1, -1, 1, 1))
        self.register_buffer("std", std.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class OutputScale(nn.Module):
    """A regression target is learnt standardised on train; its mean and std, as buffers, turn the
    network's output back into the target's units, so every consumer gets values, not z-scores."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


class Network(nn.Module):
    """Input normalisation, the CNN, and (regression) the output scale: images in [0, 1] in, logits
    (classification) or target values (regression) out. `task` says which (inference reads it)."""

    def __init__(self, norm: nn.Module, body: nn.Module, out: nn.Module, task: str) -> None:
        super().__init__()
        self.norm, self.body, self.out, self.task = norm, body, out, task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.norm(x)))


def build_net(spec: NetSpec) -> Network:
    """The one factory every caller uses (training, registry loading, predict, Grad-CAM)."""
    if spec.arch not in ARCHS:
        raise ValueError(f"unknown arch {spec.arch!r}; one of {', '.join(ARCHS)}")
    if spec.input_norm not in ("none", "imagenet"):
        raise ValueError(f"unknown input_norm {spec.input_norm!r}; none or imagenet")
    body = ConvNet(spec) if spec.arch == "convnet" else build_backbone(
        spec.arch, spec.in_channels, spec.num_outputs, spec.dropout)
    norm = InputNorm(spec.in_channels) if spec.input_norm == "imagenet" else nn.Identity()
    return Network(norm, body, OutputScale() if spec.task == "regression" else nn.Identity(), spec.task)


def layout(spec: NetSpec) -> Layout:
    """Where the stem, the freezable blocks, the head and the Grad-CAM layer of `spec`'s network are."""
    if spec.arch == "convnet":
        last = f"features.{spec.depth - 1}"
        return Layout("body.features.0.0.weight" if not spec.residual else "body.features.0.body.0.weight",
                      "body.head.", tuple((f"body.features.{i}",) for i in range(spec.depth)),
                      f"body.{last}.out.0" if spec.residual else f"body.{last}.5")
    family = FAMILIES[spec.arch]
    return Layout(f"body.{family.stem}", f"body.{family.head}",
                  tuple(tuple(f"body.{m}" for m in block) for block in family.blocks), f"body.{family.cam_layer}")


def freeze_blocks(net: nn.Module, spec: NetSpec, n: int) -> None:
    """Stop gradients in the first n blocks of any family; their batch-norm statistics are frozen too."""
    modules = dict(net.named_modules())
    for block in layout(spec).blocks[:n]:
        for name in block:
            modules[name].requires_grad_(False)
            modules[name].eval()


def net_spec_for(cfg: TrainCfg, task: Task, in_channels: int = 1,
                 init_state: dict[str, torch.Tensor] | None = None) -> NetSpec:
    """The network a config describes for a task (one output for binary and regression).

    ImageNet weights expect ImageNet-normalised inputs, so their networks (and networks fine-tuned from
    one, whose state carries the normalisation buffers) normalise their input first.
    """
    imagenet = cfg.arch != "convnet" and (cfg.pretrained == "imagenet" or "norm.mean" in (init_state or {}))
    return NetSpec(arch=cfg.arch, task=task.kind, input_norm="imagenet" if imagenet else "none",
                   in_channels=in_channels, num_outputs=task.num_outputs, depth=cfg.depth, width=cfg.width,
                   activation=cfg.activation, dropout=cfg.dropout, residual=cfg.residual)
