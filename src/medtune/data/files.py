"""Files on disk: the scan every stage agrees on, and relative paths kept only as HMACs (hash_paths)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from medtune.data.phi import hash_id
from medtune.errors import DataError


def scan_files(raw_dir: Path) -> list[Path]:
    """Every regular file under raw_dir, recursively and sorted; hidden files and DICOMDIR are skipped."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: image folder does not exist")
    files = []
    for path in raw_dir.rglob("*"):
        parts = path.relative_to(raw_dir).parts
        if any(part.startswith(".") for part in parts) or path.name == "DICOMDIR":
            continue
        if path.is_file():
            files.append(path)
    return sorted(files)


def stored_path(rel: str, key: bytes, hash_paths: bool) -> str:
    """How a relative path is written to every output: as is, or (hash_paths) as its HMAC, so folder
    names that carry patient names or MRNs never leave ingest."""
    return hash_id(f"path:{rel}", key) if hash_paths else rel


def resolve_stored_paths(raw_dir: Path, stored: Iterable[str], key: bytes) -> list[str]:
    """The relative paths behind HMAC-ed manifest paths, found by hashing every path under raw_dir again.

    Needs the key ingest used (MEDTUNE_HMAC_KEY or .medtune/hmac.key); a path that no file under raw_dir
    hashes to is one line naming the manifest row, never the path.
    """
    raw_dir = Path(raw_dir)
    by_hash = {stored_path(rel, key, True): rel
               for rel in (f.relative_to(raw_dir).as_posix() for f in scan_files(raw_dir))}
    out = []
    for row, value in enumerate(stored):
        if value not in by_hash:
            raise DataError(f"manifest row {row}: no file under {raw_dir} has this hashed path (ingest.hash_paths); "
                            "the files changed or the HMAC key differs from ingest's: re-run ingest")
        out.append(by_hash[value])
    return out
