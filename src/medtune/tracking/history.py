"""Finished trials of earlier sweeps, read back from MLflow for a warm start.

A sweep's parent run carries the data, labels and split hashes (tracking/lineage.py); each trial's child
run carries every train value it ran with (params) and its best validation metric. Only the driver reads
them, like it writes them.
"""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from medtune.tracking.lineage import DATA_KEYS
from medtune.tracking.sweep_log import PARENT_TAG

MAX_RUNS = 5000


def matching_sweeps(client: MlflowClient, experiment_id: str, tags: dict[str, str], exclude: str | None) -> list[str]:
    """Finished sweep runs whose data, labels and split hashes equal `tags` (none when a hash is unknown)."""
    wanted = {k: tags.get(k, "unknown") for k in DATA_KEYS}
    if "unknown" in wanted.values():
        return []
    where = " and ".join([f"tags.`{k}` = '{v}'" for k, v in wanted.items()] + ["tags.`medtune.kind` = 'sweep'"])
    runs = client.search_runs([experiment_id], filter_string=where, max_results=MAX_RUNS)
    return [r.info.run_id for r in runs if r.info.run_id != exclude and r.info.status == "FINISHED"]


def finished_trials(client: MlflowClient, experiment_id: str, parents: list[str],
                    metric: str) -> list[tuple[dict[str, str], float]]:
    """(params as logged, best `metric`) of every finished child run of `parents`."""
    out = []
    for parent in parents:
        runs = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'",
                                  max_results=MAX_RUNS)
        for run in runs:
            value = run.data.metrics.get(f"best_{metric}")
            if run.info.status == "FINISHED" and value is not None:
                out.append((dict(run.data.params), float(value)))
    return out
