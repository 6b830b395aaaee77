"""Cluster sweeps proven on loopback: a head and two worker raylets, MLflow on PostgreSQL over HTTP,
a 10-trial load, a worker node killed mid-sweep, and the MLflow server stopped mid-sweep.

The PostgreSQL server is started here, in a temp dir on a free port, and stopped after the module
(tests/integration/postgres.py); MEDTUNE_TEST_POSTGRES=postgresql://user@host:port uses a running one."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg2
import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster
from tests._data import learnable_data
from tests.integration._proc import run
from tests.integration.mlflow_server import MlflowServer
from tests.integration.postgres import postgres_server

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tracking.sweep_log import PARENT_TAG, SweepLogger
from medtune.tune.runner import Trainable, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.cluster]
N_LOAD_TRIALS = 10  # the tune stage on the cluster: every epoch of each logged to PostgreSQL-backed MLflow


@pytest.fixture
def cluster() -> Iterator[tuple[Cluster, list]]:
    """Head with no CPUs (it schedules nothing) and two 1-CPU worker nodes, separate raylets."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray.shutdown()  # an in-process local runtime from earlier tests would shadow the cluster
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [head.add_node(num_cpus=1), head.add_node(num_cpus=1)]
    head.wait_for_nodes()
    try:
        yield head, workers
    finally:
        ray.shutdown()
        head.shutdown()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """URL of a PostgreSQL server this module started (or MEDTUNE_TEST_POSTGRES's)."""
    if os.environ.get("MEDTUNE_TEST_POSTGRES"):
        yield os.environ["MEDTUNE_TEST_POSTGRES"]
        return
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_db(postgres: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one MLflow backend store, dropped afterwards."""
    name = f"medtune_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"{postgres}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{postgres.replace('postgresql://', 'postgresql+psycopg2://')}/{name}"  # SQLAlchemy's driver name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def epoch_points(client: MlflowClient, run_id: str) -> int:
    return len(client.get_metric_history(run_id, "val_auroc"))


def test_tune_stage_on_a_two_worker_cluster_logs_everything_to_postgres_mlflow(
        project: Path, cluster: tuple[Cluster, list], postgres_db: str, tmp_path: Path) -> None:
    head, workers = cluster
    run(["dvc", "repro", "split"], project)  # ingest -> preprocess -> split, locally
    params = yaml.safe_load((project / "params.yaml").read_text())
    # Trials of ~5 s that ASHA never stops: longer than a trial actor takes to start on a busy machine. With
    # 1 s trials, Tune handed each finished trial's actor to the next trial and cancelled the one still
    # starting on the other node, so under load that node sat out the whole sweep.
    params["search"].update(num_samples=N_LOAD_TRIALS, max_concurrent_trials=2, grace_period=10_000, min_steps=0)
    params["train"]["epochs"] = 40
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    server = MlflowServer(tmp_path, backend_uri=postgres_db)
    url = server.start()
    try:
        start = time.monotonic()
        out = run(["medtune", "tune"], project, env={"RAY_ADDRESS": head.address, "MLFLOW_TRACKING_URI": url})
        seconds = time.monotonic() - start
        board = pd.read_csv(project / "reports/tune/leaderboard.csv")
        assert len(board) == N_LOAD_TRIALS, out.stdout[-2000:]
        # trials ran on both worker nodes (the head has no CPUs to run any)
        assert set(board["node_id"]) == {w.node_id for w in workers}, out.stdout[-3000:]

        client = MlflowClient(url)
        best = json.loads((project / "reports/tune/best.json").read_text())
        children = client.search_runs(
            [client.get_experiment_by_name("medtune").experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{best['sweep_run_id']}'", max_results=100)
        assert len(children) == N_LOAD_TRIALS
        logged = sum(epoch_points(client, c.info.run_id) for c in children)
        assert logged == int(board["epochs_run"].sum())  # every epoch of every trial, nothing lost
        print(f"\nLOAD: {N_LOAD_TRIALS} trials, {logged} epoch metrics logged of {int(board['epochs_run'].sum())} "
              f"expected, {seconds:.0f}s, nodes {board['node_id'].value_counts().to_dict()}")
    finally:
        server.stop()


def test_killed_worker_node_trials_are_retried_elsewhere(cluster: tuple[Cluster, list], tmp_path: Path) -> None:
    head, (doomed, survivor) = cluster
    data = learnable_data(tmp_path, 512, 128, size=32)
    base = TrainCfg(batch_size=32, epochs=5, depth=2, width=16, augment=0.0, seed=5)
    search = SearchCfg(num_samples=4, max_concurrent_trials=2, grace_period=10_000, min_steps=0, max_failures=2,
                       address=head.address, space=(ParamSpec("lr", low=1e-3, high=1e-2, log=True),))
    sweep_dir = tmp_path / "ray" / "sweep"
    killed = threading.Event()

    def kill_when_a_trial_has_progressed_there() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed.is_set():
            for result in sweep_dir.glob("*/result.json"):
                rows = [json.loads(line) for line in result.read_text().splitlines()]
                if any(r.get("node_id") == doomed.node_id and not r.get("done") for r in rows):
                    head.remove_node(doomed)  # its raylet and the trial workers on it die
                    killed.set()
                    return
            time.sleep(0.3)

    killer = threading.Thread(target=kill_when_a_trial_has_progressed_there, daemon=True)
    killer.start()
    logger = SweepLogger(f"sqlite:///{tmp_path / 'mlruns.db'}", "faults", str(tmp_path / "art"))
    result = run_sweep(Trainable(data, base, search), sweep_dir, logger)
    killer.join(timeout=5)
    assert killed.is_set(), "no trial ever ran on the node to kill"

    board = result.leaderboard
    assert len(board) == 4
    assert set(board["stop_reason"]) == {"completed"}
    moved = [t for t, frame in result.history.items()
             if doomed.node_id in set(frame["node_id"]) and frame["node_id"].iloc[-1] == survivor.node_id]
    assert moved, "no trial was retried on the surviving node"
    for trial in moved:  # resumed from its checkpoint: it still ends at the planned epoch count
        assert int(result.history[trial]["epoch"].iloc[-1]) == base.epochs
    print(f"\nFAULT worker killed: {len(moved)} trial(s) retried on the other node, 4/4 completed")


def test_mlflow_server_outage_mid_sweep_loses_nothing(tmp_path: Path) -> None:
    ray.shutdown()
    data = learnable_data(tmp_path, 256, 64)
    base = TrainCfg(batch_size=16, epochs=3, depth=2, width=8, augment=0.0, seed=9)
    search = SearchCfg(num_samples=4, max_concurrent_trials=2, grace_period=10_000, min_steps=0,
                       space=(ParamSpec("lr", low=1e-3, high=1e-2, log=True),))
    server = MlflowServer(tmp_path)
    url = server.start()
    outage = threading.Event()

    def stop_then_restart() -> None:
        client = MlflowClient(url)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if client.search_runs([logger.experiment_id], filter_string="tags.`medtune.kind` = 'trial'"):
                break
            time.sleep(0.3)
        server.stop()
        outage.set()
        time.sleep(6)  # the driver keeps reporting into a dead server meanwhile
        server.start()

    try:
        logger = SweepLogger(url, "outage", str(tmp_path / "unused"))
        thread = threading.Thread(target=stop_then_restart, daemon=True)
        thread.start()
        result = run_sweep(Trainable(data, base, search), tmp_path / "ray" / "sweep", logger)
        thread.join(timeout=120)
        logger.finish({"trials": 4.0}, [], {})
        assert outage.is_set()

        client = MlflowClient(url)
        children = client.search_runs([logger.experiment_id],
                                      filter_string=f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
        assert len(children) == 4
        expected = result.leaderboard.set_index("trial_id")["epochs_run"]
        for child in children:
            assert epoch_points(client, child.info.run_id) == expected[child.data.tags["medtune.trial_id"]]
        print("\nFAULT mlflow outage 6s: 4/4 trials and every epoch metric logged")
    finally:
        server.stop()
