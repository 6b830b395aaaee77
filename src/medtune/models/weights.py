"""Pretrained weights into our networks: standard ImageNet files, medtune checkpoints, bare state_dicts.

Each family's ImageNet weights come in the layout of the library that published them (torchvision for
ResNet/DenseNet, EfficientNet-PyTorch, Cadene's SE-ResNet); MONAI's own loaders remap them but drop any
tensor whose shape differs, which silently leaves a 1-channel stem random. Here the remap is ours, the
stem is adapted from the RGB weights (summed over colour: a grey image copied into three channels gives
the same response), and every load reports what it copied and refuses when nothing but the head would be.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from medtune.errors import ConfigError
from medtune.models.nets import NetSpec, layout

_TORCHVISION = "https://download.pytorch.org/models/"
_EFFICIENTNET = "https://github.com/lukemelas/EfficientNet-PyTorch/releases/download/1.0/"
# arch -> the standard ImageNet weights file (torch.hub caches it under its basename).
IMAGENET_URLS: dict[str, str] = {
    "resnet18": _TORCHVISION + "resnet18-f37072fd.pth",
    "resnet34": _TORCHVISION + "resnet34-b627a593.pth",
    "resnet50": _TORCHVISION + "resnet50-0676ba61.pth",
    "resnet101": _TORCHVISION + "resnet101-63fe2227.pth",
    "densenet121": _TORCHVISION + "densenet121-a639ec97.pth",
    "densenet169": _TORCHVISION + "densenet169-b2777c0a.pth",
    "efficientnet-b0": _EFFICIENTNET + "efficientnet-b0-355c32eb.pth",
    "efficientnet-b1": _EFFICIENTNET + "efficientnet-b1-f1951068.pth",
    "efficientnet-b2": _EFFICIENTNET + "efficientnet-b2-8bb594d6.pth",
    "efficientnet-b3": _EFFICIENTNET + "efficientnet-b3-5fb5a3c3.pth",
    "seresnet50": "http://data.lip6.fr/cadene/pretrainedmodels/se_resnet50-ce0d4300.pth",
}
DOWNLOAD_TIMEOUT_S = 20


@dataclass
class LoadReport:
    """What a load copied into the network; `adapted` lists tensors reshaped for another channel count."""

    source: str
    copied: int
    total: int
    adapted: list[str] = field(default_factory=list)
    head_only: bool = False

    def summary(self) -> str:
        extra = f", stem adapted from RGB ({', '.join(self.adapted)})" if self.adapted else ""
        return f"{self.source}: copied {self.copied} of {self.total} tensors{extra}"


def imagenet_file(arch: str) -> Path:
    """Where torch.hub keeps `arch`'s ImageNet weights ($TORCH_HOME/hub/checkpoints/<file>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(IMAGENET_URLS[arch]).name


def imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """The standard ImageNet weights of `arch`: from torch.hub's cache, else downloaded into it.

    Offline with no cached file this fails at once, saying which file to place where.
    """
    if arch not in IMAGENET_URLS:
        raise ConfigError(f"params.yaml: train.pretrained: imagenet: no ImageNet weights for arch {arch!r} "
                          f"(available for {', '.join(IMAGENET_URLS)})")
    path, url = imagenet_file(arch), IMAGENET_URLS[arch]
    if not path.is_file():
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except Exception as exc:  # noqa: BLE001 - offline, proxy, TLS: all mean "place the file by hand"
            raise ConfigError(f"params.yaml: train.pretrained: imagenet: {path.name} is not in the torch.hub "
                              f"cache and cannot be downloaded ({type(exc).__name__}); download {url} and "
                              f"place it at {path}") from None
        finally:
            socket.setdefaulttimeout(previous)
    return read_state(path, "imagenet")


def read_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A state_dict from a file (a bare one, or a medtune checkpoint's `state_dict`), loaded weights_only."""
    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise ConfigError(f"params.yaml: train.pretrained: '{what}' is not a torch weights file "
                          f"({type(exc).__name__})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"params.yaml: train.pretrained: '{what}' holds no state_dict")
    return state


def _densenet(state: dict, model_keys: set[str]) -> dict:
    # torchvision: denselayer1.norm.1.weight (old) or denselayer1.norm1.weight; MONAI: denselayer1.layers.norm1.weight
    pattern = re.compile(r"^(.*denselayer\d+)\.((?:norm|relu|conv))\.?([12])\.(.+)$")
    return {pattern.sub(r"\1.layers.\2\3.\4", k): v for k, v in state.items()}


def _efficientnet(state: dict, model_keys: set[str]) -> dict:
    # EfficientNet-PyTorch numbers blocks globally (_blocks.5.x); MONAI nests them by stage (_blocks.2.5.x).
    flat = re.compile(r"(.+)\.\d+(\.\d+\..+)")
    return {k: state[flat.sub(r"\1\2", k)] for k in model_keys if flat.sub(r"\1\2", k) in state}


def _seresnet(state: dict, model_keys: set[str]) -> dict:
    # Cadene's pretrainedmodels layout -> MONAI's SENet module names; SE weights are 1x1 convs there.
    rules = [(r"^(layer[1-4]\.\d+\.)conv(\d)\.(\w+)$", r"\1conv\2.conv.\3"),
             (r"^(layer[1-4]\.\d+\.)bn(\d)\.(\w+)$", r"\1conv\2.adn.N.\3"),
             (r"^(layer[1-4]\.\d+\.)se_module\.fc1\.(\w+)$", r"\1se_layer.fc.0.\2"),
             (r"^(layer[1-4]\.\d+\.)se_module\.fc2\.(\w+)$", r"\1se_layer.fc.2.\2"),
             (r"^(layer[1-4]\.\d+\.)downsample\.0\.(\w+)$", r"\1project.conv.\2"),
             (r"^(layer[1-4]\.\d+\.)downsample\.1\.(\w+)$", r"\1project.adn.N.\2")]
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            if re.match(pattern, key):
                key = re.sub(pattern, repl, key)
                value = value.flatten(1) if "se_layer" in key and value.ndim == 4 else value
                break
        out[key] = value
    return out


_REMAPS: dict[str, Callable[[dict, set[str]], dict]] = {
    "densenet": _densenet, "efficientnet": _efficientnet, "seresnet": _seresnet}


def to_network_keys(state: dict[str, torch.Tensor], spec: NetSpec, model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Any supported layout -> our `Network` keys: a medtune state_dict (`body.`...), a bare backbone's,
    or the family's published ImageNet layout. `module.` prefixes (DataParallel) are dropped."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("body.") for k in state):
        return state
    bare = {k.removeprefix("body."): None for k in model_keys if k.startswith("body.")}
    family = next((name for name in _REMAPS if spec.arch.startswith(name)), None)
    if family is not None:
        state = _REMAPS[family](state, set(bare))
    return {f"body.{k}": v for k, v in state.items()}


def _adapt_stem(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """RGB stem weights for `channels` inputs: summed for one (same response to a grey image), else
    repeated and rescaled so the response to a grey image stays that of the RGB stem."""
    summed = weight.sum(dim=1, keepdim=True)
    return summed if channels == 1 else summed.repeat(1, channels, 1, 1) / channels


def load_pretrained(net: nn.Module, spec: NetSpec, state: dict[str, torch.Tensor], source: str) -> LoadReport:
    """Copy every tensor of `state` that fits `net` (the stem adapted across channel counts); refuse when
    none, or only the head, would be copied: training "from pretrained weights" must never mean random."""
    own = net.state_dict()
    where = layout(spec)
    incoming = to_network_keys(state, spec, set(own))
    usable, adapted = {}, []
    for key, value in incoming.items():
        if key not in own:
            continue
        if own[key].shape == value.shape:
            usable[key] = value
        elif key == where.stem and value.ndim == 4 and value.shape[1] == 3 and value.shape[0] == own[key].shape[0]:
            usable[key] = _adapt_stem(value, own[key].shape[1]).to(own[key].dtype)
            adapted.append(key)
    body = [k for k in usable if not k.startswith(where.head) and not k.endswith("num_batches_tracked")]
    report = LoadReport(source, len(usable), len(own), adapted, head_only=not body and bool(usable))
    if not body:
        what = "only the classifier head" if usable else "nothing"
        raise ConfigError(f"params.yaml: train.pretrained: {source}: {what} matches a {spec.arch} network "
                          f"({len(incoming)} tensors offered, {len(own)} expected); wrong file or arch?")
    net.load_state_dict(usable, strict=False)
    return report
