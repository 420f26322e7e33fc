"""The hand-written stubs of the compiled modules (cpp/bindings/stubs/*.pyi) name the functions,
classes and parameters the modules really have: the reference is the signature line pybind11
writes at the top of each function's docstring."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

STUBS = Path(__file__).resolve().parents[1] / "cpp" / "bindings" / "stubs"


def parameter_names(doc: str) -> list[str] | None:
    """``f(a: int, b: numpy.ndarray[...]) -> ...`` -> ["a", "b"]; None for ``(*args, **kwargs)``
    (a function bound with py::args, whose parameters pybind11 does not list)."""
    inside = doc.strip().splitlines()[0].split("(", 1)[1]
    names, depth, current = [], 0, ""
    for ch in inside:
        if ch == ")" and depth == 0:
            break
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += ch
    names = [n.split(":")[0].strip() for n in [*names, current] if n.strip()]
    return None if any(n.startswith("*") for n in names) else names


def stub_functions(path: Path) -> list[tuple[str | None, ast.FunctionDef]]:
    """(class name or None, function) for every function and method of a stub, properties out."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            found.append((None, node))
        elif isinstance(node, ast.ClassDef):
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and not any(
                    getattr(d, "id", None) == "property" for d in f.decorator_list
                ):
                    found.append((node.name, f))
    return found


def stub_names(path: Path) -> dict[str | None, set[str]]:
    """What a stub declares: its top-level names (key None) and each class's members (methods,
    properties and annotated attributes)."""

    def names(body: list[ast.stmt]) -> set[str]:
        found = set()
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                found.add(node.target.id)
        return found

    tree = ast.parse(path.read_text())
    declared: dict[str | None, set[str]] = {None: names(tree.body)}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            declared[node.name] = names(node.body)
    return declared


def compiled_module(module: str | None):
    if module is None:
        from semrec._native import core

        return core
    return importlib.import_module(module)


MODULES = pytest.mark.parametrize(
    ("stub", "module"), [("_core.pyi", None), ("_text.pyi", "semrec._text")]
)


@MODULES
def test_stubs_declare_every_public_name_of_the_compiled_module(stub: str, module: str | None):
    compiled = compiled_module(module)
    declared = stub_names(STUBS / stub)
    missing = [n for n in dir(compiled) if not n.startswith("_") and n not in declared[None]]
    for name in declared[None]:
        cls = getattr(compiled, name, None)
        if isinstance(cls, type) and name in declared:
            members = [m for m in vars(cls) if not m.startswith("_")]
            missing += [f"{name}.{m}" for m in members if m not in declared[name]]
    assert not missing, f"{stub} lacks: {', '.join(missing)}"


@MODULES
def test_stub_parameters_match_the_compiled_module(stub: str, module: str | None) -> None:
    compiled = compiled_module(module)
    checked, wrong = 0, []
    for owner, fn in stub_functions(STUBS / stub):
        obj = getattr(getattr(compiled, owner), fn.name) if owner else getattr(compiled, fn.name)
        real = parameter_names(obj.__doc__)
        if real is None:
            continue
        names = [a.arg for a in (*fn.args.args, *fn.args.kwonlyargs)]
        if owner:
            names, real = names[1:], real[1:]  # self
        checked += 1
        if names != real:
            wrong.append(f"{owner + '.' if owner else ''}{fn.name}: stub {names}, module {real}")
    assert checked > 5
    assert not wrong, "\n".join(wrong)
