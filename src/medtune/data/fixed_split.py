"""Fixed splits honoured as given: a `split` column in the labels, or a split file (split.fixed_file).

A benchmark's public train/val/test is what its published numbers were measured on; re-splitting it would
make the test numbers incomparable, so it is kept exactly and only checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from medtune.choices import SPLIT_NAMES
from medtune.errors import DataError


def fixed_split(index: pd.DataFrame) -> dict[str, list[str]]:
    """Honour the index's `split` column exactly (an official split such as MedMNIST's)."""
    if "split" not in index.columns:
        raise DataError("index has no 'split' column: the labels file gave no official split")
    if "sample_id" not in index.columns:
        raise DataError("index is missing column(s) sample_id; re-run the preprocess stage")
    bad = index.loc[~index["split"].isin(SPLIT_NAMES), "split"]
    if len(bad):
        values = ", ".join(sorted({repr(v) for v in bad}))
        raise DataError(f"split column has {len(bad)} value(s) not in train/val/test: {values}")
    splits = {s: sorted(index.loc[index["split"] == s, "sample_id"].astype(str)) for s in SPLIT_NAMES}
    empty = [s for s in SPLIT_NAMES if not splits[s]]
    if empty:
        raise DataError(f"split column gives no samples to {', '.join(empty)}; every split needs some")
    return splits


def read_fixed_file(path: Path) -> dict[str, str]:
    """Key (sample_id or path) -> split from a CSV (`split` + `sample_id` or `path` column) or a JSON
    object ({"train": [...], "val": [...], "test": [...]} or {key: split})."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"params.yaml: split.fixed_file: file '{path}' does not exist")
    if path.suffix.lower() == ".json":
        return _read_json(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    key = next((c for c in ("sample_id", "path") if c in table.columns), None)
    if key is None or "split" not in table.columns:
        raise DataError(f"{path}: a fixed split CSV needs a 'split' column and a 'sample_id' or 'path' column")
    mapping = dict(zip(table[key].str.strip(), table["split"].str.strip()))
    if len(mapping) != len(table):
        raise DataError(f"{path}: {len(table) - len(mapping)} duplicate {key}(s)")
    return mapping


def _read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and set(SPLIT_NAMES) <= set(data) and all(isinstance(data[s], list) for s in SPLIT_NAMES):
        mapping: dict[str, str] = {}
        for s in SPLIT_NAMES:
            for key in data[s]:
                if str(key) in mapping:
                    raise DataError(f"{path}: {key!r} is listed in both {mapping[str(key)]} and {s}")
                mapping[str(key)] = s
        return mapping
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return {str(k): v.strip() for k, v in data.items()}
    raise DataError(f'{path}: expected {{"train": [...], "val": [...], "test": [...]}} or {{key: split}}')


def fixed_assignment(index: pd.DataFrame, mapping: dict[str, str], sample_paths: pd.Series | None = None,
                     source: str = "split.fixed_file") -> tuple[pd.Series, int]:
    """One split name per index row, looked up by sample_id, else by the sample's path; and the count of
    file entries that match no sample (files ingest rejected, say). Every index sample must be covered."""
    ids = index["sample_id"].astype(str)
    split = ids.map(mapping)
    if sample_paths is not None:
        split = split.fillna(ids.map(sample_paths.astype(str)).map(mapping))
    missing = ids[split.isna()]
    if len(missing):
        raise DataError(f"{source}: sample {missing.iloc[0]!r} is not in the file "
                        f"({len(missing)} of {len(ids)} samples missing); list every sample by sample_id or path")
    known = set(ids) | (set(sample_paths.astype(str)) if sample_paths is not None else set())
    return split.rename("split"), sum(1 for key in mapping if key not in known)


def fixed_from_file(index: pd.DataFrame, fixed_file: str, manifest: Path) -> tuple[pd.Series, int]:
    """split.fixed_file's assignment per index row, and how many of its entries matched no sample.

    Entries may name sample ids or the labels file's relative paths (looked up in the ingest manifest).
    """
    mapping = read_fixed_file(Path(fixed_file))
    sample_paths = None
    if Path(manifest).is_file():
        frame = pd.read_parquet(manifest, columns=["sample_id", "path"])
        sample_paths = frame.set_index(frame["sample_id"].astype(str))["path"]
    return fixed_assignment(index, mapping, sample_paths)

