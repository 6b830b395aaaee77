"""Grad-CAM (Selvaraju et al. 2017) on the last conv block of ConvNet, and a grid of test cases.

It shows where the network looked for a few correct and a few wrong test calls: a radiologist's first
sanity check that the model reads lungs, not burned-in text or the edge of the detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from medtune.jsonio import atomic_path


def _last_conv_activation(net: nn.Module) -> nn.Module:
    """The activation after the last conv + BN of the last block (before its pool): the finest late map."""
    features = getattr(net, "features", None)
    if not isinstance(features, nn.Sequential) or not len(features):
        raise ValueError("Grad-CAM needs a ConvNet-like model with a `features` sequence of conv blocks")
    block = features[-1]
    return block[-2] if isinstance(block, nn.Sequential) and len(block) >= 2 else block


def gradcam(net: nn.Module, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Maps (N, H, W) in [0, 1]: ReLU of the gradient-weighted sum of the last block's feature maps.

    `classes` is the class to explain per image; for a one-logit binary net class 0 is explained by -logit.
    """
    layer, store = _last_conv_activation(net), {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            logits = net(torch.as_tensor(np.asarray(x, dtype=np.float32)))
            idx = torch.as_tensor(np.asarray(classes, dtype=np.int64))
            if logits.shape[1] == 1:
                score = torch.where(idx == 1, logits[:, 0], -logits[:, 0])
            else:
                score = logits.gather(1, idx[:, None])[:, 0]
            grads = torch.autograd.grad(score.sum(), store["a"])[0]
    finally:
        handle.remove()
        net.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * store["a"]).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
    return (cam / peak).numpy()


def pick_cases(y: np.ndarray, pred: np.ndarray, confidence: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to k correct and k wrong cases, the most confident first (the clearest successes and failures)."""
    order = np.argsort(-confidence, kind="stable")
    right = order[(pred == y)[order]][:k]
    wrong = order[(pred != y)[order]][:k]
    return right, wrong


def write_gradcam_grid(net: nn.Module, x: np.ndarray, y: np.ndarray, prob: np.ndarray, threshold: float,
                       class_names: list[str], k: int, path: Path) -> Path | None:
    """A 2-row PNG: correct cases on top, wrong below, each image with its Grad-CAM overlay; None if k=0."""
    binary = prob.ndim == 1
    pred = (prob >= threshold).astype(int) if binary else prob.argmax(axis=1)
    confidence = np.abs(prob - threshold) if binary else prob.max(axis=1)
    right, wrong = pick_cases(y, pred, confidence, k)
    if k == 0 or not (len(right) or len(wrong)):
        return None
    chosen = np.concatenate([right, wrong])
    cams = gradcam(net, x[chosen], pred[chosen])
    fig = Figure(figsize=(2.0 * k, 4.4))
    for row, cases in enumerate((right, wrong)):
        for col in range(k):
            ax = fig.add_subplot(2, k, row * k + col + 1)
            ax.set_axis_off()
            if col >= len(cases):
                continue
            i, at = cases[col], int(np.flatnonzero(chosen == cases[col])[0])
            ax.imshow(x[i, 0], cmap="gray", vmin=0, vmax=1)
            ax.imshow(cams[at], cmap="jet", alpha=0.4, vmin=0, vmax=1)
            p = prob[i] if binary else prob[i, pred[i]]
            ax.set_title(f"{'right' if row == 0 else 'wrong'}: {class_names[y[i]]}\n"
                         f"called {class_names[pred[i]]} ({p:.2f})", fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    return path
