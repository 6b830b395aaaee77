"""CSV files as people save them: Excel's UTF-8 BOM, `;` in locales with a decimal comma, CRLF, quoted
fields holding the delimiter. Every problem is one line naming the file and the line, never a traceback.

Values are never echoed in errors (a path or an ID in a labels file may be PHI); line numbers are.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from medtune.errors import DataError

DELIMITERS = (",", ";", "\t", "|")


def read_user_csv(path: Path, required: list[str]) -> pd.DataFrame:
    """All cells as stripped strings, indexed by the line each row starts on (the header is line 1).

    The delimiter is the first of DELIMITERS whose header holds every `required` column; blank lines
    are skipped; trailing empty cells (a trailing delimiter) are allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: labels file not found (or pass labels: folders)")
    text = _decode(path)
    delimiter = _delimiter(text, required)
    header, rows, lines = None, [], []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        start = 1
        for record in reader:
            if any(cell.strip() for cell in record):
                if header is None:
                    header = [cell.strip() for cell in record]
                else:
                    rows.append(_fit(record, len(header), path, start))
                    lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    if header is None:
        raise DataError(f"{path}: labels file is empty")
    for column in required:
        if column not in header:
            raise DataError(f"{path}: no column '{column}' (columns: {', '.join(header)})")
    if not rows:
        raise DataError(f"{path}: labels file has no rows")
    table = pd.DataFrame(rows, columns=header, index=pd.Index(lines, name="line"), dtype=str)
    return table.apply(lambda column: column.str.strip())


def _decode(path: Path) -> str:
    """The file as text: UTF-8, with or without a BOM; anything else is one line saying where it broke."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 (byte {data[exc.start]:#04x}); save the file as UTF-8 "
                        "(Excel: CSV UTF-8)") from None
    if "\x00" in text:
        raise DataError(f"{path}: contains NUL bytes; not a text CSV (UTF-16? save it as UTF-8)")
    return text


def _delimiter(text: str, required: list[str]) -> str:
    """The delimiter under which the header names every required column; failing that, the one that
    splits the header into most columns (so a missing-column error lists real column names)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    headers = {d: {cell.strip() for cell in next(csv.reader([first], delimiter=d), [])} for d in DELIMITERS}
    for delimiter, header in headers.items():
        if set(required) <= header:
            return delimiter
    return max(DELIMITERS, key=lambda d: len(headers[d]))


def _fit(record: list[str], width: int, path: Path, line: int) -> list[str]:
    """The record cut to the header's width when only empty cells are extra; else one line saying so."""
    if len(record) > width and not any(cell.strip() for cell in record[width:]):
        record = record[:width]
    if len(record) != width:
        raise DataError(f"{path}: line {line} has {len(record)} fields, the header has {width} "
                        "(quote a value that contains the delimiter)")
    return record
