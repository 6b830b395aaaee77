"""dvc.yaml's deps cannot go stale: each stage lists every source file its code path imports.

`dvc repro` decides what to re-run from deps alone, so a stage module, or anything it imports, missing
from its deps would let `dvc repro` report "up to date" after a change that alters its results. The
closure follows every `import` in the AST (function-level ones too) from `medtune.pipeline.<stage>`
plus the CLI that calls it, and every package `__init__` on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests._imports import ROOT, imported_names, module_file

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def import_closure(module: str) -> set[str]:
    """Every medtune source file (relative to the repo) that importing `module` executes."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            name = ".".join(parts[:i])
            path = module_file(name)
            if path is not None and name not in seen:
                seen[name] = path
                todo.extend(n for n in imported_names(path, name) if n.split(".")[0] == "medtune")
    return {path.relative_to(ROOT).as_posix() for path in seen.values()}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def _src_deps(stage: dict) -> list[str]:
    return [dep for dep in stage.get("deps", []) if dep.startswith("src/")]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_its_import_closure(name: str) -> None:
    stage = STAGES[name]
    module = f"medtune.pipeline.{name}"
    assert module_file(module) is not None, f"stage {name}: no module {module}"
    assert stage["cmd"].split()[:2] == ["medtune", name], f"stage {name} should run `medtune {name}`"
    reached = import_closure(module) | {"src/medtune/cli.py"}
    deps = _src_deps(stage)
    missing = sorted(p for p in reached if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {name}: deps miss {missing}"
    stale = [dep for dep in deps if not any(_covered(p, [dep]) for p in reached)]
    assert not stale, f"dvc.yaml stage {name}: deps list {stale}, which its code never imports"


def test_closure_follows_lazy_and_package_imports() -> None:
    reached = import_closure("medtune.pipeline.test")
    assert "src/medtune/pipeline/test.py" in reached and "src/medtune/config/__init__.py" in reached
    assert "src/medtune/evaluate/gradcam.py" in reached  # via evaluate.report
    assert "src/medtune/data/dicom.py" not in reached  # the test stage never decodes DICOM
