"""The architecture holds: no module imports one above it (README's layer table), and no
function hides an import (a cycle or an upward import tucked inside a function fails too)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pinnsketch"


def _layers() -> dict[str, int]:
    """``{top-level module: layer}`` from the README's Architecture table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    layers = {}
    for layer, names in re.findall(r"^\|\s*(\d+)\s*\|\s*([^|]+)\|", section, flags=re.M):
        for name in names.replace("`", "").split(","):
            layers[name.strip().removesuffix(".py").removesuffix("/")] = int(layer)
    return layers


def _top(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pinnsketch":
        parts = node.module.split(".")
        return [parts[1] if len(parts) > 1 else "__init__"]
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] if "." in a.name else "__init__"
                for a in node.names if a.name.split(".")[0] == "pinnsketch"]
    return []


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    layers = _layers()
    missing = sorted({_top(p) for p in MODULES} - set(layers))
    assert len(layers) >= 10 and not missing, f"modules without a layer in README: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_run_down(path):
    layers, top = _layers(), _top(path)
    tree = ast.parse(path.read_text())
    upward = [(node.lineno, name) for node in ast.walk(tree) for name in _imported(node)
              if name != top and (layers[name] > layers[top]
                                  or (layers[name] == layers[top] and name != top))]
    assert not upward, f"{top} (layer {layers[top]}) imports from above or beside it: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_local_imports(path):
    tree = ast.parse(path.read_text())
    hidden = [sub.lineno for node in ast.walk(tree)
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))]
    assert not hidden, f"imports inside functions at lines {hidden}"


def test_the_check_catches_an_upward_import(tmp_path):
    """The check itself can fail: a planted upward import inside a function is seen."""
    planted = ast.parse("def f():\n    from pinnsketch.api import train\n")
    layers = _layers()
    names = [name for node in ast.walk(planted) for name in _imported(node)]
    assert names == ["api"] and layers["api"] > layers["config"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 420, "split this module"


def test_every_package_folder_is_a_regular_package():
    """A folder without ``__init__.py`` imports from a source checkout (as a namespace
    package) but is left out of a built wheel."""
    folders = {p.parent for p in MODULES}
    assert sorted(str(f.relative_to(ROOT)) for f in folders
                  if not (f / "__init__.py").is_file()) == []
