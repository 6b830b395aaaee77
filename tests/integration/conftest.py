"""Integration fixtures over scratch projects (tests/integration/_project.py).

`project` is a fresh one per test. `finished` is one project taken through `dvc repro` once per session
and shared by every test that only reads a finished pipeline's outputs; the tests that change it take
`finished_to_change` instead, and run after all the readers (pytest_collection_modifyitems below).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration._project import Finished, finish, make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project with the real dvc.yaml, the tiny params and a synthetic cohort; nothing run yet."""
    return make_project(tmp_path)


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """The shared finished pipeline (see `finish`): read it, do not change it."""
    return finish(tmp_path_factory.mktemp("finished"))


@pytest.fixture
def finished_to_change(finished: Finished) -> Finished:
    """The shared finished project, for a test that changes it: such tests run after every reader."""
    return finished


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the tests that change the shared project behind every test that reads it (stable order); with
    pytest-xdist, keep them all on one worker, which builds the project once and keeps that order."""
    items.sort(key=lambda item: "finished_to_change" in getattr(item, "fixturenames", ()))
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            if {"finished", "finished_to_change"} & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.xdist_group("finished"))
