"""Labels: a CSV keyed by relative path, SOPInstanceUID, PatientID or StudyInstanceUID, or class folders.

UIDs and PatientIDs in a labels file are PHI: they are replaced by their HMAC as soon as the file is
read, joined against the HMACs the readers compute, and never written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from medtune.choices import LABEL_KEYS, NEGATIVE_LABELS, SPLIT_NAMES
from medtune.data.files import scan_files
from medtune.data.phi import hash_id
from medtune.errors import ConfigError, DataError


def read_labels(
    labels: str, raw_dir: Path, path_column: str = "path", label_column: str = "label",
    key: str = "path", key_column: str = "", hmac_key: bytes = b"",
) -> pd.DataFrame:
    """Labels as a frame from a CSV or "folders": (path, label[, split]) or (key, label[, split]).

    "folders" means the first folder under raw_dir names the class. With key != "path", the `key`
    column holds the HMAC of the identifier (same key as ingest), never the identifier itself.
    """
    raw_dir = Path(raw_dir)
    if labels == "folders":
        rels = [f.relative_to(raw_dir) for f in scan_files(raw_dir)]
        rows = [(r.as_posix(), r.parts[0]) for r in rels if len(r.parts) > 1]
        return pd.DataFrame(rows, columns=["path", "label"], dtype=str)
    if key not in LABEL_KEYS:
        raise DataError(f"ingest.label_key: {key!r} is not one of {', '.join(LABEL_KEYS)}")
    id_column = path_column if key == "path" else (key_column or LABEL_KEYS[key])
    table = _read_csv(Path(labels), [id_column, label_column])
    ids = table[id_column].str.strip()
    if key == "path":
        out = pd.DataFrame({"path": [_relative(p, raw_dir) for p in ids]})
    else:
        if not hmac_key:
            raise ValueError("read_labels needs hmac_key to join on identifiers")
        out = pd.DataFrame({"key": [hash_id(v, hmac_key) if v else "" for v in ids]})
    del ids  # raw identifiers go no further than this function
    out["label"] = table[label_column].str.strip().to_numpy()
    if "split" in table.columns:
        out["split"] = table["split"].str.strip().to_numpy()
        bad = sorted(set(out["split"]) - set(SPLIT_NAMES))
        if bad:
            raise DataError(f"{labels}: column 'split' has {bad[0]!r}; allowed values are train, val, test")
    return _check_rows(out, labels, id_column, label_column)


def _check_rows(out: pd.DataFrame, labels: str, id_column: str, label_column: str) -> pd.DataFrame:
    """Refuse empty cells and a key listed twice with different labels; drop exact repeats."""
    join = out.columns[0]
    empty = out.index[(out[join] == "") | (out["label"] == "")]
    if len(empty):
        raise DataError(f"{labels}: row {empty[0] + 2} has an empty '{id_column}' or '{label_column}'")
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


def target_mapping(labels: Iterable[str], positive_label: str | None = None) -> dict[str, int]:
    """Label -> target: with two classes the negative is 0 and the positive 1; more classes in sorted order.

    The positive class is `positive_label` (ingest.positive_label) or, when unset, the one the names make
    obvious (the other is in choices.NEGATIVE_LABELS); otherwise ConfigError asks for the parameter. The
    sorted order alone would make `no_contrast` positive against `contrast`.
    """
    classes = sorted({str(label) for label in labels})
    where = "params.yaml: ingest.positive_label"
    if positive_label is not None and str(positive_label) not in classes:
        raise ConfigError(f"{where}: {str(positive_label)!r} is not a label in the labels file "
                          f"(labels: {', '.join(classes)})")
    if len(classes) != 2:
        if positive_label is not None and len(classes) > 2:
            raise ConfigError(f"{where}: applies to two classes, but there are {len(classes)} "
                              f"({', '.join(classes)}); leave it unset")
        return {c: i for i, c in enumerate(classes)}
    positive = str(positive_label) if positive_label is not None else obvious_positive(classes)
    if positive is None:
        raise ConfigError(f"{where}: labels {classes[0]!r} and {classes[1]!r} do not say which class is "
                          "positive; set it to one of them")
    return {c: int(c == positive) for c in classes}


def obvious_positive(classes: list[str]) -> str | None:
    """Of two labels, the one that is not a negative word when exactly one is (normal/abnormal -> abnormal)."""
    negative = [c.strip().lower() in NEGATIVE_LABELS for c in classes]
    return classes[negative.index(False)] if sum(negative) == 1 else None
