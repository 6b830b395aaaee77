"""HMAC key handling and id hashing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from medtune.data.phi import ENV_VAR, hash_id, load_secret
from medtune.errors import DataError


def test_hash_id_is_deterministic_short_and_keyed() -> None:
    a = hash_id("PAT-001", b"key-one")
    assert a == hash_id("PAT-001", b"key-one")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != hash_id("PAT-002", b"key-one")
    assert a != hash_id("PAT-001", b"key-two")
    assert "PAT" not in a


def test_load_secret_generates_private_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = tmp_path / "nested" / "hmac.key"
    first = load_secret(path)
    assert path.is_file() and len(first) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == first


def test_env_var_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hmac.key"
    monkeypatch.delenv(ENV_VAR, raising=False)
    from_file = load_secret(path)
    monkeypatch.setenv(ENV_VAR, "from-the-environment")
    assert load_secret(path) == b"from-the-environment" != from_file


def test_file_key_can_be_moved_to_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = tmp_path / "hmac.key"
    from_file = load_secret(path)
    monkeypatch.setenv(ENV_VAR, path.read_text().strip())
    assert hash_id("x", load_secret(path)) == hash_id("x", from_file)


def test_empty_key_file_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = tmp_path / "hmac.key"
    path.write_text("")
    with pytest.raises(DataError, match="hmac.key"):
        load_secret(path)
