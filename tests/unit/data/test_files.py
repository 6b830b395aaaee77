"""ingest.hash_paths: folder and file names that carry patient names or MRNs are written only as HMACs,
the labels join still works, and preprocess finds the files again with the same key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from medtune.data.files import resolve_stored_paths, stored_path
from medtune.data.ingest import ingest
from medtune.data.preprocess import preprocess
from medtune.errors import DataError

MRN = "MRN4417023"


def phi_tree(tiny_cohort: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """The tiny cohort moved under folders named like a PACS export: 'DOE^JANE_<MRN>/<MRN>_<n>.dcm'."""
    raw, labels = tiny_cohort
    out = tmp_path / "phi_raw"
    rows = ["path,label"]
    for n, line in enumerate(labels.read_text().splitlines()[1:]):
        rel, label = line.split(",")
        new = f"DOE^JANE_{MRN}{n // 2}/{MRN}_{n}.dcm"
        (out / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw / rel, out / new)
        rows.append(f"{new},{label}")
    (out / "notes").mkdir()
    (out / "notes" / f"{MRN}_report.txt").write_text("not an image\n")
    phi_labels = tmp_path / "phi_labels.csv"
    phi_labels.write_text("\n".join(rows) + "\n")
    return out, phi_labels


def test_paths_are_stored_as_hmacs_and_the_join_still_works(tiny_cohort: tuple[Path, Path], tmp_path: Path,
                                                              hmac_key: bytes) -> None:
    raw, labels = phi_tree(tiny_cohort, tmp_path)
    plain = ingest(raw, str(labels), hmac_key)
    hashed = ingest(raw, str(labels), hmac_key, hash_paths=True)
    assert len(hashed.manifest) == len(plain.manifest) == 20 and len(hashed.rejected) == 1
    for frame in (hashed.manifest, hashed.rejected):
        assert all(re.fullmatch("[0-9a-f]{16}", p) for p in frame["path"])
    text = hashed.manifest.to_csv() + hashed.rejected.to_csv() + str(hashed.fingerprint)
    assert MRN not in text and "DOE" not in text
    assert MRN in plain.manifest.to_csv()  # the search can fail: without hash_paths the MRN is there
    # Everything but the path is what a plain ingest writes.
    cols = [c for c in plain.manifest.columns if c != "path"]
    by_id = plain.manifest.set_index("sample_id")[cols[1:]].sort_index()
    assert by_id.equals(hashed.manifest.set_index("sample_id")[cols[1:]].sort_index())


def test_preprocess_finds_the_files_behind_the_hashes(tiny_cohort: tuple[Path, Path], tmp_path: Path,
                                                      hmac_key: bytes) -> None:
    raw, labels = phi_tree(tiny_cohort, tmp_path)
    hashed = ingest(raw, str(labels), hmac_key, hash_paths=True).manifest
    plain = ingest(raw, str(labels), hmac_key).manifest
    resolved = hashed.assign(path=resolve_stored_paths(raw, hashed["path"], hmac_key))
    assert [stored_path(p, hmac_key, True) for p in resolved["path"]] == hashed["path"].tolist()
    preprocess(resolved, raw, tmp_path / "a.npy", 16)
    preprocess(plain.set_index("sample_id").loc[hashed["sample_id"]].reset_index(), raw, tmp_path / "b.npy", 16)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    with pytest.raises(DataError, match=r"^manifest row 0: no file under .* has this hashed path") as info:
        resolve_stored_paths(raw, hashed["path"], b"another-key")
    assert MRN not in str(info.value).replace(str(raw), "")
