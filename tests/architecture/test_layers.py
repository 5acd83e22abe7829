"""Layers that point one way, one composition root (issue 13; ADR 0033, docs/architecture.md).

The consolidated center, the replicated cluster and the national-scale work (Q1, Q3) all change
*how an installation is put together*; these tests keep that in one place:

* the import-linter contracts in ``pyproject.toml`` hold for ``src/jukinet`` — and a copy of the
  package with one import against the layers is caught (so the check can fail);
* no module of jukinet imports itself back through others (no cycle, whatever the layer);
* only :mod:`jukinet.bootstrap` opens the registers (``Registers(``);
* no module hides an import of jukinet inside a function;
* no module grows past :data:`MAX_LINES` (a grab-bag file is split by concern; ADR 0054).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "jukinet"
MIGRATIONS = SRC / "store" / "migrations"
#: a module longer than this is split by concern (issue 13: "anything past ~800 lines")
MAX_LINES = 800


def _lint_imports(src_dir: Path, config: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the package found in ``src_dir`` (a fresh process: grimp imports nothing
    of ours, it reads the files)."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True))")
    env = {**os.environ, "PYTHONPATH": str(src_dir)}
    return subprocess.run([sys.executable, "-c", code], cwd=config.parent, env=env, capture_output=True,
                          text=True, timeout=300)


def _modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if MIGRATIONS not in p.parents]


def test_q1_layers_point_one_way_import_contracts_hold():
    run = _lint_imports(ROOT / "src", ROOT / "pyproject.toml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_q1_an_import_against_the_layers_is_caught(tmp_path):
    """Break a contract on purpose — the pure domain imports the web application — and see it fail."""
    shutil.copytree(SRC, tmp_path / "src" / "jukinet", ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    records = tmp_path / "src" / "jukinet" / "domain" / "records.py"
    records.write_text(records.read_text(encoding="utf-8") + "\nimport jukinet.web.app  # noqa: E402,F401\n",
                       encoding="utf-8")
    run = _lint_imports(tmp_path / "src", tmp_path / "pyproject.toml")
    assert run.returncode != 0
    assert "BROKEN" in run.stdout
    assert "jukinet.domain.records -> jukinet.web.app" in run.stdout


def test_q1_no_import_cycles_among_modules():
    """Tarjan's strongly connected components over every module's imports (grimp's graph)."""
    graph = grimp.build_graph("jukinet", cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    assert len(graph.modules) > 100          # the whole package was read
    assert cycles == []


def test_q1_only_the_composition_root_opens_the_registers():
    """``grep -rn "Registers(" src/jukinet`` shows the composition root only."""
    found = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Registers":
                found.append(f"{p.relative_to(SRC)}:{node.lineno}")
    assert found and all(f.startswith("bootstrap.py:") for f in found), found


def test_q1_no_import_of_jukinet_is_hidden_inside_a_function():
    hidden = []
    for p in _modules():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jukinet"):
                    hidden.append(f"{p.relative_to(SRC)}:{node.lineno}")
                elif isinstance(node, ast.Import) and any(a.name.startswith("jukinet") for a in node.names):
                    hidden.append(f"{p.relative_to(SRC)}:{node.lineno}")
    assert hidden == []


def test_q1_every_room_is_placed_in_a_layer():
    """A new module or package at the top of jukinet fails the suite until the layers contract names it
    (an unplaced room would escape every contract)."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    placed = {name.strip() for line in layers for name in line.replace(":", "|").split("|")}
    rooms = {f"jukinet.{p.stem if p.is_file() else p.name}" for p in SRC.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert rooms - placed == set()
    assert placed - rooms == set()


def test_q1_no_module_grows_past_800_lines():
    """A file a reader cannot name in one phrase is split (issue 13): past :data:`MAX_LINES`, one module
    per concern — a service class as parts composed in its ``service.py`` (ADR 0054)."""
    modules = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    assert len(modules) > 100
    assert {m: n for m, n in modules.items() if n > MAX_LINES} == {}
