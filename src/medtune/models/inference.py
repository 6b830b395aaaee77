"""Inference on a plain network: rebuild it from its spec and weights, and turn outputs into predictions.

The one home of these functions: training (validation predictions), promote, the registered pyfunc and
Grad-CAM all use them. Only torch, numpy, `nets` and `ensemble` are imported, so a served model needs nothing of
Lightning, Ray or the data stack.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medtune.models.ensemble import EnsembleNet
from medtune.models.nets import NetSpec, build_net

PROB_EPS = 1e-7  # float32 sigmoids saturate at 1.0: clip before taking logits


def outputs_from_logits(logits: torch.Tensor, task: str) -> torch.Tensor:
    """binary: (N,) P(positive); multiclass: (N, C) softmax; multilabel: (N, L) sigmoids; regression: (N,)."""
    if task == "binary":
        return torch.sigmoid(logits[:, 0])
    if task == "multiclass":
        return torch.softmax(logits, dim=1)
    if task == "multilabel":
        return torch.sigmoid(logits)
    return logits[:, 0]  # regression: the network already speaks the target's units


def member_specs(net: dict | list[dict], members: int = 0) -> list[dict]:
    """The NetSpec fields of each network a stored model holds: one; a list (a top-k ensemble, one spec per
    trial); or one spec `members` times (a fold ensemble: every fold refits the same config)."""
    if isinstance(net, list):
        return net
    return [net] * max(members, 1)


def load_net(net: dict | list[dict], state_dict: dict, members: int = 0) -> nn.Module:
    """Rebuild a trained network from its NetSpec fields and weights, ready for inference (eval mode);
    several specs (`member_specs`): an EnsembleNet of them (the weights of all of them)."""
    if isinstance(net, list) or members:
        model: nn.Module = EnsembleNet([build_net(NetSpec(**spec)) for spec in member_specs(net, members)])
    else:
        model = build_net(NetSpec(**net))
    model.load_state_dict(state_dict)
    return model.eval()


@torch.no_grad()
def predict_proba(net: nn.Module, x: np.ndarray, batch_size: int = 256, tta: bool = False) -> np.ndarray:
    """Predictions for images (N, C, S, S) in [0, 1] (an array or a lazy ImageArray), per `net.task`:
    probabilities (classification) or values (regression); eval mode, no grad, the caller's mode kept.
    `tta`: the mean over the image and its left-right flip (the flip training augments with; an up-down
    flip is no view a radiograph is taken in)."""
    task = getattr(net, "task", "binary")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    chunks = []
    try:
        for i in range(0, len(x), batch_size):
            batch = torch.as_tensor(np.asarray(x[i : i + batch_size], dtype=np.float32), device=device)
            views = [batch, batch.flip(-1)] if tta else [batch]
            chunks.append(torch.stack([outputs_from_logits(net(v), task) for v in views]).mean(0).cpu())
    finally:
        net.train(was_training)
    if not chunks:
        return np.empty((0,), dtype=np.float32)
    return torch.cat(chunks).float().numpy()


def logits_of(prob: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), clipped so saturated float32 probabilities stay finite."""
    p = np.clip(np.asarray(prob, dtype=float), PROB_EPS, 1 - PROB_EPS)
    return np.log(p) - np.log1p(-p)


def calibrate(out: np.ndarray, kind: str, calibration: dict | None) -> np.ndarray:
    """Apply a calibration fitted on validation (`medtune.evaluate.calibration.fit_calibration`): logits
    z = logit(p) (multiclass: log p) become scale * z + bias per column, then back to probabilities.
    None (or regression) leaves the outputs as they are."""
    if not calibration or kind == "regression":
        return out
    scale, bias = np.asarray(calibration["scale"], dtype=float), np.asarray(calibration["bias"], dtype=float)
    p = np.clip(np.asarray(out, dtype=float), PROB_EPS, 1 - PROB_EPS)
    if kind == "multiclass":  # softmax is shift-invariant: log p are the logits up to a constant
        z = scale[0] * np.log(p)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    z = logits_of(p)
    return (1.0 / (1.0 + np.exp(-(z * scale + bias)))).astype(np.float32)  # binary: (N,) * (1,)
