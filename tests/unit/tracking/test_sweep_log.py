"""SweepLogger against a real SQLite store: nesting, per-epoch metrics, stop reasons, reopening."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests._net import closed_port

from medtune.errors import MedtuneError
from medtune.tracking.loading import load_registered
from medtune.tracking.sweep_log import PARENT_TAG, SweepLogger, open_run_client


def test_parent_with_nested_trials_and_resume(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    log = SweepLogger(uri, "sweeps", str(tmp_path / "art"), tags={"medtune.split_hash": "s1"},
                      params={"search.num_samples": 2})
    for trial in ("a", "b"):
        log.trial_started(trial, {"lr": 0.01, "optimizer": "adam"})
        for epoch in (1, 2):
            log.trial_result(trial, {"val_auroc": 0.5 + epoch / 10, "val_loss": 1 / epoch, "note": "x"}, epoch)
    log.trial_ended("a", "FINISHED", "completed", {"epochs_run": 2})
    log.trial_ended("b", "FINISHED", "asha_stopped", {"epochs_run": 1})

    client = log.client
    runs = {r.data.tags["medtune.trial_id"]: r for r in client.search_runs(
        [log.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{log.parent_run_id}'")}
    assert set(runs) == {"a", "b"}
    assert runs["b"].data.tags["medtune.stop_reason"] == "asha_stopped"
    history = client.get_metric_history(runs["a"].info.run_id, "val_auroc")
    assert [(m.step, round(m.value, 2)) for m in history] == [(1, 0.6), (2, 0.7)]
    assert runs["a"].data.params["optimizer"] == "adam"

    # Reopening the same parent (a resumed sweep) finds its trials instead of duplicating them.
    reopened = SweepLogger(uri, "sweeps", str(tmp_path / "art"), parent_run_id=log.parent_run_id)
    assert reopened.children == log.children
    assert reopened.trial_started("a", {"lr": 0.01}) == log.children["a"]
    # A trial the killed driver had started but Tune had not saved: the resumed sweep does not have it.
    reopened.trial_started("c", {"lr": 0.02})
    assert reopened.close_lost({"a", "b"}) == ["c"]
    lost = client.get_run(reopened.children["c"])
    assert lost.info.status == "KILLED" and lost.data.tags["medtune.stop_reason"] == "lost_with_driver"
    assert client.get_run(log.children["a"]).info.status == "FINISHED"
    reopened.finish({"best_val_auroc": 0.7}, [], {"medtune.best_trial": "a"})
    parent = client.get_run(log.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_val_auroc"] == 0.7


def test_a_trials_learning_curve_reads_back_one_value_per_epoch(tmp_path: Path) -> None:
    log = SweepLogger(f"sqlite:///{tmp_path / 'mlruns.db'}", "sweeps", str(tmp_path / "art"))
    log.trial_started("a", {"lr": 0.01})
    for epoch, value in ((1, 0.6), (2, 0.7), (2, 0.75), (3, 0.8)):  # epoch 2 again: retried from its checkpoint
        log.trial_result("a", {"val_auroc": value}, epoch)
        time.sleep(0.002)  # distinct timestamps: the later report of an epoch wins
    curve = log.trial_history("a", "val_auroc")
    assert curve["epoch"].tolist() == [1, 2, 3]
    assert curve["val_auroc"].round(2).tolist() == [0.6, 0.75, 0.8]
    assert curve["timestamp"].between(time.time() - 60, time.time()).all()  # seconds, as Ray's results have
    assert log.trial_history("a", "val_loss") is None
    assert log.trial_history("never-started", "val_auroc") is None


def test_a_sweep_that_raises_leaves_its_parent_run_killed(tmp_path: Path) -> None:
    log = SweepLogger(f"sqlite:///{tmp_path / 'mlruns.db'}", "sweeps", str(tmp_path / "art"))
    try:
        with log.killed_on_error():
            raise KeyboardInterrupt  # Ctrl-C mid-sweep counts too
    except KeyboardInterrupt:
        pass
    assert log.client.get_run(log.parent_run_id).info.status == "KILLED"
    with log.killed_on_error():
        pass  # nothing raised: the run is left to finish()


@pytest.mark.parametrize("open_store", [
    lambda uri, tmp: SweepLogger(uri, "sweeps", str(tmp / "art")),  # the tune stage
    lambda uri, tmp: open_run_client(uri),  # promote, test
    lambda uri, tmp: load_registered("models:/medtune-classifier@champion", uri),  # predict, serve
], ids=["tune", "promote-test", "predict"])
def test_a_tracking_server_that_is_not_there_is_one_line_at_once(tmp_path: Path, open_store) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(MedtuneError, match=rf"^no MLflow server answers at {uri} \(Connection refused\); "):
        open_store(uri, tmp_path)
    assert time.monotonic() - started < 5  # MLflow alone retried for minutes, then raised a traceback
