"""What a quiet sweep still lets through from Ray."""

from __future__ import annotations

import logging

import pytest
import ray.tune.execution.insufficient_resources_manager as waiting

from medtune.tune.console import quiet_logs


def test_a_quiet_sweep_still_says_when_no_trial_fits_the_cluster(caplog: pytest.LogCaptureFixture) -> None:
    ray_logger = logging.getLogger("ray")  # Ray's logger does not propagate to the root, where caplog listens
    ray_logger.addHandler(caplog.handler)
    try:
        quiet_logs(verbose=False)
        waiting.logger.warning("No trial is running and no new trial has been started within the last 60 s.")
        logging.getLogger("ray.tune.search").warning("searcher chatter")
    finally:
        ray_logger.removeHandler(caplog.handler)
    said = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("No trial is running") for message in said)
    assert "searcher chatter" not in said
