"""LitModel: the loss of every task, the six optimisers, the cosine schedule, saved hparams."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from medtune.choices import OPTIMIZERS
from medtune.models.heads import loss_weights
from medtune.models.lit_module import LitModel, make_optimizer
from medtune.models.nets import NetSpec

NET = NetSpec(depth=1, width=4).to_dict()


def make(optimizer: str = "adam", epochs: int = 4, **net: object) -> LitModel:
    torch.manual_seed(0)
    return LitModel(
        net={**NET, **net}, lr=0.05, optimizer=optimizer, momentum=0.9, weight_decay=1e-4, epochs=epochs,
        loss_weights=None if net.get("num_outputs", 1) > 1 else [3.0],
    )


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_takes_a_step(name: str) -> None:
    module = make(name)
    opt = module.configure_optimizers()["optimizer"]
    before = [p.detach().clone() for p in module.parameters()]
    x, y = torch.rand(8, 1, 16, 16), torch.tensor([0, 1] * 4)
    module.loss(module(x), y).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_sgd_momentum_is_nesterov_and_sgd_is_plain() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert make_optimizer("sgd_momentum", params, 0.1, 0.9, 0.0).defaults["nesterov"] is True
    assert make_optimizer("sgd", params, 0.1, 0.9, 0.0).defaults["momentum"] == 0
    assert make_optimizer("adamw", params, 0.1, 0.9, 0.01).defaults["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("adamm", params, 0.1, 0.9, 0.0)


def test_cosine_schedule_anneals_over_the_epochs() -> None:
    conf = make("sgd", epochs=4).configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "epoch"
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.05)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_hparams_are_saved_for_rebuilding() -> None:
    module = make("rmsprop", epochs=7)
    assert module.hparams["net"] == NET
    assert (module.hparams["optimizer"], module.hparams["epochs"], module.hparams["lr"]) == ("rmsprop", 7, 0.05)
    assert module.hparams["loss_weights"] == [3.0]


def test_binary_loss_weights_the_positive_class() -> None:
    module = make()
    assert module.loss_weight.item() == pytest.approx(3.0)
    assert loss_weights("binary", np.array([0, 0, 0, 1]), 1) == [3.0]  # n_neg / n_pos on train
    logits = torch.zeros(2, 1)
    pos, neg = module.loss(logits[:1], torch.tensor([1])), module.loss(logits[1:], torch.tensor([0]))
    assert pos.item() == pytest.approx(3 * neg.item())


def test_uint8_batches_are_normalised_on_the_device() -> None:
    module = make()
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    out, y = module.on_after_batch_transfer((x, torch.zeros(3, dtype=torch.long)), 0)
    assert out.dtype == torch.float32 and out.ravel().tolist() == pytest.approx([0.0, 0.2, 1.0])
    floats = torch.rand(2, 1, 4, 4)
    assert module.on_after_batch_transfer((floats, y[:2]), 0)[0] is floats  # a 16-bit store arrives as float


def test_wrong_number_of_loss_weights_is_refused() -> None:
    with pytest.raises(ValueError, match="loss_weights"):
        LitModel(net=NET, lr=0.1, optimizer="adam", momentum=0.9, weight_decay=0.0, epochs=1,
                 loss_weights=[1.0, 1.0, 1.0])


def test_multilabel_loss_masks_unread_labels() -> None:
    module = make(task="multilabel", num_outputs=2)
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    y = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([2.0, 0.5, 3.0]), torch.tensor([1.0, 0.0, 1.0]))
    assert module.loss(logits, y).item() == pytest.approx(expected.item())


def test_regression_learns_in_standard_units_and_answers_in_target_units() -> None:
    torch.manual_seed(0)
    module = LitModel(net={**NET, "task": "regression"}, lr=0.05, optimizer="adam", momentum=0.9,
                      weight_decay=0.0, epochs=1, regression_loss="mae", target_stats=(50.0, 10.0))
    assert float(module.net.out.mean) == 50.0 and float(module.net.out.std) == 10.0
    values = torch.tensor([[60.0], [40.0]])  # network outputs, already in target units
    assert module.loss(values, torch.tensor([50.0, 50.0])).item() == pytest.approx(1.0)  # 10 / std
