"""Stage `test`: score the registered champion on the held-out test split, once.

This is the only caller of `load_split(..., "test", allow_test=True)`. Before loading a single test
image it checks two records of earlier scorings: the ledger file and a tag on the model version. The
threshold comes with the model (chosen on validation by promote); nothing is fitted here.
"""

from __future__ import annotations

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_split, read_index
from medtune.data.split import few_patients_warning, load_valid_splits, split_hash
from medtune.errors import DataError
from medtune.evaluate.ledger import TestLedger, scored_tag, should_score
from medtune.evaluate.report import score_and_report
from medtune.jsonio import write_json
from medtune.tracking.registry import CHAMPION, alias_version, load_registered
from medtune.tracking.runs import log_test_run
from medtune.tracking.sweep_log import open_run_client


def run(params: Params, rescore_reason: str | None = None, skip_scored: bool = False) -> None:
    name = params.registry.model_name
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)
    shash = split_hash(splits)
    client = open_run_client(params.tracking_uri)
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"no '{CHAMPION}' alias on registered model '{name}'; run the promote stage first")
    version, ledger = str(champion.version), TestLedger(paths.LEDGER)
    if not should_score(ledger, name, version, shash, champion.tags, rescore_reason, skip_scored, paths.TEST_METRICS):
        print(f"test: {name} v{version} on split {shash} was already scored; its report in "
              f"{paths.TEST_REPORTS} stands (nothing rescored)")
        return
    # The exact version checked above (the alias could move meanwhile), through the guard that refuses
    # models medtune did not register.
    model = load_registered(f"models:/{name}/{version}", params.tracking_uri).model
    test = load_split(paths.PROCESSED, splits, "test", allow_test=True)
    rows = read_index(paths.PROCESSED).set_index("sample_id", drop=False).loc[test.sample_ids]
    metrics, outputs = score_and_report(model, test, rows, params, paths.TEST_REPORTS)
    n_patients = int(rows["patient_key"].nunique())
    warning = few_patients_warning({"test": n_patients})
    metrics |= {"model_version": int(version), "split_hash": shash, "n_patients": n_patients,
                **({"warning": warning} if warning else {})}
    write_json(paths.TEST_METRICS, metrics)
    entry = ledger.record(name, version, shash, metrics, rescore_reason)
    log_test_run(client, params.base, name, version, shash, metrics, [*outputs.values(), paths.TEST_METRICS],
                 entry, scored_tag(shash))
    print(f"test: {name} v{version} on split {shash}: " +
          ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    if warning:
        print(f"test: WARNING: {warning}")
