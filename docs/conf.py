"""Sphinx configuration of semrec's documentation (``make docs``).

Guides are MyST Markdown; pages with ``{code-cell}`` blocks are executed by MyST-NB at every
build (in a fresh kernel per page, in a temporary directory), so their outputs and figures are
produced by the build and an example that stops working fails it. The API reference is
generated from the installed package's numpydoc docstrings (``_ext/semrec_api.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import semrec

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "semrec"
author = "the semrec developers"
copyright = "2026, the semrec developers"
release = semrec.__version__
version = release

extensions = [
    "myst_nb",  # MyST Markdown and executed {code-cell} pages
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "semrec_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
# api/generated/cli_commands.md is a fragment that api/cli.md includes, not a page of its own.
exclude_patterns = [
    "_build",
    "jupyter_execute",
    "**.ipynb_checkpoints",
    "api/generated/cli_commands.md",
]
templates_path: list[str] = []

# -- MyST and execution -----------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # every build runs every page: the docs cannot rot
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_in_temp = True  # files an example writes land in a temporary directory
nb_execution_show_tb = True
nb_merge_streams = True
nb_output_stderr = "remove"  # progress bars and log lines; failures still fail the build

# -- API reference ----------------------------------------------------------------------------
autosummary_generate = False  # _ext/semrec_api.py writes the pages
autodoc_member_order = "groupwise"
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_preserve_defaults = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Examples in docstrings are run by `make doctest`; here they are only shown.
numpydoc_use_plots = False

intersphinx_mapping: dict[str, tuple[str, str | None]] = {}  # offline build: no inventories

# -- HTML -------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"semrec {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
