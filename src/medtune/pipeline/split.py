"""Stage `split`: patient-level train/val/test, validated and checked for leakage (strict: refused)."""

from __future__ import annotations

import time

import pandas as pd

from medtune import paths
from medtune.config import Params
from medtune.data.fixed_split import fixed_from_file
from medtune.data.leakage import hash_image_rows, leakage_problems, leakage_report, near_duplicate_pairs
from medtune.data.split import make_splits, split_hash, validate_splits, write_splits
from medtune.errors import DataError
from medtune.jsonio import write_json, write_table

NEAR_DUPLICATES = paths.LEAKAGE.parent / "near_duplicates.csv"


def run(params: Params) -> None:
    cfg = params.split
    index = pd.read_parquet(paths.INDEX)
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
    leakage, table = leakage_report(splits, index, hashes, cfg.near_duplicate_hamming)
    problems = leakage_problems(leakage)
    leakage |= {"hash_seconds": round(hash_seconds, 3), "split_hash": split_hash(splits),
                "strict": cfg.strict, "leaks": len(problems)}
    write_json(paths.LEAKAGE, leakage)
    write_table(table, NEAR_DUPLICATES)
    counts = {name: len(splits[name]) for name in ("train", "val", "test")}
    print(f"split: method={splits['method']} {counts} hash={split_hash(splits)}; "
          f"leakage: {'; '.join(problems) or 'none found'} (near-duplicate search "
          f"{leakage['near_duplicate_seconds']:.2f} s over {len(index)} images)")
    if problems and cfg.strict:
        raise DataError(f"split.strict: {'; '.join(problems)} (see {paths.LEAKAGE}, {NEAR_DUPLICATES})")
