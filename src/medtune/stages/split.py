"""Stage `split`: patient-level train/val/test, validated and checked for leakage."""

from __future__ import annotations

import pandas as pd

from medtune import paths
from medtune.config import Params
from medtune.data.split import leakage_report, make_splits, split_hash, validate_splits, write_splits
from medtune.jsonio import write_json


def run(params: Params) -> None:
    cfg = params.split
    index = pd.read_parquet(paths.INDEX)
    splits = make_splits(index, cfg.method, cfg.val_fraction, cfg.test_fraction, params.base.seed)
    validate_splits(splits, index)
    write_splits(splits, paths.SPLITS)
    leakage = leakage_report(splits, index)
    write_json(paths.LEAKAGE, leakage)
    counts = {name: len(splits[name]) for name in ("train", "val", "test")}
    print(f"split: method={splits['method']} {counts} hash={split_hash(splits)}; "
          f"exact duplicates across splits: {leakage['exact_duplicates_across_splits']}")
