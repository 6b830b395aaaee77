"""Test helper: what each module under src/medtune imports, read from its AST (nothing is imported).

Shared by the dvc.yaml deps check (tests/unit/test_dvc_deps.py) and the layer check
(tests/unit/test_architecture.py). Function-level imports count: a lazy import still runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """The file that `import name` executes (a package's __init__), or None outside src/."""
    path = SRC / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def module_name(path: Path) -> str:
    """src/medtune/data/__init__.py -> medtune.data; src/medtune/cli.py -> medtune.cli."""
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def source_modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, file) of every module in the medtune package."""
    for path in sorted((SRC / "medtune").rglob("*.py")):
        yield module_name(path), path


def import_nodes(path: Path, module: str) -> Iterator[tuple[str, list[str]]]:
    """(absolute module, [imported names]) per import statement; `import a.b` gives ('a.b', [])."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            yield base, [alias.name for alias in node.names]


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name the file imports: the module, and module.name for each `from` name."""
    names: set[str] = set()
    for base, members in import_nodes(path, module):
        names |= {base} | {f"{base}.{member}" for member in members}
    return names


def resolve(name: str) -> str | None:
    """The longest prefix of a dotted medtune name that is a module: medtune.config.TrainCfg -> medtune.config."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if module_file(".".join(parts[:i])) is not None:
            return ".".join(parts[:i])
    return None


def medtune_imports(path: Path, module: str) -> set[str]:
    """The medtune modules a file imports (`from medtune import paths` -> medtune.paths)."""
    found = {resolve(n) for n in imported_names(path, module) if n.split(".")[0] == "medtune"}
    return {m for m in found if m is not None}


def third_party_imports(path: Path, module: str) -> set[str]:
    """Top-level names of the non-medtune libraries a file imports (stdlib included)."""
    return {base.split(".")[0] for base, _ in import_nodes(path, module)
            if base and base.split(".")[0] not in ("medtune", "__future__")}
