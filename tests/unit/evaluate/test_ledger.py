"""The test-once ledger: a second scoring is refused, a rescore needs a reason and is kept."""

from __future__ import annotations

import getpass
import re

import numpy as np
import pytest

from medtune.errors import DataError, TestSetLockedError
from medtune.evaluate.ledger import TestLedger


def test_ledger_refuses_second_scoring_and_names_the_time(tmp_path) -> None:
    ledger = TestLedger(tmp_path / "reports" / "test_ledger.json")
    ledger.check("cxr", 3, "abc123")
    first = ledger.record("cxr", 3, "abc123", {"auroc": np.float64(0.91)})
    reopened = TestLedger(tmp_path / "reports" / "test_ledger.json")  # state lives in the file
    expected = f"abc123 was already scored for cxr v3 at {first['scored_at']} by {getpass.getuser()}"
    with pytest.raises(TestSetLockedError, match=re.escape(expected)):
        reopened.check("cxr", "3", "abc123")
    with pytest.raises(TestSetLockedError, match="--rescore --reason"):
        reopened.record("cxr", 3, "abc123", {"auroc": 0.5})
    reopened.check("cxr", 4, "abc123")  # another version or split is a fresh scoring
    reopened.check("cxr", 3, "def456")
    assert reopened.entries() == [first] and first["metrics"] == {"auroc": 0.91}


def test_ledger_rescore_needs_reason_and_keeps_history(tmp_path) -> None:
    ledger = TestLedger(tmp_path / "ledger.json")
    first = ledger.record("cxr", 1, "abc", {"auroc": 0.9})
    for empty in ("", "   "):
        with pytest.raises(TestSetLockedError, match="non-empty --reason"):
            ledger.record("cxr", 1, "abc", {"auroc": 0.8}, rescore_reason=empty)
    second = ledger.record("cxr", 1, "abc", {"auroc": 0.8}, rescore_reason="labels corrected in 12 cases")
    assert ledger.entries() == [first, second]
    assert (first["rescore_reason"], second["rescore_reason"]) == (None, "labels corrected in 12 cases")
    with pytest.raises(TestSetLockedError):
        ledger.check("cxr", 1, "abc")


def test_ledger_unreadable_file_is_a_data_error(tmp_path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="test ledger is unreadable"):
        TestLedger(path).entries()
