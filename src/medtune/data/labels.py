"""Labels: a CSV keyed by relative path, SOPInstanceUID, PatientID or StudyInstanceUID, or class folders.

UIDs and PatientIDs in a labels file are PHI: they are replaced by their HMAC as soon as the file is
read, joined against the HMACs the readers compute, and never written anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medtune.choices import LABEL_KEYS, SPLIT_NAMES
from medtune.data.files import scan_files
from medtune.data.phi import hash_id
from medtune.errors import DataError


def read_labels(
    labels: str, raw_dir: Path, path_column: str = "path", label_column: str | tuple[str, ...] = "label",
    key: str = "path", key_column: str = "", hmac_key: bytes = b"",
) -> pd.DataFrame:
    """Labels as a frame from a CSV or "folders": (path | key, <label column(s)>[, split]), cells as strings.

    "folders" means the first folder under raw_dir names the class (column `label`). With key != "path",
    the `key` column holds the HMAC of the identifier (same key as ingest), never the identifier itself.
    Label cells are not judged here: data.targets decides per row whether a cell is a usable target.
    """
    columns = label_columns(label_column)
    raw_dir = Path(raw_dir)
    if labels == "folders":
        rels = [f.relative_to(raw_dir) for f in scan_files(raw_dir)]
        rows = [(r.as_posix(), r.parts[0]) for r in rels if len(r.parts) > 1]
        return pd.DataFrame(rows, columns=["path", columns[0]], dtype=str)
    if key not in LABEL_KEYS:
        raise DataError(f"ingest.label_key: {key!r} is not one of {', '.join(LABEL_KEYS)}")
    id_column = path_column if key == "path" else (key_column or LABEL_KEYS[key])
    table = _read_csv(Path(labels), [id_column, *columns])
    ids = table[id_column].str.strip()
    if (ids == "").any():
        raise DataError(f"{labels}: row {int(ids.index[ids == ''][0]) + 2} has an empty '{id_column}'")
    if key == "path":
        out = pd.DataFrame({"path": [_relative(p, raw_dir) for p in ids]})
    else:
        if not hmac_key:
            raise ValueError("read_labels needs hmac_key to join on identifiers")
        out = pd.DataFrame({"key": [hash_id(v, hmac_key) if v else "" for v in ids]})
    del ids  # raw identifiers go no further than this function
    for column in columns:
        out[column] = table[column].str.strip().to_numpy()
    if "split" in table.columns:
        out["split"] = table["split"].str.strip().to_numpy()
        bad = sorted(set(out["split"]) - set(SPLIT_NAMES))
        if bad:
            raise DataError(f"{labels}: column 'split' has {bad[0]!r}; allowed values are train, val, test")
    return _check_rows(out, labels, id_column)


def label_columns(label_column: str | tuple[str, ...] | list[str]) -> list[str]:
    """ingest.label_column as a list: one column, or several (one 0/1 column per finding: multilabel)."""
    return [label_column] if isinstance(label_column, str) else list(label_column)


def _check_rows(out: pd.DataFrame, labels: str, id_column: str) -> pd.DataFrame:
    """Refuse a key listed twice with different labels; drop exact repeats."""
    join = out.columns[0]
    out = out.drop_duplicates(ignore_index=True)
    clash = out.index[out[join].duplicated()]
    if len(clash):
        # For identifier keys the row number is shown, never the identifier.
        where = f"'{out.at[clash[0], join]}'" if join == "path" else f"a '{id_column}' value"
        raise DataError(f"{labels}: {where} is listed more than once with different values")
    return out


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a labels CSV as strings, or raise DataError naming the file and the missing column."""
    if not path.is_file():
        raise DataError(f"{path}: labels file not found (or pass labels: folders)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc.__class__.__name__})") from exc
    for column in columns:
        if column not in table.columns:
            raise DataError(f"{path}: no column '{column}' (columns: {', '.join(map(str, table.columns))})")
    if table.empty:
        raise DataError(f"{path}: labels file has no rows")
    return table


def _relative(value: str, raw_dir: Path) -> str:
    """A labels-file path as posix relative to raw_dir (absolute paths under raw_dir are accepted)."""
    path = Path(value.replace("\\", "/"))
    if path.is_absolute():
        try:
            path = path.relative_to(raw_dir.resolve())
        except ValueError:
            path = path.relative_to(path.anchor)  # not under raw_dir: stays unmatched, counted as orphan
    return path.as_posix().removeprefix("./")
