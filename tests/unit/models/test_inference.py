"""Inference helpers: probabilities per head, batching, and the module's mode left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medtune.models.ensemble import EnsembleNet
from medtune.models.inference import load_net, member_specs, outputs_from_logits, predict_proba
from medtune.models.nets import NetSpec, build_net


@pytest.mark.parametrize("outputs", [1, 3])
def test_predict_proba_batches_and_keeps_the_mode(outputs: int) -> None:
    torch.manual_seed(0)
    net = build_net(NetSpec(depth=2, width=4, num_outputs=outputs, task="binary" if outputs == 1 else "multiclass"))
    net.train()
    x = np.random.default_rng(1).random((300, 1, 8, 8), dtype=np.float32)  # more than one batch
    prob = predict_proba(net, x, batch_size=128)
    assert net.training  # restored after eval-mode inference
    with torch.no_grad():
        expected = outputs_from_logits(net.eval()(torch.from_numpy(x)), net.task).numpy()
    assert prob.shape == ((300,) if outputs == 1 else (300, 3))
    assert np.allclose(prob, expected, atol=1e-6)
    if outputs == 3:
        assert np.allclose(prob.sum(axis=1), 1.0, atol=1e-5)


def test_load_net_rebuilds_the_same_function() -> None:
    spec = NetSpec(depth=2, width=4, num_outputs=1)
    net = build_net(spec).eval()
    x = np.random.default_rng(2).random((5, 1, 8, 8), dtype=np.float32)
    rebuilt = load_net(spec.to_dict(), net.state_dict())
    assert not rebuilt.training
    assert np.allclose(predict_proba(rebuilt, x), predict_proba(net, x))


def test_a_list_of_specs_loads_as_one_ensemble_of_different_networks() -> None:
    torch.manual_seed(5)
    specs = [NetSpec(depth=2, width=4), NetSpec(depth=3, width=8, residual=True)]
    ensemble = EnsembleNet([build_net(spec) for spec in specs]).eval()
    x = np.random.default_rng(6).random((5, 1, 16, 16), dtype=np.float32)
    rebuilt = load_net([spec.to_dict() for spec in specs], ensemble.state_dict())
    np.testing.assert_allclose(predict_proba(rebuilt, x), predict_proba(ensemble, x), atol=1e-6)
    with torch.no_grad():  # the mean of the members' logits, not of their probabilities
        mean_logit = torch.stack([m(torch.from_numpy(x)) for m in ensemble.members]).mean(0)[:, 0]
    np.testing.assert_allclose(predict_proba(rebuilt, x), torch.sigmoid(mean_logit).numpy(), atol=1e-6)
    # One spec stored with a member count (a fold ensemble) is that many copies of it.
    assert member_specs(specs[0].to_dict(), 3) == [specs[0].to_dict()] * 3
    assert member_specs(specs[0].to_dict()) == [specs[0].to_dict()]


def test_outputs_per_task() -> None:
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    assert outputs_from_logits(logits[:, :1], "binary").tolist() == [0.5, pytest.approx(0.7311, abs=1e-4)]
    assert torch.allclose(outputs_from_logits(logits, "multiclass").sum(1), torch.ones(2))
    assert outputs_from_logits(logits, "multilabel").shape == (2, 2)
    assert outputs_from_logits(logits[:, :1], "regression").tolist() == [0.0, 1.0]


def test_tta_is_the_mean_over_the_image_and_its_left_right_flip() -> None:
    torch.manual_seed(3)
    net = build_net(NetSpec(depth=2, width=4, num_outputs=1)).eval()
    x = np.random.default_rng(4).random((6, 1, 8, 8), dtype=np.float32)
    plain, flipped = predict_proba(net, x), predict_proba(net, x[..., ::-1].copy())
    assert not np.allclose(plain, flipped)  # the net is not flip-invariant, so TTA changes something
    np.testing.assert_allclose(predict_proba(net, x, tta=True), (plain + flipped) / 2, atol=1e-6)
    # and a flipped input gives the same TTA output: the averaged model is flip-invariant
    np.testing.assert_allclose(predict_proba(net, x[..., ::-1].copy(), tta=True), predict_proba(net, x, tta=True),
                               atol=1e-6)
