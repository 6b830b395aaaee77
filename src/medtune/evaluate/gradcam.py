"""Grad-CAM (Selvaraju et al. 2017) on any network medtune builds, and a grid of test cases.

It shows where the network looked for a few correct and a few wrong test calls: a radiologist's first
sanity check that the model reads lungs, not burned-in text or the edge of the detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from monai.visualize import GradCAM
from torch import nn

from medtune.jsonio import atomic_path
from medtune.models.ensemble import EnsembleNet
from medtune.models.nets import NetSpec, layout
from medtune.task import Task


class _Explained(nn.Module):
    """The network as Grad-CAM should see it: a one-logit binary net as two logits (-z, z), so class 0 is
    explained by what lowers z; every other task as it is (a regression output is its index 0)."""

    def __init__(self, net: nn.Module, binary: bool) -> None:
        super().__init__()
        self.net, self.binary = net, binary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return torch.cat([-logits, logits], dim=1) if self.binary else logits


def _peak(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map by its own maximum into [0, 1]."""
    return maps / maps.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, *[1] * (maps.ndim - 1))


def gradcam(net: nn.Module, spec: NetSpec | list[NetSpec], x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Maps (N, H, W) in [0, 1] explaining output `classes[i]` for image i (binary: the class; multiclass:
    the class; multilabel: the label; regression: 0, the value) on the family's last feature map.

    monai.visualize.GradCAM does the work for any module; `layout(spec).cam_layer` names the layer
    (ConvNet's last block before its pool, a ResNet's layer4, DenseNet's final activation, ...). An
    EnsembleNet gets the mean of its members' maps, each on its own family's layer (`spec`: one per member,
    as `medtune.models.inference.member_specs` lists them, or one all members share).
    """
    if isinstance(net, EnsembleNet):
        specs = spec if isinstance(spec, list) else [spec] * len(net.members)
        return np.mean([gradcam(member, s, x, classes) for member, s in zip(net.members, specs, strict=True)], axis=0)
    spec = spec[0] if isinstance(spec, list) else spec
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    classes = np.asarray(classes, dtype=np.int64)
    # MONAI's default post-processing min-max scales each map with min -> 1 and max -> 0; ours keeps the
    # orientation (1 = the strongest evidence) and zero where nothing is active.
    cam = GradCAM(nn_module=_Explained(net, spec.task == "binary"), target_layers=f"net.{layout(spec).cam_layer}",
                  postprocessing=_peak)
    maps = np.zeros((len(x), *x.shape[-2:]), dtype=np.float32)
    with torch.enable_grad():
        for target in np.unique(classes):  # MONAI explains one class index per call
            at = np.flatnonzero(classes == target)
            maps[at] = cam(x=x[at], class_idx=int(target)).detach().numpy()[:, 0]
    return maps


def _calls(task: Task, y: np.ndarray, out: np.ndarray, threshold: Any) -> tuple[np.ndarray, ...]:
    """Per image: the output explained, whether the call was right, how sure it was, and a caption."""
    names = list(task.names)
    if task.kind == "regression":
        error = np.abs(out - y)
        right = error <= np.median(error)  # the closer half counts as right, the rest as wrong
        captions = [f"true {t:.3g}, predicted {p:.3g}" for t, p in zip(y, out)]
        return np.zeros(len(y), dtype=int), right, np.where(right, -error, error), np.array(captions)
    if task.kind == "binary":
        explained = (out >= float(threshold)).astype(int)
        right, sure = explained == y, np.abs(out - float(threshold))
        shown = np.where(explained == 1, out, 1 - out)
    elif task.kind == "multiclass":
        explained = out.argmax(axis=1)
        right, sure = explained == y, out.max(axis=1)
        shown = sure
    else:  # multilabel: each image's most probable label, right when its call matches the label read
        explained = out.argmax(axis=1)
        rows = np.arange(len(out))
        calls = out[rows, explained] >= np.ravel(threshold)[explained]
        right, sure = calls == (y[rows, explained] == 1), out[rows, explained]
        shown = sure
    truth = [names[t] for t in y] if task.kind != "multilabel" else ["" for _ in y]
    captions = [f"{t}\ncalled {names[e]} ({p:.2f})" for t, e, p in zip(truth, explained, shown)]
    return explained, right, sure, np.array(captions)


def write_gradcam_grid(net: nn.Module, spec: NetSpec | list[NetSpec], task: Task, x: Any, y: np.ndarray,
                       out: np.ndarray, threshold: Any, k: int, path: Path) -> Path | None:
    """A 2-row PNG: right calls on top, wrong below (the surest first), each image with its Grad-CAM
    overlay; None if k=0. `x` may be a lazy ImageArray: only the chosen images are read."""
    if k == 0 or not len(y):
        return None
    explained, right, sure, captions = _calls(task, y, out, threshold)
    order = np.argsort(-sure, kind="stable")
    chosen_right, chosen_wrong = order[right[order]][:k], order[~right[order]][:k]
    chosen = np.concatenate([chosen_right, chosen_wrong])
    images = x[chosen]  # float32 (n, C, S, S)
    cams = gradcam(net, spec, images, explained[chosen])
    fig = Figure(figsize=(2.0 * k, 4.6))
    for row, cases in enumerate((chosen_right, chosen_wrong)):
        for col in range(k):
            ax = fig.add_subplot(2, k, row * k + col + 1)
            ax.set_axis_off()
            if col >= len(cases):
                continue
            at = int(np.flatnonzero(chosen == cases[col])[0])
            ax.imshow(images[at, 0], cmap="gray", vmin=0, vmax=1)
            ax.imshow(cams[at], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            ax.set_title(f"{'right' if row == 0 else 'wrong'}: {captions[cases[col]]}", fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    return path
