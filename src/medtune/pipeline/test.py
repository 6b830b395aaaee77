"""Stage `test`: score the registered champion on the held-out test split, once per (version, split).

The only caller of `load_split(..., "test", allow_test=True)`; the ledger and a version tag are checked before
any test image is read; the threshold came with the model. One run at a time per project (a second refuses)."""

from __future__ import annotations

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_split, read_index
from medtune.data.split import load_valid_splits, split_hash
from medtune.evaluate.ledger import TestLedger, scored_tag, should_score
from medtune.evaluate.report import report_files, score_and_report, summary_lines
from medtune.jsonio import write_json
from medtune.locks import one_at_a_time
from medtune.tracking.loading import load_registered
from medtune.tracking.registry import champion_version
from medtune.tracking.runs import finish_test_run, log_test_run
from medtune.tracking.sweep_log import open_run_client


@one_at_a_time("test", "`medtune test`")
def run(params: Params, rescore_reason: str | None = None, skip_scored: bool = False) -> None:
    name, client = params.registry.model_name, open_run_client(params.tracking_uri)
    shash = split_hash(splits := load_valid_splits(paths.SPLITS, paths.PROCESSED))
    champion = champion_version(client, name)
    version, ledger, tag = str(champion.version), TestLedger(paths.LEDGER), scored_tag(shash)
    if not should_score(ledger, name, version, shash, champion.tags, rescore_reason, skip_scored, paths.TEST_METRICS):
        finish_test_run(client, params.base, name, version, shash, ledger.latest(name, version, shash),
                        paths.TEST_METRICS, report_files(paths.TEST_REPORTS, paths.LEDGER), tag)
        return print(f"test: {name} v{version} on split {shash} was already scored; its report stands")
    # The exact version checked above (the alias may move meanwhile), through the medtune-models-only guard.
    model = load_registered(f"models:/{name}/{version}", params.tracking_uri).model
    test = load_split(paths.PROCESSED, splits, "test", allow_test=True)
    metrics, details, outputs = score_and_report(model, test, read_index(paths.PROCESSED), params, paths.TEST_REPORTS)
    write_json(paths.TEST_METRICS, metrics := metrics | {"model_version": int(version), "split_hash": shash})
    write_json(paths.TEST_DETAILS, details)
    entry = ledger.record(name, version, shash, metrics, rescore_reason)
    log_test_run(client, params.base, name, version, shash, metrics,
                 [*outputs.values(), paths.TEST_METRICS, paths.TEST_DETAILS], entry, tag)
    print("\n".join(f"test: {line}" for line in summary_lines(f"{name} v{version} on split {shash}", metrics,
                                                               details)))
