"""The package's layout rules that a reader relies on, checked on the source.

* No module reads or writes another module's ``_``-names: a private name (``_x``) defined in
  one module of ``python/semrec`` is used only there (``self._x`` of a subclass using its base
  class's hooks included: that is the class's own protected API). Modules meant to be shared
  inside the package are private modules with public names (``semrec._validation.number``).
* No Python module is over ~600 lines.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "semrec"
MAX_LINES = 600


def modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in PACKAGE.rglob("*.py")}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_names(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, assignments (attributes included)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if not isinstance(node, ast.ClassDef):
                names.update(a.arg for a in (*node.args.args, *node.args.kwonlyargs))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return names


def is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    if (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir():
        return True
    try:  # a compiled extension module
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


# Known exceptions, owned by another scope and reported there (BOARD): none left.
ALLOWED: set[str] = set()


def violations() -> list[str]:
    trees = modules()
    own = {path: defined_names(tree) for path, tree in trees.items()}
    everywhere = set().union(*own.values())
    found = []
    for path, tree in trees.items():
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("semrec"):
                for alias in node.names:
                    dotted = f"{node.module}.{alias.name}"
                    if private(alias.name) and not is_module(dotted):
                        if f"{where} imports {dotted}" not in ALLOWED:
                            found.append(f"{where}:{node.lineno} imports {dotted}")
            elif isinstance(node, ast.Attribute) and private(node.attr):
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                    continue  # the object's own (or inherited) protected API
                if isinstance(base, ast.Call) and getattr(base.func, "id", "") == "super":
                    continue
                if node.attr in everywhere and node.attr not in own[path]:
                    found.append(f"{where}:{node.lineno} uses .{node.attr} of another module")
    return found


def test_no_module_reaches_into_another_modules_private_names() -> None:
    assert violations() == []


def test_the_check_catches_a_reach_into_a_private_name(tmp_path: Path) -> None:
    tree = ast.parse("from semrec.als import _insert\nx = model._histories\n")
    imported = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert private(imported[0].names[0].name) and not is_module("semrec.als._insert")
    assert is_module("semrec._validation") and is_module("semrec.cli._args")
    attrs = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    assert attrs == ["_histories"] and "_histories" in defined_names(modules()[PACKAGE / "als.py"])


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
