"""MONAI's 2D backbones behind one table: how to build each, and where its stem, blocks and head are.

Every family gets the same treatment, so transfer learning, freezing and Grad-CAM need no per-family
code elsewhere: `dropout -> Linear` as the head (so `train.dropout` means the same everywhere), the
standard ImageNet stem (7x7 stride 2 for ResNets: MONAI's 2D default is stride 1, 2.7x slower at 64 px
and not what ImageNet weights expect), and no download ever (MONAI's EfficientNetBN defaults to
`pretrained=True`: always passed explicitly). Pretrained weights are loaded by `models.weights`.

MONAI is imported when a backbone is built, not with this module: `import monai` loads all of MONAI,
~1.3 s on top of torch and Lightning in every trial process, and a convnet sweep never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from torch import nn


@dataclass(frozen=True)
class Family:
    """Where things are in one backbone family (module paths as in its state_dict)."""

    build: Callable[[str, int, int, float], nn.Module]
    stem: str                    # the first conv's weight: adapted, not dropped, for another channel count
    head: str                    # prefix of the classifier: never counts as "pretrained" when copied
    blocks: tuple[tuple[str, ...], ...]  # freeze units, input side first
    cam_layer: str               # last spatial feature map Grad-CAM explains


def _monai_nets() -> ModuleType:
    """MONAI's networks, imported on first use: the import costs ~1.3 s per trial process and the ConvNet
    never needs it."""
    from monai.networks import nets

    return nets


def _head(in_features: int, outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, outputs))


def _resnet(arch: str, channels: int, outputs: int, dropout: float) -> nn.Module:
    net = getattr(_monai_nets(), arch)(spatial_dims=2, n_input_channels=channels, num_classes=outputs,
                                       conv1_t_size=7, conv1_t_stride=2, bias_downsample=False)
    net.fc = _head(net.fc.in_features, outputs, dropout)
    return net


def _densenet(arch: str, channels: int, outputs: int, dropout: float) -> nn.Module:
    nets = _monai_nets()
    cls = {"densenet121": nets.DenseNet121, "densenet169": nets.DenseNet169}[arch]
    net = cls(spatial_dims=2, in_channels=channels, out_channels=outputs, pretrained=False)
    net.class_layers.out = _head(net.class_layers.out.in_features, outputs, dropout)
    return net


def _efficientnet(arch: str, channels: int, outputs: int, dropout: float) -> nn.Module:
    net = _monai_nets().EfficientNetBN(arch, pretrained=False, spatial_dims=2, in_channels=channels,
                                       num_classes=outputs)
    net._dropout = nn.Dropout(dropout)  # replaces the family's fixed rate with the searched one
    return net


def _seresnet(arch: str, channels: int, outputs: int, dropout: float) -> nn.Module:
    net = _monai_nets().SEResNet50(spatial_dims=2, in_channels=channels, num_classes=outputs, pretrained=False)
    net.last_linear = _head(net.last_linear.in_features, outputs, dropout)
    return net


_RESNET = dict(stem="conv1.weight", head="fc.", cam_layer="layer4",
               blocks=(("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",)))
_DENSENET = dict(stem="features.conv0.weight", head="class_layers.", cam_layer="class_layers.relu",
                 blocks=(("features.conv0", "features.norm0"), ("features.denseblock1", "features.transition1"),
                         ("features.denseblock2", "features.transition2"),
                         ("features.denseblock3", "features.transition3"), ("features.denseblock4", "features.norm5")))
_EFFICIENTNET = dict(stem="_conv_stem.weight", head="_fc.", cam_layer="_bn1",
                     blocks=(("_conv_stem", "_bn0"), *((f"_blocks.{i}",) for i in range(7)), ("_conv_head", "_bn1")))

FAMILIES: dict[str, Family] = {
    **{arch: Family(_resnet, **_RESNET) for arch in ("resnet18", "resnet34", "resnet50", "resnet101")},
    **{arch: Family(_densenet, **_DENSENET) for arch in ("densenet121", "densenet169")},
    **{f"efficientnet-b{i}": Family(_efficientnet, **_EFFICIENTNET) for i in range(4)},
    "seresnet50": Family(_seresnet, stem="layer0.conv1.weight", head="last_linear.", cam_layer="layer4",
                         blocks=(("layer0",), ("layer1",), ("layer2",), ("layer3",), ("layer4",))),
}


def build_backbone(arch: str, channels: int, outputs: int, dropout: float) -> nn.Module:
    """A randomly initialised MONAI backbone of `arch` with our head."""
    return FAMILIES[arch].build(arch, channels, outputs, dropout)
