"""The dependency rules of docs/ARCHITECTURE.md ("Dependency rules"), checked on the source.

Every module of the installed library and of scripts/ is parsed (never imported) and each of
its imports -- top-level or inside a function -- is checked against the layer it lives in.
A new upward import, a Ray import outside the Ray backend, or a library module importing an
experiment fails here with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder in the checkout -> installed package name
PACKAGES = {
    "primitives": "optsearch.primitives",
    "proxy_tasks": "optsearch.proxy_tasks",
    "evaluator": "optsearch.evaluator",
    "search": "optsearch.search",
    "scripts/cli": "optsearch.cli",
}

# A layer may import itself and the layers listed for it, nothing else of the project.
ALLOWED = {
    "optsearch.primitives": set(),
    "optsearch.proxy_tasks": {"optsearch.primitives"},
    "optsearch.evaluator": {"optsearch.primitives", "optsearch.proxy_tasks"},
    # The engine reaches the tasks only through the evaluator (suites, backends, fitness).
    "optsearch.search": {"optsearch.primitives", "optsearch.evaluator"},
    "optsearch.cli": {"optsearch.primitives", "optsearch.proxy_tasks", "optsearch.evaluator",
                      "optsearch.search"},
}
RAY_HOME = "optsearch.evaluator.ray_backend"


def library_modules():
    """(dotted module name, path) for every .py file of the installed library."""
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "programs" in path.relative_to(ROOT / folder).parts:
                continue  # optimizer program files: parsed by the language, never imported
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([package, *parts]), path


def imported_names(path: Path, module: str):
    """(line, absolute dotted name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:  # `from optsearch import search` imports a package
                yield node.lineno, f"{base}.{alias.name}"


def layer_of(name: str) -> str | None:
    for layer in ALLOWED:
        if name == layer or name.startswith(layer + "."):
            return layer
    return None


def violations():
    found = []
    for module, path in library_modules():
        own = layer_of(module)
        for line, name in imported_names(path, module):
            where = f"{path.relative_to(ROOT)}:{line}"
            top = name.split(".")[0]
            if top in ("scripts", "search", "primitives", "evaluator", "proxy_tasks"):
                found.append(f"{where}: imports {name} (not under the optsearch namespace)")
            if top == "ray" and module != RAY_HOME:
                found.append(f"{where}: imports ray outside {RAY_HOME}")
            target = layer_of(name)
            if target and target != own and target not in ALLOWED[own]:
                found.append(f"{where}: {own} may not import {target} ({name})")
    return found


def test_no_import_runs_against_the_layers():
    """primitives < proxy_tasks < evaluator < search < cli; Ray only in the Ray backend; the
    library never imports scripts/bench or scripts/research."""
    assert violations() == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule above is only as good as the parser: a planted upward import, inside a
    function and relative, must be reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..search import driver\n    import ray\n")
    names = {name for _, name in imported_names(bad, "optsearch.evaluator.bad")}
    assert "optsearch.search.driver" in names and "ray" in names
    assert layer_of("optsearch.search.driver") not in ALLOWED["optsearch.evaluator"]


@pytest.mark.parametrize("folder", ["scripts/bench", "scripts/research"])
def test_experiments_use_the_installed_names(folder):
    """Benchmarks and experiments run from a checkout and import the library as installed
    (optsearch.*), never through a sys.path patch."""
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "winners" in path.parts or "targets" in path.parts:
            continue  # program files
        text = path.read_text()
        if "sys.path.insert" in text or "sys.path.append" in text:
            bad.append(f"{path.relative_to(ROOT)}: patches sys.path")
        for line, name in imported_names(path, "scripts.x"):
            if name.split(".")[0] in ("search", "primitives", "evaluator", "proxy_tasks"):
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    assert bad == []


def test_installed_import_names_are_under_one_namespace():
    """Installing the project adds only `optsearch.*` to site-packages: a user's own `search/`
    or `scripts/` folder can never collide with ours."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["packages"] and all(p.startswith("optsearch.") for p in setup["packages"])
    assert all(p.startswith("optsearch.") for p in setup["package-dir"])
    assert set(setup["package-dir"].values()) == set(PACKAGES)
