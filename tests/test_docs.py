"""The documentation site's promises that hold without building it (``make docs`` builds it).

* Every Python example on a docs page is an executed ``{code-cell}``: a plain ``python`` fence
  would be shown without ever running, and could rot.
* The API generator (``docs/_ext/semrec_api.py``) writes a page for every public name found by
  an independent walk of the package (the one ``tests/test_docstrings.py`` uses, plus each
  public package's ``__all__``). The build itself checks the rendered inventory as well.
* The README is the front door: at most 12 KB, its relative links resolve, and it links every
  guide.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest
from test_docstrings import public_modules, public_objects

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
FENCE = re.compile(r"^(```+|~~~+)\s*\{?([\w-]*)\}?", re.MULTILINE)


def doc_pages() -> list[Path]:
    pages = [p for p in DOCS.rglob("*.md") if "_build" not in p.parts]
    return [*sorted(pages), ROOT / "benchmarks" / "README.md"]


def test_every_python_example_in_the_docs_runs_at_build_time() -> None:
    plain = []
    for page in doc_pages():
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            if match.group(2) in ("python", "py", "python3", "ipython", "pycon"):
                line = page.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
                plain.append(f"{page.relative_to(ROOT)}:{line}")
    assert not plain, f"python examples that the build would not run (use {{code-cell}}): {plain}"


def test_executed_pages_declare_the_kernel() -> None:
    for page in doc_pages():
        text = page.read_text(encoding="utf-8")
        if "```{code-cell}" in text:
            assert text.startswith("---\nfile_format: mystnb\n"), f"{page}: no mystnb front matter"


def _generator():
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        return importlib.import_module("semrec_api")
    finally:
        sys.path.remove(str(DOCS / "_ext"))


def test_every_public_name_gets_an_api_page(tmp_path) -> None:
    generator = _generator()
    generator.write_pages(tmp_path)
    pages = {p.stem for p in tmp_path.glob("*.rst")}
    expected = {name for name, _ in public_objects()}  # defined in a public module
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        expected.add(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or name.startswith("__"):
                continue
            home = getattr(obj, "__module__", module_name)
            if home.split(".")[-1].startswith("_") or not callable(obj):
                home = module_name  # defined privately: documented where it is exported
            expected.add(f"{home}.{getattr(obj, '__qualname__', name)}")
    assert len(expected) > 60
    missing = sorted(expected - pages)
    assert not missing, f"public names without an API page: {missing}"


def test_the_completeness_check_notices_a_missing_page() -> None:
    generator = _generator()
    documented = {"semrec", "semrec.als"}
    missing = generator.missing_from(documented)
    assert "semrec.als.ALS" in missing and "semrec.topk" in missing
    assert "semrec.als" not in missing


# ---------------------------------------------------------------------------------------------
# The README: the front door


def readme_links() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [m.split("#")[0] for m in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in m]


def test_readme_is_at_most_12_kb() -> None:
    assert README.stat().st_size <= 12 * 1024, f"README.md is {README.stat().st_size} bytes"


def test_readme_links_resolve() -> None:
    broken = [link for link in readme_links() if not (ROOT / link).exists()]
    assert not broken, f"README links to missing files: {broken}"


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    linked = {(ROOT / link).resolve() for link in readme_links()}
    pages = [p for p in doc_pages() if "generated" not in p.parts]
    # docs/benchmarks.md only includes benchmarks/README.md, which the README links itself.
    pages = [p for p in pages if p != DOCS / "benchmarks.md"]
    unlinked = [str(p.relative_to(ROOT)) for p in pages if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"
