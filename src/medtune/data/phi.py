"""Patient identity: the only thing derived from PatientID that leaves ingest is an HMAC of it."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from medtune.errors import DataError

ENV_VAR = "MEDTUNE_HMAC_KEY"


def load_secret(path: Path = Path(".medtune/hmac.key")) -> bytes:
    """Return the HMAC key: $MEDTUNE_HMAC_KEY if set, else the key file, generated on first use.

    The file holds 64 hex characters and the key is their utf-8 bytes, so
    `export MEDTUNE_HMAC_KEY=$(cat .medtune/hmac.key)` reproduces the same patient keys elsewhere.
    """
    from_env = os.environ.get(ENV_VAR, "")
    if from_env:
        return from_env.encode("utf-8")
    path = Path(path)
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise DataError(f"{path}: HMAC key file is empty; delete it to generate a new key")
        return key.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL + mode 0o600: the secret is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key.encode("utf-8")


def hash_id(value: str, key: bytes) -> str:
    """HMAC-SHA256 of `value`, as 16 hex characters: stable per key, not reversible without it."""
    if not key:
        raise ValueError("hash_id needs a non-empty key")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


# Public and fixed on purpose: the same patients sort the same way in every clone, whatever its HMAC key.
ORDER_SALT = b"medtune/patient-order/v1"


def order_hash(value: str) -> str:
    """SHA-256 of `value` under the public ORDER_SALT, only to sort patients at ingest.

    Anyone can recompute it from a PatientID, so it never leaves ingest: the manifest keeps only the
    patient's rank among this cohort's patients (`patient_order`), which orders the seeded split.
    """
    return hashlib.sha256(ORDER_SALT + value.encode("utf-8")).hexdigest()
