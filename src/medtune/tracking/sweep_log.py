"""The sweep's MLflow record: one parent run per sweep, one nested child run per trial.

The Tune driver is MLflow's only writer (docs/architecture.md, decisions): trial workers never talk to
MLflow, so cluster workers need no route to the tracking server and the SQLite default is never written
concurrently.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from medtune.errors import MedtuneError
from medtune.reach import unreachable

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "medtune.trial_id"


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str) -> str:
    """Experiment id for `name`, creating it with a local artifact root unless the store is a server."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    remote = client.tracking_uri.startswith(("http://", "https://", "databricks"))
    location = None if remote else Path(artifact_root).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def trial_params(defaults: Any, config: dict[str, Any]) -> dict[str, Any]:
    """What a trial's child run logs as params: the train defaults (a dataclass) with its sampled values over them."""
    return {**asdict(defaults), **config}


def logged_params(params: dict[str, Any]) -> dict[str, str]:
    """`params` as MLflow stores them (strings, cut to its length limit): how a trial's values read back."""
    return {k: str(v)[:6000] for k, v in params.items()}


class SweepLogger:
    """Writes a sweep into MLflow from the driver, as Tune reports trial events."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: str,
                 parent_run_id: str | None = None, run_name: str = "sweep",
                 tags: dict[str, str] | None = None, params: dict[str, Any] | None = None) -> None:
        check_server(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = ensure_experiment(self.client, experiment, artifact_root)
        if parent_run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=run_name,
                                         tags={"medtune.kind": "sweep", **(tags or {})})
            parent_run_id = run.info.run_id
            self._log_params(parent_run_id, params or {})
        else:  # resuming: reopen the same parent and find the trials it already has
            self.client.update_run(parent_run_id, status="RUNNING")
        self.parent_run_id = parent_run_id
        self.children: dict[str, str] = self._existing_children()

    def _existing_children(self) -> dict[str, str]:
        runs = self.client.search_runs([self.experiment_id],
                                       filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
                                       max_results=5000)
        return {r.data.tags[TRIAL_TAG]: r.info.run_id for r in runs if TRIAL_TAG in r.data.tags}

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(k, v) for k, v in sorted(logged_params(params).items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def trial_started(self, trial_id: str, params: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        """Open (or, after a resume, reuse) the child run of one trial."""
        if trial_id in self.children:
            return self.children[trial_id]
        run = self.client.create_run(
            self.experiment_id, run_name=f"trial-{trial_id}",
            tags={PARENT_TAG: self.parent_run_id, TRIAL_TAG: trial_id, "medtune.kind": "trial",
                  **(tags or {})})
        self.children[trial_id] = run.info.run_id
        self._log_params(run.info.run_id, params)
        return run.info.run_id

    def trial_result(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        """Log one epoch's metrics (numbers only) of a trial at `step`."""
        run_id = self.children[trial_id]
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def trial_history(self, trial_id: str, metric: str) -> pd.DataFrame | None:
        """A trial's `metric` per epoch as logged here (columns epoch, `metric`, timestamp in seconds), or None.
        The learning curve of a trial whose Ray result file a killed driver left cut short: this record of
        it is written by the driver as each epoch arrives. An epoch logged twice (a retried trial reports it
        again from its checkpoint) keeps its last value."""
        run_id = self.children.get(trial_id)
        logged = self.client.get_metric_history(run_id, metric) if run_id else []
        if not logged:
            return None
        frame = pd.DataFrame({"epoch": [m.step for m in logged], metric: [m.value for m in logged],
                              "timestamp": [m.timestamp / 1000 for m in logged]})
        frame = frame.sort_values(["epoch", "timestamp"], kind="stable")
        return frame.drop_duplicates("epoch", keep="last").reset_index(drop=True)

    def trial_ended(self, trial_id: str, status: str, reason: str, summary: dict[str, Any]) -> None:
        """Close a trial's run with its stop reason (completed, asha_stopped, oom, error)."""
        run_id = self.children.get(trial_id)
        if run_id is None:
            return
        tags = [RunTag("medtune.stop_reason", reason)]
        tags += [RunTag(f"medtune.{k}", str(v)[:5000]) for k, v in summary.items()]
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status=status)

    def close_lost(self, kept: set[str]) -> list[str]:
        """Mark KILLED the child runs of trials the finished sweep does not have, and return their trial ids.
        A driver killed after a trial started but before Tune saved its state (every 2 s) leaves that trial's
        run behind; the resumed sweep ran a new trial in its place, so the old run would stay RUNNING forever
        and count as a trial that never was."""
        lost = [trial for trial in self.children if trial not in kept]
        for trial in lost:
            self.trial_ended(trial, "KILLED", "lost_with_driver", {})
        return lost

    @contextmanager
    def killed_on_error(self) -> Iterator[None]:
        """Mark the parent run KILLED when the sweep inside raises (or is interrupted), then re-raise."""
        try:
            yield
        except BaseException:
            self.client.set_terminated(self.parent_run_id, status="KILLED")
            raise

    def finish(self, metrics: dict[str, float], artifacts: list[Path], tags: dict[str, str],
               status: str = "FINISHED") -> None:
        """Close the parent run with the sweep's summary metrics and report files."""
        now = int(time.time() * 1000)
        self.client.log_batch(self.parent_run_id,
                              metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                              tags=[RunTag(k, str(v)) for k, v in tags.items()])
        for path in artifacts:
            if Path(path).exists():
                self.client.log_artifact(self.parent_run_id, str(path))
        self.client.set_terminated(self.parent_run_id, status=status)


def check_server(tracking_uri: str) -> None:
    """An http(s) tracking server that does not answer: one line now, instead of MLflow's minutes of retries
    ending in a traceback. (Once a sweep runs, an outage is ridden out: the retries are what keep it.)"""
    url = urlsplit(tracking_uri)
    if url.scheme not in ("http", "https") or not url.hostname:
        return
    why = unreachable(url.hostname, url.port or (443 if url.scheme == "https" else 80))
    if why:
        raise MedtuneError(f"no MLflow server answers at {tracking_uri} ({why}); point MLFLOW_TRACKING_URI "
                           "(or base.tracking_uri, or --tracking-uri) at a running one")


def open_run_client(tracking_uri: str) -> MlflowClient:
    """A client bound to one tracking URI, which also becomes the process's (pyfunc and model loading read
    the global one)."""
    check_server(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri)
