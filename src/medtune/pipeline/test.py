"""Stage `test`: score the registered champion on the held-out test split, once.

This is the only caller of `load_split(..., "test", allow_test=True)`. Before loading a single test
image it checks two records of earlier scorings: the ledger file and a tag on the model version. The
threshold comes with the model (chosen on validation by promote); nothing is fitted here. One `medtune
test` runs at a time per project (a second refuses at once), so two racing runs cannot both score.
"""

from __future__ import annotations

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_split, read_index
from medtune.data.split import load_valid_splits, split_hash
from medtune.errors import DataError
from medtune.evaluate.ledger import TestLedger, scored_tag, should_score
from medtune.evaluate.report import score_and_report
from medtune.jsonio import read_json, write_json
from medtune.locks import LOCKS, exclusive
from medtune.tracking.registry import CHAMPION, alias_version, load_registered
from medtune.tracking.runs import log_test_run
from medtune.tracking.sweep_log import open_run_client


def run(params: Params, rescore_reason: str | None = None, skip_scored: bool = False) -> None:
    with exclusive(LOCKS / "test.lock", "`medtune test`"):
        _score(params, rescore_reason, skip_scored)


def _score(params: Params, rescore_reason: str | None, skip_scored: bool) -> None:
    name = params.registry.model_name
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)
    shash = split_hash(splits)
    client = open_run_client(params.tracking_uri)
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"no '{CHAMPION}' alias on registered model '{name}'; run the promote stage first")
    version, ledger = str(champion.version), TestLedger(paths.LEDGER)
    if not should_score(ledger, name, version, shash, champion.tags, rescore_reason, skip_scored, paths.TEST_METRICS):
        if scored_tag(shash) not in champion.tags:  # a run killed after the ledger, before MLflow: finish it
            entry = [e for e in ledger.entries() if (e["model_version"], e["split_hash"]) == (version, shash)][-1]
            files = sorted(p for p in paths.TEST_REPORTS.iterdir() if p.is_file() and p != paths.LEDGER
                           and not p.name.startswith("."))
            log_test_run(client, params.base, name, version, shash, read_json(paths.TEST_METRICS, "test metrics"),
                         files, entry, scored_tag(shash))
        print(f"test: {name} v{version} on split {shash} was already scored; its report in "
              f"{paths.TEST_REPORTS} stands (nothing rescored)")
        return
    # The exact version checked above (the alias could move meanwhile), through the guard that refuses
    # models medtune did not register.
    model = load_registered(f"models:/{name}/{version}", params.tracking_uri).model
    test = load_split(paths.PROCESSED, splits, "test", allow_test=True)
    rows = read_index(paths.PROCESSED).set_index("sample_id", drop=False).loc[test.sample_ids]
    metrics, outputs = score_and_report(model, test, rows, params, paths.TEST_REPORTS)
    metrics |= {"model_version": int(version), "split_hash": shash}
    write_json(paths.TEST_METRICS, metrics)
    entry = ledger.record(name, version, shash, metrics, rescore_reason)
    log_test_run(client, params.base, name, version, shash, metrics, [*outputs.values(), paths.TEST_METRICS],
                 entry, scored_tag(shash))
    print(f"test: {name} v{version} on split {shash}: " +
          ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
