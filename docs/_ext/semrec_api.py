"""The API reference, generated from the installed package, and the check that it is complete.

At ``builder-inited`` this writes ``api/generated/``: one page per public module (its docstring
and a table of its names) and one page per public class, function or constant (autodoc renders
the numpydoc docstring; classes show their inherited verbs too). Nothing is listed by hand, so
a new public name gets its page at the next build.

At ``build-finished`` it checks, from the Python domain's inventory of what was actually
documented, that every public name, every public method of a public class and every command
of the command line has a place in the site; a missing one is a warning, which ``-W`` (``make
docs``) turns into a failed build.

"Public" is the package's own rule, the one ``tests/test_docstrings.py`` applies: a module whose
dotted path has no part starting with ``_``; its names are ``__all__`` when it has one, else
the classes and functions defined in it whose names do not start with ``_``. A name that a
module re-exports from another public module (``semrec.ALS`` from ``semrec.als``) is documented
once, where it is defined, and linked from the re-exporting module's page.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
from dataclasses import dataclass
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "semrec"
# The command line's API is its commands: api/cli.md includes their --help (cli_page()).
CLI = "semrec.cli"
# Exceptions keep the members of the built-in exception classes out of their pages.
INHERITED_FROM_BUILTINS = "BaseException, Exception, ValueError, RuntimeError, object"


@dataclass(frozen=True)
class Name:
    module: str  # the public module that exposes it
    name: str
    obj: object

    @property
    def public(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def home(self) -> str:
        """Where the object is documented: its defining public module, else this one."""
        defined_in = getattr(self.obj, "__module__", None)
        if (
            (inspect.isclass(self.obj) or inspect.isfunction(self.obj))
            and defined_in != self.module
            and defined_in in _public_module_set()
        ):
            return f"{defined_in}.{self.obj.__qualname__}"
        return self.public

    @property
    def kind(self) -> str:
        if inspect.isclass(self.obj):
            return "exception" if issubclass(self.obj, BaseException) else "class"
        if inspect.isfunction(self.obj) or inspect.isbuiltin(self.obj):
            return "function"
        return "data"


def public_modules() -> list[str]:
    """Every public module of the installed package except the command line."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
        parts = info.name.split(".")
        if not any(part.startswith("_") for part in parts) and info.name != CLI:
            if not info.name.startswith(f"{CLI}."):
                names.append(info.name)
    return sorted(names)


_PUBLIC_MODULES: set[str] = set()


def _public_module_set() -> set[str]:
    if not _PUBLIC_MODULES:
        _PUBLIC_MODULES.update(public_modules())
    return _PUBLIC_MODULES


def public_names(module_name: str) -> list[Name]:
    """The names a public module exposes (``__all__``, else what it defines), modules aside."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        listed = [n for n in module.__all__ if not n.startswith("__")]
    else:
        listed = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module_name
        ]
    out = []
    for n in listed:
        obj = getattr(module, n)
        if not inspect.ismodule(obj):
            out.append(Name(module_name, n, obj))
    return out


def public_methods(cls: type) -> list[str]:
    """A class's public methods and properties, inherited ones included (builtins aside)."""
    names = []
    for klass in cls.__mro__:
        if klass.__module__ == "builtins":
            continue
        for n, value in vars(klass).items():
            if n.startswith("_") or n in names:
                continue
            if callable(value) or isinstance(value, (property, classmethod, staticmethod)):
                names.append(n)
    return names


# ---------------------------------------------------------------------------------------------
# Page generation


def _title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}\n"


def _object_page(entry: Name) -> str:
    module, _, name = entry.home.rpartition(".")
    directive = {
        "class": "autoclass",
        "exception": "autoexception",
        "function": "autofunction",
        "data": "autodata",
    }[entry.kind]
    lines = [
        _title(f"{module}.{name}"),
        f".. currentmodule:: {module}\n",
        f".. {directive}:: {name}",
    ]
    if entry.kind in ("class", "exception"):
        lines += [
            "   :members:",
            # properties and methods without a docstring of their own are public API too
            "   :undoc-members:",
            f"   :inherited-members: {INHERITED_FROM_BUILTINS}",
            "   :show-inheritance:",
        ]
    return "\n".join(lines) + "\n"


def _module_page(module_name: str, entries: list[Name]) -> str:
    lines = [
        _title(module_name),
        f".. automodule:: {module_name}\n   :no-members:\n",
        # The tables below name objects in full; no current module, or autosummary would ask
        # for names relative to it.
        ".. currentmodule:: None\n",
    ]
    depth = module_name.count(".") + 1
    submodules = [
        m for m in public_modules() if m.startswith(f"{module_name}.") and m.count(".") == depth
    ]
    if entries:
        lines += [".. rubric:: Names\n", ".. autosummary::\n   :nosignatures:\n"]
        lines += [f"   ~{entry.home}" for entry in entries]
        lines.append("")
    if submodules:
        lines += [".. rubric:: Modules\n", ".. autosummary::\n   :nosignatures:\n"]
        lines += [f"   {m}" for m in submodules]
        lines.append("")
    own = [e.home for e in entries if e.home == e.public]
    if own:
        lines += [".. toctree::\n   :hidden:\n"] + [f"   {h}" for h in own] + [""]
    return "\n".join(lines)


def write_pages(out_dir: Path) -> list[str]:
    """Writes the generated pages; returns the module pages in reading order."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    modules = public_modules()
    for module_name in modules:
        entries = public_names(module_name)
        (out_dir / f"{module_name}.rst").write_text(_module_page(module_name, entries))
        for entry in entries:
            if entry.home == entry.public:
                (out_dir / f"{entry.home}.rst").write_text(_object_page(entry))
    index = [_title("Modules"), ".. toctree::\n   :maxdepth: 1\n"]
    index += [f"   {m}" for m in modules]
    (out_dir / "index.rst").write_text("\n".join(index) + "\n")
    (out_dir / "cli_commands.md").write_text(cli_page())
    return modules


def cli_page() -> str:
    """Each command's ``--help``, exactly as the installed ``semrec`` prints it.

    Shown as text rather than parsed (the help texts are written for a terminal, not as
    reStructuredText), one section per command."""
    from semrec.cli import build_parser

    parser = build_parser()
    sections = [("semrec", parser)] + [
        (f"semrec {name}", sub) for name, sub in sorted(_subparsers(parser).choices.items())
    ]
    out = []
    for title, command_parser in sections:
        out += [f"## `{title}`\n", "```text", command_parser.format_help().rstrip(), "```\n"]
    return "\n".join(out)


def _subparsers(parser):
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")


def _on_builder_inited(app: Sphinx) -> None:
    write_pages(Path(app.srcdir) / "api" / "generated")


# ---------------------------------------------------------------------------------------------
# Completeness check


def missing_from(documented: set[str]) -> list[str]:
    """Public names, methods and CLI commands that have no entry in ``documented``."""
    missing = []
    for module_name in public_modules():
        if module_name not in documented:
            missing.append(module_name)
        for entry in public_names(module_name):
            if entry.home not in documented:
                missing.append(entry.public)
                continue
            if entry.kind == "class":
                missing += [
                    f"{entry.home}.{m}"
                    for m in public_methods(entry.obj)
                    if f"{entry.home}.{m}" not in documented
                ]
    return missing


def cli_commands() -> list[str]:
    from semrec.cli import build_parser

    return sorted(_subparsers(build_parser()).choices)


def _on_build_finished(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None:
        return
    documented = set(app.env.get_domain("py").objects)
    documented |= {name for name, *_ in app.env.get_domain("py").get_objects() if name}
    for name in missing_from(documented):
        logger.warning("public name without an API page: %s", name)
    cli_page = Path(app.outdir) / "api" / "cli.html"
    html = cli_page.read_text(encoding="utf-8") if cli_page.exists() else ""
    for command in cli_commands():
        if f"semrec {command}" not in html:
            logger.warning("command line: 'semrec %s' is not documented on api/cli", command)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _on_builder_inited, priority=400)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
