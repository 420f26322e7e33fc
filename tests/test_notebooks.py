"""The committed notebooks: valid nbformat 4, outputs stripped, every code cell explained.

Executing them is ``make notebooks`` (nbmake); these checks read the JSON directly.
"""

import itertools
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = [
    "01_quickstart",
    "02_movielens_hybrid",
    "03_cold_start",
    "04_real_time",
    "05_benchmarks",
]


def _load(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def test_the_five_notebooks_are_there_and_indexed():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    index = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in EXPECTED:
        assert f"{name}.ipynb" in index, f"{name} missing from notebooks/README.md"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_stripped(name):
    nb = _load(name)
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for i, cell in enumerate(code):
        assert cell["outputs"] == [], f"code cell {i} of {name} has outputs: strip them"
        assert cell["execution_count"] is None, f"code cell {i} of {name} has an execution count"


@pytest.mark.parametrize("name", EXPECTED)
def test_every_code_cell_follows_a_markdown_cell(name):
    cells = _load(name)["cells"]
    assert cells[0]["cell_type"] == "markdown", "a notebook opens with a title cell"
    for prev, cell in itertools.pairwise(cells):
        if cell["cell_type"] == "code":
            assert prev["cell_type"] == "markdown", "".join(cell["source"])[:80]
