"""Stage `split`: patient-level train/val/test, validated and checked for leakage (strict: refused)."""

from __future__ import annotations

import time

import pandas as pd

from medtune import paths
from medtune.config import Params
from medtune.data.fixed_split import fixed_from_file
from medtune.data.leakage import check_leakage, hash_image_rows, near_duplicate_pairs
from medtune.data.split import make_splits, split_hash, split_summary, strata_for, validate_splits, write_splits
from medtune.jsonio import write_json
from medtune.task import read_task


def run(params: Params) -> None:
    cfg = params.split
    index = pd.read_parquet(paths.INDEX)
    index = index.assign(stratum=strata_for(index, read_task(paths.TASK)))
    started = time.perf_counter()
    hashes = hash_image_rows(paths.IMAGES, index["row"].to_numpy())
    hash_seconds = time.perf_counter() - started
    use_file = cfg.fixed_file and cfg.method == "auto"
    fixed, unmatched = fixed_from_file(index, cfg.fixed_file, paths.MANIFEST) if use_file else (None, 0)
    # Near-duplicate pairs join their patients into one unit, so a grouped split cannot separate them.
    links = near_duplicate_pairs(hashes, cfg.near_duplicate_hamming)[:2]
    splits = make_splits(index, cfg, params.base.seed, fixed=fixed, links=links)
    if unmatched:
        splits["fixed_file_unmatched"] = unmatched
    validate_splits(splits, index)
    write_splits(splits, paths.SPLITS)
    write_json(paths.SPLIT_SUMMARY, summary := split_summary(splits))
    shash = split_hash(splits)
    print(f"split: method={splits['method']} " + ", ".join(
        f"{s} {summary['samples'][s]} images / {summary['patients'][s]} patients" for s in ("train", "val", "test"))
        + f"; hash={shash}", flush=True)
    for warning in summary["warnings"]:
        print(f"split: WARNING: {warning}")
    print("split: " + check_leakage(splits, index, hashes, cfg.near_duplicate_hamming, cfg.strict, paths.LEAKAGE,
                                    paths.NEAR_DUPLICATES, hash_seconds=hash_seconds, split_hash=shash))
