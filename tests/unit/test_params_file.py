"""params.yaml as a user reads it: every override its header suggests must change what a trial trains with.

A `train:` key that `search.space` also lists is sampled per trial, so overriding its `train:` value
changes nothing; the header's `train.` example must name a key no search overrides (the tune stage prints
which keys those are: tests/integration/test_pipeline.py checks the line). The overrides are applied the
way `dvc exp run -S` applies them (DVC's own function), then loaded as the stages load params.yaml.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from dvc.utils.hydra import apply_overrides

from medtune.config import load_params
from medtune.tune.outputs import overridden_train_keys

ROOT = Path(__file__).resolve().parents[2]
HEADER = "".join(line for line in (ROOT / "params.yaml").read_text().splitlines(keepends=True)
                 if line.startswith("#"))
EXAMPLES = re.findall(r"dvc exp run -S ([\w.]+=[^`\s]+)`", HEADER)


def test_header_shows_an_unsearched_train_key_and_a_search_range() -> None:
    keys = [example.split("=")[0] for example in EXAMPLES]
    assert any(k.startswith("train.") for k in keys) and any(k.startswith("search.space.") for k in keys), EXAMPLES
    searched = overridden_train_keys(load_params(ROOT / "params.yaml"))
    vain = [k for k in keys if k.startswith("train.") and k.removeprefix("train.") in searched]
    assert not vain, f"params.yaml header: {vain} are sampled by search.space, so no trial would use them"


def test_each_header_override_changes_the_loaded_params(tmp_path: Path) -> None:
    before = load_params(ROOT / "params.yaml")
    for example in EXAMPLES:
        path = shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
        apply_overrides(str(path), [example])  # what `dvc exp run -S` does to params.yaml
        after = load_params(path)
        assert after != before, f"`dvc exp run -S {example}` did not change the loaded params"
        assert after.search.space == before.search.space or example.startswith("search.space.")


def test_the_searched_keys_include_lr() -> None:
    assert "lr" in overridden_train_keys(load_params(ROOT / "params.yaml"))  # the old example, overridden in vain
