"""Inference on a plain network: rebuild it from its spec and weights, and turn outputs into predictions.

The one home of these functions: training (validation predictions), promote, the registered pyfunc and
Grad-CAM all use them. Only torch, numpy and `nets` are imported, so a served model needs nothing of
Lightning, Ray or the data stack.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medtune.models.nets import NetSpec, build_net


def outputs_from_logits(logits: torch.Tensor, task: str) -> torch.Tensor:
    """binary: (N,) P(positive); multiclass: (N, C) softmax; multilabel: (N, L) sigmoids; regression: (N,)."""
    if task == "binary":
        return torch.sigmoid(logits[:, 0])
    if task == "multiclass":
        return torch.softmax(logits, dim=1)
    if task == "multilabel":
        return torch.sigmoid(logits)
    return logits[:, 0]  # regression: the network already speaks the target's units


def load_net(net: dict, state_dict: dict) -> nn.Module:
    """Rebuild a trained network from its NetSpec fields and weights, ready for inference (eval mode)."""
    model = build_net(NetSpec(**net))
    model.load_state_dict(state_dict)
    return model.eval()


@torch.no_grad()
def predict_proba(net: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predictions for images (N, C, S, S) in [0, 1] (an array or a lazy ImageArray), per `net.task`:
    probabilities (classification) or values (regression); eval mode, no grad, the caller's mode kept."""
    task = getattr(net, "task", "binary")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    chunks = []
    try:
        for i in range(0, len(x), batch_size):
            batch = torch.as_tensor(np.asarray(x[i : i + batch_size], dtype=np.float32), device=device)
            chunks.append(outputs_from_logits(net(batch), task).cpu())
    finally:
        net.train(was_training)
    if not chunks:
        return np.empty((0,), dtype=np.float32)
    return torch.cat(chunks).float().numpy()
