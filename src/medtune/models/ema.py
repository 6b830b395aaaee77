"""The exponential moving average of a network's weights, which validation, selection and export use.

An average of the last few hundred optimizer steps sits nearer the centre of the minimum than the last step
does, so its validation curve is smoother (ASHA's rungs and the best epoch are chosen on less noise) and it
is reported to generalise a little better (Polyak averaging; timm and YOLO train with it by default). The decay
warms up as timm's does, min(decay, (1 + n) / (10 + n)) after n updates: the average covers about the last
tenth of the steps taken so far, so a trial ASHA stops after one epoch is not an average dominated by its
random initialisation. Off by default (`train.ema_decay: 0`): the README gives what bench/quality.py and
bench/hpo.py measured, no gain beyond their noise at 28 px and worse short trials.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

AverageFn = Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]


def warmed_ema(decay: float) -> AverageFn:
    """AveragedModel's multi_avg_fn: EMA with timm's warm-up; integer buffers (BatchNorm's batch count)
    are copied, as they cannot be averaged."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # AveragedModel groups tensors by dtype
            torch._foreach_copy_(averaged, current)
            return
        # On the tensors' device: reading n back to the host would wait for the GPU every step.
        steps = n.to(averaged[0].dtype)
        torch._foreach_lerp_(averaged, current, 1.0 - ((1.0 + steps) / (10.0 + steps)).clamp(max=decay))

    return update


def weight_ema(net: nn.Module, decay: float) -> AveragedModel:
    """A copy of `net` that `update_parameters(net)` moves toward it; parameters and buffers (BatchNorm's
    running statistics) alike, so the copy is a whole network. The first update copies `net` as it is then
    (after any pretrained weights were loaded)."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
    return AveragedModel(net, multi_avg_fn=warmed_ema(decay), use_buffers=True)
