"""Labels files as they arrive from spreadsheets and other tools: each quirk is handled, or refused with
one line naming the file and the line, never a traceback and never the (possibly identifying) value."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtune.data.ingest import ingest
from medtune.data.labels import read_labels
from medtune.errors import DataError

EXPECTED = {"p1/a, b.dcm": "cat", "p2/c.dcm": "dog"}


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "labels.csv"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("data", [
    b'path,label\n"p1/a, b.dcm",cat\np2/c.dcm,dog\n',                      # quoted path holding a comma
    b'\xef\xbb\xbfpath,label\r\n"p1/a, b.dcm",cat\r\np2/c.dcm,dog\r\n',    # Excel "CSV UTF-8": BOM + CRLF
    b'path;label\n"p1/a, b.dcm";cat\np2/c.dcm;dog\n',                      # ';' (decimal-comma locales)
    b'\xef\xbb\xbf path ; label \r\np1/a, b.dcm;cat\r\n\r\n./p2/c.dcm;dog;\r\n',  # spaces, blank line, ./, trailing ;
    b'path\tlabel\np1/a, b.dcm\tcat\np2//c.dcm\tdog\n',                    # tab-separated, doubled slash
    b'path,label\n"p1/a, b.dcm",cat\np2/c.dcm,dog\np2/c.dcm,dog\n',        # an exact repeat is dropped
])
def test_wild_but_readable_files_give_the_same_labels(tmp_path: Path, data: bytes) -> None:
    out = read_labels(write(tmp_path, data), tmp_path)
    assert dict(zip(out["path"], out["label"])) == EXPECTED


@pytest.mark.parametrize(("data", "message"), [
    (b'path,label\np1/a.dcm,cat\np2/c.dcm,dog\np1/a.dcm,dog\n',
     "lines 2 and 4 list the same 'path' value more than once with different values"),
    (b'path,label\n./p1/a.dcm,cat\np1/x/../a.dcm,dog\n', "lines 2 and 3 list the same 'path'"),
    (b'path,label\np1/a.dcm,cat\n../../etc/passwd,dog\n', "line 3: 'path': the path climbs out of ingest.raw_dir"),
    (b'path,label\n/etc/passwd,dog\n', "line 2: 'path': an absolute path outside ingest.raw_dir"),
    (b'path,label\np1/a, b.dcm,cat\n', "line 2 has 3 fields, the header has 2 (quote a value"),
    (b'path,label\n"p1/a.dcm,cat\np2/c.dcm,dog\n', "not valid CSV"),
    (b'path,label\np1/caf\xe9.dcm,cat\n', "line 2: not UTF-8 (byte 0xe9)"),
    (b'\xff\xfep\x00a\x00t\x00h\x00', "not UTF-8"),
    (b'path,label\n\x00\x00,cat\n', "NUL bytes"),
    (b'\n\n', "labels file is empty"),
    (b'path;diagnosis\na;b\n', "no column 'label' (columns: path, diagnosis)"),
])
def test_broken_files_are_one_line_naming_the_line(tmp_path: Path, data: bytes, message: str) -> None:
    labels = write(tmp_path, data)
    with pytest.raises(DataError) as info:
        read_labels(labels, tmp_path)
    text = str(info.value)
    assert message in text and text.startswith(labels) and "\n" not in text
    assert "passwd" not in text and "p1/" not in text  # values (paths may carry PHI) are never echoed


def test_an_absolute_path_under_raw_dir_is_accepted(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    out = read_labels(write(tmp_path, f"path,label\n{raw.resolve()}/p2/c.dcm,dog\n".encode()), raw)
    assert out["path"].tolist() == ["p2/c.dcm"]


def test_the_wild_file_joins_real_dicom(tiny_cohort: tuple[Path, Path], hmac_key: bytes, tmp_path: Path) -> None:
    """A ';'-separated, BOM + CRLF copy of the cohort's labels gives the same manifest as the clean one."""
    raw, labels = tiny_cohort
    clean = ingest(raw, str(labels), hmac_key)
    rows = [line.split(",") for line in labels.read_text().splitlines()]
    wild = tmp_path / "wild.csv"
    wild.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(";".join(f'"./{c}"' if i == 0 and n else c
                                                             for i, c in enumerate(row))
                                                    for n, row in enumerate(rows)).encode() + b"\r\n")
    got = ingest(raw, str(wild), hmac_key)
    assert got.manifest.equals(clean.manifest) and len(got.manifest) == 20
