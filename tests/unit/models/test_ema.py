"""The weights' moving average: timm's warm-up, the decay's cap, BatchNorm's counter, and that LitModel
validates, exports and checkpoints the average."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medtune.models.ema import weight_ema
from medtune.models.lit_module import LitModel
from medtune.models.nets import NetSpec


def _set(net: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)


def test_the_first_update_copies_then_the_average_warms_up_to_its_decay() -> None:
    net = nn.Linear(2, 1)
    ema = weight_ema(net, decay=0.9)
    _set(net, 1.0)
    ema.update_parameters(net)                     # n = 0: a copy of the weights as they are now
    assert torch.all(ema.module.weight == 1.0)
    _set(net, 0.0)
    ema.update_parameters(net)                     # n = 1: decay (1 + 1) / (10 + 1), not 0.9
    assert torch.allclose(ema.module.weight, torch.tensor(2 / 11))
    for _ in range(200):                           # late in a run the decay is capped at 0.9
        ema.update_parameters(net)
    before = ema.module.weight.clone()
    _set(net, 1.0)
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1)


def test_batch_norm_statistics_are_averaged_and_its_counter_copied() -> None:
    net = nn.BatchNorm1d(3)
    ema = weight_ema(net, decay=0.5)
    ema.update_parameters(net)
    net.train()
    for _ in range(4):
        net(torch.randn(8, 3) + 5.0)
    ema.update_parameters(net)
    assert ema.module.num_batches_tracked == 4
    assert torch.all(ema.module.running_mean > 0) and torch.all(ema.module.running_mean < net.running_mean)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_0_1_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="EMA decay"):
        weight_ema(nn.Linear(1, 1), decay)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # validation_step without a Trainer
def test_lit_model_validates_and_checkpoints_the_average() -> None:
    torch.manual_seed(0)
    module = LitModel(net=NetSpec(depth=1, width=4).to_dict(), lr=0.1, optimizer="sgd", momentum=0.0,
                      weight_decay=0.0, epochs=1, ema_decay=0.99)
    opt = torch.optim.SGD(module.net.parameters(), lr=0.5)
    x, y = torch.rand(8, 1, 8, 8), torch.tensor([0, 1] * 4)
    for step in range(3):
        opt.zero_grad()
        module.training_step((x, y), step).backward()
        opt.step()
        module.on_train_batch_end(None, (x, y), step)
    averaged, last = module.evaluated_net(), module.net
    assert averaged is not last
    assert any(not torch.equal(a, b) for a, b in zip(averaged.state_dict().values(), last.state_dict().values()))
    assert set(averaged.state_dict()) == set(last.state_dict())   # exported like the bare network
    assert int(module.state_dict()["ema.n_averaged"]) == 3         # a resumed trial continues the average
    module.eval()
    module.on_validation_epoch_start()
    module.validation_step((x, y), 0)
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(module.epoch_val_outputs()), torch.sigmoid(averaged(x)).squeeze(1))
    plain = LitModel(net=NetSpec(depth=1, width=4).to_dict(), lr=0.1, optimizer="sgd", momentum=0.0,
                     weight_decay=0.0, epochs=1, ema_decay=0.0)
    assert plain.evaluated_net() is plain.net and plain.ema is None
