"""Grad-CAM: it points at the evidence; the grid of right and wrong cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medtune.evaluate.gradcam import gradcam, write_gradcam_grid
from medtune.models.ensemble import EnsembleNet
from medtune.models.nets import NetSpec, build_net
from medtune.task import Task

SPEC = NetSpec(depth=2, width=8, dropout=0.0)


def corner_cohort(n: int = 128, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 has a bright 4x4 patch in the top-left corner; both classes carry the same noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 0, 1:5, 1:5] += 0.7
    return x, y


def test_gradcam_points_at_the_evidence() -> None:
    torch.manual_seed(0)
    net = build_net(SPEC)
    x, y = corner_cohort(n=64)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(25):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(torch.from_numpy(x))[:, 0],
                                                                    torch.from_numpy(y).float())
        loss.backward()
        optimiser.step()
    net.eval()
    positives = x[y == 1][:8]
    cams = gradcam(net, SPEC, positives, np.ones(len(positives), dtype=int))
    assert cams.shape == (8, 16, 16) and cams.min() >= 0 and cams.max() <= 1
    corner, elsewhere = cams[:, :8, :8].mean(), cams[:, 8:, 8:].mean()
    assert corner > 2 * elsewhere, (corner, elsewhere)
    net.train()
    gradcam(net, SPEC, positives[:1], np.ones(1, dtype=int))
    assert net.training  # the caller's mode is restored


def test_an_ensemble_of_different_networks_is_the_mean_of_their_maps() -> None:
    torch.manual_seed(1)
    specs = [SPEC, NetSpec(depth=3, width=4, residual=True)]
    members = [build_net(spec).eval() for spec in specs]
    x, classes = corner_cohort(n=4)[0], np.ones(4, dtype=int)
    expected = np.mean([gradcam(net, spec, x, classes) for net, spec in zip(members, specs)], axis=0)
    np.testing.assert_allclose(gradcam(EnsembleNet(members).eval(), specs, x, classes), expected, atol=1e-6)


@pytest.mark.parametrize("task", [Task("binary", ("normal", "abnormal")), Task("multiclass", ("a", "b", "c")),
                                  Task("multilabel", ("ring", "bar")), Task("regression", ("radius",))])
def test_grid_png_for_every_task(tmp_path, task: Task) -> None:
    spec = NetSpec(depth=2, width=4, task=task.kind, num_outputs=task.num_outputs)
    net = build_net(spec)
    x, _ = corner_cohort(n=10)
    rng = np.random.default_rng(0)
    if task.kind == "binary":
        y, out = np.arange(10) % 2, np.linspace(0.05, 0.95, 10)
    elif task.kind == "multiclass":
        y, out = np.arange(10) % 3, rng.dirichlet(np.ones(3), 10)
    elif task.kind == "multilabel":
        y, out = rng.integers(0, 2, (10, 2)).astype(float), rng.random((10, 2))
    else:
        y, out = rng.random(10), rng.random(10)
    path = write_gradcam_grid(net, spec, task, x, y, out, [0.5, 0.5] if task.kind == "multilabel" else 0.5, 3,
                              tmp_path / "gradcam.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_gradcam_grid(net, spec, task, x, y, out, 0.5, 0, tmp_path / "none.png") is None


def test_a_fold_ensemble_is_explained_by_the_mean_of_its_members_maps() -> None:
    from medtune.models.ensemble import EnsembleNet

    torch.manual_seed(0)
    members = [build_net(SPEC).eval() for _ in range(2)]
    x = np.random.default_rng(0).random((3, 1, 16, 16), dtype=np.float32)
    classes = np.array([0, 1, 1])
    maps = gradcam(EnsembleNet(members).eval(), SPEC, x, classes)
    each = [gradcam(member, SPEC, x, classes) for member in members]
    np.testing.assert_allclose(maps, (each[0] + each[1]) / 2, atol=1e-6)
    assert maps.shape == (3, 16, 16)
