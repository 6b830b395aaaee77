"""Labels: a CSV keyed by relative path, SOPInstanceUID, PatientID or StudyInstanceUID, or class folders.

UIDs and PatientIDs in a labels file are PHI: they are replaced by their HMAC as soon as the file is
read, joined against the HMACs the readers compute, and never written anywhere.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import pandas as pd

from medtune.choices import LABEL_KEYS, SPLIT_NAMES
from medtune.data.files import scan_files
from medtune.data.phi import hash_id
from medtune.data.usercsv import read_user_csv
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
    raw_dir, columns = Path(raw_dir), label_columns(label_column)
    if labels == "folders":
        rels = [f.relative_to(raw_dir) for f in scan_files(raw_dir)]
        rows = [(r.as_posix(), r.parts[0]) for r in rels if len(r.parts) > 1]
        return pd.DataFrame(rows, columns=["path", columns[0]], dtype=str)
    if key not in LABEL_KEYS:
        raise DataError(f"ingest.label_key: {key!r} is not one of {', '.join(LABEL_KEYS)}")
    id_column = path_column if key == "path" else (key_column or LABEL_KEYS[key])
    table = read_user_csv(Path(labels), [id_column, *columns])  # indexed by line number
    ids = table[id_column]
    if key == "path":
        out = pd.DataFrame({"path": [_relative(p, raw_dir, f"{labels}: line {n}: '{id_column}'") if p else ""
                                     for n, p in ids.items()]}, index=table.index)
    else:
        if not hmac_key:
            raise ValueError("read_labels needs hmac_key to join on identifiers")
        out = pd.DataFrame({"key": [hash_id(v, hmac_key) if v else "" for v in ids]}, index=table.index)
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
    """Refuse an empty key and a key listed twice with different labels; drop exact repeats. An empty or
    malformed label cell is not refused here: its file is rejected bad_label (data.targets).

    `out` is indexed by line number; errors name lines, never the value (paths and IDs may be PHI).
    """
    join = out.columns[0]
    empty = out.index[out[join] == ""]
    if len(empty):
        raise DataError(f"{labels}: line {empty[0]} has an empty '{id_column}'")
    out = out.drop_duplicates()
    clash = out[join].duplicated(keep=False)
    if clash.any():
        first, second = out.index[out[join] == out.loc[clash, join].iloc[0]][:2]
        raise DataError(f"{labels}: lines {first} and {second} list the same '{id_column}' value more than once "
                        "with different values; keep one")
    return out.reset_index(drop=True)


def _relative(value: str, raw_dir: Path, where: str) -> str:
    """A labels-file path as normalised posix relative to raw_dir (absolute paths under raw_dir are
    accepted); a path outside raw_dir, absolute or through `..`, is one line naming where it is."""
    path = Path(value.replace("\\", "/"))
    if path.is_absolute():
        try:
            path = path.relative_to(raw_dir.resolve())
        except ValueError:
            raise DataError(f"{where}: an absolute path outside ingest.raw_dir ({raw_dir}); "
                            "give paths relative to it") from None
    normal = posixpath.normpath(path.as_posix())
    if normal == ".." or normal.startswith("../"):
        raise DataError(f"{where}: the path climbs out of ingest.raw_dir ({raw_dir}) with '..'")
    return normal
