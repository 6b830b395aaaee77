"""Stage `test`: score the registered champion on the held-out test split, once per (version, split).

The only caller of `load_split(..., "test", allow_test=True)`; the ledger and a version tag are checked before
any test image is read. The threshold comes with the model (chosen on validation): nothing is fitted here."""

from __future__ import annotations

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_split, read_index
from medtune.data.split import load_valid_splits, split_hash
from medtune.evaluate.ledger import TestLedger, scored_tag, should_score
from medtune.evaluate.report import score_and_report, summary_lines
from medtune.jsonio import write_json
from medtune.tracking.registry import champion_version, load_registered
from medtune.tracking.runs import log_test_run
from medtune.tracking.sweep_log import open_run_client


def run(params: Params, rescore_reason: str | None = None, skip_scored: bool = False) -> None:
    name, client = params.registry.model_name, open_run_client(params.tracking_uri)
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)
    shash = split_hash(splits)
    champion = champion_version(client, name)
    version, ledger = str(champion.version), TestLedger(paths.LEDGER)
    if not should_score(ledger, name, version, shash, champion.tags, rescore_reason, skip_scored, paths.TEST_METRICS):
        print(f"test: {name} v{version} on split {shash} was already scored; its report in "
              f"{paths.TEST_REPORTS} stands (nothing rescored)")
        return
    # The exact version checked above (the alias may move meanwhile), through the medtune-models-only guard.
    model = load_registered(f"models:/{name}/{version}", params.tracking_uri).model
    test = load_split(paths.PROCESSED, splits, "test", allow_test=True)
    rows = read_index(paths.PROCESSED).set_index("sample_id", drop=False).loc[test.sample_ids]
    metrics, details, outputs = score_and_report(model, test, rows, params, paths.TEST_REPORTS)
    metrics |= {"model_version": int(version), "split_hash": shash}
    write_json(paths.TEST_METRICS, metrics)
    write_json(paths.TEST_DETAILS, details)
    entry = ledger.record(name, version, shash, metrics, rescore_reason)
    log_test_run(client, params.base, name, version, shash, metrics,
                 [*outputs.values(), paths.TEST_METRICS, paths.TEST_DETAILS], entry, scored_tag(shash))
    print("\n".join(f"test: {line}" for line in summary_lines(f"{name} v{version} on split {shash}", metrics,
                                                               details)))
