"""Inference on a plain network: rebuild it from its spec and weights, and turn logits into probabilities.

The one home of these three functions: training (validation predictions), promote, the registered
pyfunc and Grad-CAM all use them. Only torch, numpy and `nets` are imported, so a served model needs
nothing of Lightning, Ray or the data stack.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medtune.models.nets import NetSpec, build_net


def probs_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(N,) positive-class probability for a one-logit head, (N, C) softmax otherwise."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)


def load_net(net: dict, state_dict: dict) -> nn.Module:
    """Rebuild a trained network from its NetSpec fields and weights, ready for inference (eval mode)."""
    model = build_net(NetSpec(**net))
    model.load_state_dict(state_dict)
    return model.eval()


@torch.no_grad()
def predict_proba(net: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities for images (N, C, S, S): (N,) if binary, (N, K) if multi-class; eval mode, no grad."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    chunks = []
    try:
        for i in range(0, len(x), batch_size):
            batch = torch.as_tensor(np.asarray(x[i : i + batch_size], dtype=np.float32), device=device)
            chunks.append(probs_from_logits(net(batch)).cpu())
    finally:
        net.train(was_training)
    if not chunks:
        return np.empty((0,), dtype=np.float32)
    return torch.cat(chunks).float().numpy()
