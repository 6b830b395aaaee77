"""docs/architecture.md stays true: its layer tables are the import rules, its stage table is dvc.yaml,
and every path and `medtune.*` name it writes in backticks exists.

The rules are parsed from the page itself, so the page and the check cannot drift apart: change an
arrow in the code and this test names the row of the page to change with it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from tests._imports import ROOT, SRC, medtune_imports, module_file, resolve, source_modules, third_party_imports

DOC = ROOT / "docs/architecture.md"
TEXT = re.sub(r"^```.*?^```", "", DOC.read_text(), flags=re.S | re.M)  # fenced blocks are pictures
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
MAX_MODULE_LINES = 300
MAX_STAGE_LINES = 42  # "about 40" (STYLE.md): past it, logic has leaked out of the library
# Over the limit on purpose, each with the reason; an entry fails once its file is back under the limit.
OVERSIZE: dict[str, str] = {}  # path -> why it may exceed the limit for now
# Made at run time by MLflow, Ray or the HMAC helper, outside DVC: named in the doc, never in the repo.
RUNTIME = {"mlruns.db", "mlartifacts/", "ray_results/", ".medtune/hmac.key"}
EXTENSIONS = (".py", ".yaml", ".yml", ".md", ".toml", ".txt", ".json", ".csv", ".npy", ".parquet", ".pt", ".db",
              ".png", ".key")


def section(title: str) -> str:
    """The text of one `## title` section of the doc."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.S | re.M)
    assert match, f"{DOC.name}: no section '## {title}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row (header and separator rows included)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", cell)


def layer_rules() -> dict[str, tuple[str, set[str]]]:
    """Row module -> ("allow" | "deny", medtune modules) from the layer table."""
    rules = {}
    for cells in table_rows(section("Layers and their arrows")):
        names = ticked(cells[0])
        if len(cells) != 3 or len(names) != 1 or not names[0].startswith("medtune"):
            continue
        mode = "deny" if cells[1].startswith("anything") else "allow"
        rules[names[0]] = (mode, set(ticked(cells[1])))
    return rules


def library_rules() -> dict[str, set[str]]:
    """Library -> the medtune modules (or packages) that alone may import it."""
    rules = {}
    for cells in table_rows(section("Layers and their arrows")):
        names = ticked(cells[0])
        if len(cells) == 3 and len(names) == 1 and not names[0].startswith("medtune"):
            rules[names[0]] = set(ticked(cells[1]))
    return rules


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def row_for(module: str, rules: dict) -> str | None:
    """The most specific row covering a module; the `medtune` row covers only the package itself."""
    rows = [r for r in rules if (within(module, r) if r != "medtune" else module == r)]
    return max(rows, key=len, default=None)


MODULES = dict(source_modules())


def test_the_tables_parse_and_name_real_modules() -> None:
    layers, libraries = layer_rules(), library_rules()
    assert len(layers) >= 12 and {"ray", "mlflow", "pydicom"} <= set(libraries)
    named = set(layers) | {m for _, mods in layers.values() for m in mods} | set().union(*libraries.values())
    stale = sorted(m for m in named if module_file(m) is None)
    assert not stale, f"{DOC.name} names modules that do not exist: {stale}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layer_table(module: str) -> None:
    rules = layer_rules()
    row = row_for(module, rules)
    assert row is not None, f"{module} has no row in {DOC.name}'s layer table: place it in a layer"
    mode, listed = rules[row]
    bad = []
    for target in sorted(medtune_imports(MODULES[module], module) - {"medtune"}):
        own = within(target, row) and not any(within(row, d) for d in listed if mode == "deny")
        if mode == "allow":
            ok = own or any(within(target, a) for a in listed)
        else:
            ok = (own or not within(target, row)) and not any(within(target, d) for d in listed)
        if not ok:
            bad.append(target)
    assert not bad, f"{module} imports {bad}: not allowed by row `{row}` of {DOC.name}"


@pytest.mark.parametrize("library", sorted(library_rules()))
def test_libraries_stay_in_their_one_home(library: str) -> None:
    homes = library_rules()[library]
    users = sorted(m for m, path in MODULES.items() if library in third_party_imports(path, m)
                   and not any(within(m, home) for home in homes))
    assert not users, f"{users} import {library}; only {sorted(homes) or 'nothing'} may ({DOC.name})"


def test_no_import_cycles_and_no_private_cross_imports() -> None:
    graph = {m: {t for t in medtune_imports(p, m) if t != m and not within(m, t)} for m, p in MODULES.items()}
    private = [f"{m} imports {base}.{name}" for m, path in MODULES.items()
               for base, name in _from_imports(path) if name.startswith("_") and resolve(base) != m]
    assert not private, private
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:  # DFS: 1 = on the stack, 2 = done
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            assert state.get(target) != 1, f"import cycle: {' -> '.join(stack[stack.index(target):] + [target])}"
            if target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _from_imports(path: Path) -> list[tuple[str, str]]:
    return [(node.module, alias.name) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medtune")
            for alias in node.names]


def test_modules_stay_small_and_stages_thin() -> None:
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in MODULES.values()}
    big = sorted(f"{p} ({n} lines)" for p, n in sizes.items() if n > MAX_MODULE_LINES and p not in OVERSIZE)
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"
    healed = [p for p in OVERSIZE if sizes.get(p, 0) <= MAX_MODULE_LINES]
    assert not healed, f"{healed} are within {MAX_MODULE_LINES} lines now: drop them from OVERSIZE"
    fat = sorted(f"{p} ({n})" for p, n in sizes.items()
                 if p.startswith("src/medtune/pipeline/") and n > MAX_STAGE_LINES)
    assert not fat, f"stage modules over {MAX_STAGE_LINES} lines (move the logic into the library): {fat}"


def test_stage_contracts_match_dvc_yaml() -> None:
    rows = {cells[0]: cells for cells in table_rows(section("Stage contracts")) if cells[0] in STAGES}
    assert set(rows) == set(STAGES), f"{DOC.name} stage table lists {sorted(rows)}; dvc.yaml has {sorted(STAGES)}"
    for name, stage in STAGES.items():
        outs = [next(iter(o)) if isinstance(o, dict) else o
                for key in ("outs", "metrics", "plots") for o in stage.get(key, [])]
        expected = {"reads": {d for d in stage["deps"] if not d.startswith("src/")},
                    "writes": set(outs), "params": set(stage.get("params", []))}
        found = {"reads": set(ticked(rows[name][1])), "writes": set(ticked(rows[name][2])),
                 "params": set(ticked(rows[name][3]))}
        assert found == expected, f"{DOC.name}: stage {name} says {found}, dvc.yaml says {expected}"


def _pipeline_paths() -> set[str]:
    paths = set()
    for stage in STAGES.values():
        for key in ("deps", "outs", "metrics", "plots"):
            paths |= {next(iter(p)) if isinstance(p, dict) else p for p in stage.get(key, [])}
    return paths


def test_every_path_the_doc_names_exists() -> None:
    pipeline = _pipeline_paths()
    missing = []
    for token in set(ticked(TEXT)):
        if " " in token or re.search(r"[<>*{}:@()=]", token) or re.fullmatch(r"\.\w+", token):
            continue
        if "/" not in token and not token.endswith(EXTENSIONS):
            continue
        clean = token.rstrip("/")
        if token in RUNTIME or (ROOT / clean).exists():
            continue
        if any(clean == p or clean.startswith(p + "/") for p in pipeline):
            continue  # a stage's input or output, declared in dvc.yaml
        missing.append(token)
    assert not missing, f"{DOC.name} names paths that exist neither in the repo nor in dvc.yaml: {sorted(missing)}"


def test_every_medtune_name_the_doc_uses_exists() -> None:
    missing = []
    for token in sorted(set(ticked(TEXT))):
        if not re.fullmatch(r"medtune(\.[A-Za-z_]\w*)+", token):
            continue
        module = resolve(token)
        if module == "medtune" and token.count(".") == 1:
            continue  # an MLflow tag name (medtune.trial_params), not code
        rest = token.removeprefix(module or "").lstrip(".").split(".") if module else []
        if module is None or (rest != [""] and not _defines(module_file(module), rest)):
            missing.append(token)
    assert not missing, f"{DOC.name} names code that does not exist: {missing}"


def _defines(path: Path, names: list[str]) -> bool:
    """Whether a module defines names[0] at top level (and, for a class, the method names[1])."""
    body = ast.parse(path.read_text()).body
    for name in names:
        found = None
        for node in body:
            targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if getattr(node, "name", None) == name or name in targets:
                found = node
        if found is None:
            return False
        body = getattr(found, "body", [])
    return True


def test_sources_are_where_the_helpers_think() -> None:
    assert (SRC / "medtune/__init__.py").is_file() and module_file("medtune.pipeline.split") is not None
