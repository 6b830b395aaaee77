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

from medtune.models.nets import NetSpec, layout


class _TwoLogits(nn.Module):
    """A one-logit binary net as two logits (-z, z): class 0 is then explained by what lowers z."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return torch.cat([-logits, logits], dim=1) if logits.shape[1] == 1 else logits


def _peak(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map by its own maximum into [0, 1]."""
    return maps / maps.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, *[1] * (maps.ndim - 1))


def gradcam(net: nn.Module, spec: NetSpec, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Maps (N, H, W) in [0, 1] explaining `classes[i]` for image i, on the family's last feature map.

    monai.visualize.GradCAM does the work for any module; `layout(spec).cam_layer` names the layer
    (ConvNet's last block before its pool, a ResNet's layer4, DenseNet's final activation, ...).
    """
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    classes = np.asarray(classes, dtype=np.int64)
    # MONAI's default post-processing min-max scales each map with min -> 1 and max -> 0; ours keeps the
    # orientation (1 = the strongest evidence) and zero where nothing is active.
    cam = GradCAM(nn_module=_TwoLogits(net), target_layers=f"net.{layout(spec).cam_layer}", postprocessing=_peak)
    maps = np.zeros((len(x), *x.shape[-2:]), dtype=np.float32)
    with torch.enable_grad():
        for target in np.unique(classes):  # MONAI explains one class index per call
            at = np.flatnonzero(classes == target)
            maps[at] = cam(x=x[at], class_idx=int(target)).detach().numpy()[:, 0]
    return maps


def pick_cases(y: np.ndarray, pred: np.ndarray, confidence: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to k correct and k wrong cases, the most confident first (the clearest successes and failures)."""
    order = np.argsort(-confidence, kind="stable")
    right = order[(pred == y)[order]][:k]
    wrong = order[(pred != y)[order]][:k]
    return right, wrong


def write_gradcam_grid(net: nn.Module, spec: NetSpec, x: Any, y: np.ndarray, prob: np.ndarray, threshold: float,
                       class_names: list[str], k: int, path: Path) -> Path | None:
    """A 2-row PNG: correct cases on top, wrong below, each image with its Grad-CAM overlay; None if k=0."""
    binary = prob.ndim == 1
    pred = (prob >= threshold).astype(int) if binary else prob.argmax(axis=1)
    confidence = np.abs(prob - threshold) if binary else prob.max(axis=1)
    right, wrong = pick_cases(y, pred, confidence, k)
    if k == 0 or not (len(right) or len(wrong)):
        return None
    chosen = np.concatenate([right, wrong])
    images = x[chosen]  # float32 (n, C, S, S), also from a lazy ImageArray
    cams = gradcam(net, spec, images, pred[chosen])
    fig = Figure(figsize=(2.0 * k, 4.4))
    for row, cases in enumerate((right, wrong)):
        for col in range(k):
            ax = fig.add_subplot(2, k, row * k + col + 1)
            ax.set_axis_off()
            if col >= len(cases):
                continue
            i, at = cases[col], int(np.flatnonzero(chosen == cases[col])[0])
            ax.imshow(images[at, 0], cmap="gray", vmin=0, vmax=1)
            ax.imshow(cams[at], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            p = prob[i] if binary else prob[i, pred[i]]
            ax.set_title(f"{'right' if row == 0 else 'wrong'}: {class_names[y[i]]}\n"
                         f"called {class_names[pred[i]]} ({p:.2f})", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
