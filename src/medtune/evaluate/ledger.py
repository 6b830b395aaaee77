"""The test-once ledger: the held-out test set is scored once per (model version, split hash), and every
score, including an overridden rescore, is kept."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medtune.errors import DataError, TestSetLockedError
from medtune.jsonio import write_json


def scored_tag(split_hash: str) -> str:
    """The model-version tag that records a scoring on this test split."""
    return f"medtune.test_scored.{split_hash}"


class TestLedger:
    """Append-only JSON record of test-set scorings; refuses a second scoring of the same model and split."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def entries(self) -> list[dict[str, Any]]:
        """Every scoring so far, oldest first."""
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
            return list(data["entries"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"{self.path}: test ledger is unreadable ({exc}); restore it from git/DVC"
            ) from None

    def _matches(self, model_name: str, model_version: Any, split_hash: str) -> list[dict[str, Any]]:
        key = (model_name, str(model_version), split_hash)
        return [
            e for e in self.entries() if (e["model_name"], str(e["model_version"]), e["split_hash"]) == key
        ]

    def check(self, model_name: str, model_version: Any, split_hash: str,
              version_tags: dict[str, str] | None = None) -> None:
        """Raise TestSetLockedError when this model version was already scored on this test split.

        `version_tags` (the registry's tags of that version) are the second record: a deleted ledger
        file does not unlock the test set while the version still carries its scored tag.
        """
        tag = scored_tag(split_hash)
        if version_tags and tag in version_tags:
            raise TestSetLockedError(f"test split {split_hash} was already scored for {model_name} v{model_version} "
                                     f"({version_tags[tag]}); the held-out test set is scored once")
        previous = self._matches(model_name, model_version, split_hash)
        if previous:
            last = previous[-1]
            raise TestSetLockedError(
                f"test split {split_hash} was already scored for {model_name} v{model_version} at "
                f"{last['scored_at']} by {last['user']}; the held-out test set is scored once. "
                "Use --rescore --reason '...' to override (recorded)."
            )

    def record(
        self,
        model_name: str,
        model_version: Any,
        split_hash: str,
        metrics: dict[str, Any],
        rescore_reason: str | None = None,
    ) -> dict[str, Any]:
        """Append a scoring; a repeat needs a non-empty rescore_reason and never replaces the earlier entry."""
        if rescore_reason is not None and not rescore_reason.strip():
            raise TestSetLockedError("a rescore of the held-out test set needs a non-empty --reason")
        if rescore_reason is None:
            self.check(model_name, model_version, split_hash)
        entry = {
            "model_name": model_name,
            "model_version": str(model_version),
            "split_hash": split_hash,
            "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "user": getpass.getuser(),
            "metrics": metrics,
            "rescore_reason": rescore_reason.strip() if rescore_reason else None,
        }
        self._write([*self.entries(), entry])
        return entry

    def latest(self, model_name: str, model_version: Any, split_hash: str) -> dict[str, Any] | None:
        """The last recorded scoring of this model version on this split, or None."""
        found = self._matches(model_name, model_version, split_hash)
        return found[-1] if found else None

    def _write(self, entries: list[dict[str, Any]]) -> None:
        # All or nothing (temp file, fsync, rename): an interrupted run never truncates the history.
        write_json(self.path, {"entries": entries}, sort_keys=False)


def should_score(ledger: TestLedger, model_name: str, version: str, split_hash: str, version_tags: dict[str, str],
                 rescore_reason: str | None, skip_scored: bool, metrics_path: Path) -> bool:
    """Whether the test stage may score this version: False (nothing to do) when it was scored and
    `skip_scored` finds its report on disk; TestSetLockedError when it was scored otherwise."""
    if rescore_reason is not None:
        return True
    try:
        ledger.check(model_name, version, split_hash, version_tags)
    except TestSetLockedError:
        if skip_scored and _report_is_for(metrics_path, version, split_hash):
            return False
        raise
    return True


def _report_is_for(metrics_path: Path, version: str, split_hash: str) -> bool:
    """Whether a metrics.json on disk is the recorded scoring of this model version on this split."""
    try:
        metrics = json.loads(Path(metrics_path).read_text())
    except (OSError, ValueError):
        return False
    return str(metrics.get("model_version")) == str(version) and metrics.get("split_hash") == split_hash

