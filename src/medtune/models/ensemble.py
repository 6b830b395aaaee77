"""Several networks as one module whose output is the mean of their logits: the K fold models of
cross-validation, or the top-k trials of a sweep, registered as one model, so inference, the pyfunc and
Grad-CAM take it like any net."""

from __future__ import annotations

import torch
from torch import nn


class EnsembleNet(nn.Module):
    """`members` share a task and its outputs (their families and sizes may differ); forward averages their
    logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = getattr(members[0], "task", "binary")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)
