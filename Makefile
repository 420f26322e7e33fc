# make demo  - create .venv, install torch==2.13.0 and semrec, run the demo
# make test  - the same install plus test extras, then the whole test suite, the docstring
#              examples (make doctest) and the notebooks
# make notebooks - execute notebooks/*.ipynb with nbmake (part of make test)
# make fuzz - the file readers' fuzz tests with SEMREC_FUZZ_CASES=20000 cases each
# make bench - the benchmarks in quick mode;  make lint - ruff and clang-format;  make clean

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# Build tools for a --no-build-isolation build (an isolated build would fetch a CUDA torch).
BUILD_DEPS := scikit-build-core pybind11 cmeel-eigen ninja "cmake>=3.26"
SOURCES := $(shell find cpp python -type f) CMakeLists.txt pyproject.toml

.PHONY: demo test doctest notebooks fuzz bench lint clean install

demo: $(VENV)/.stamp-install
	$(BIN)/semrec demo

test: $(VENV)/.stamp-install
	$(BIN)/python -m pytest
	$(MAKE) doctest
	$(MAKE) notebooks

# Every example in the installed package's docstrings runs (tests/test_docstrings.py checks
# that each public class and function has one).
doctest: $(VENV)/.stamp-install
	$(BIN)/python -m pytest --doctest-modules --pyargs semrec -p no:cacheprovider -q

# Runs every notebook top to bottom in a fresh kernel of this interpreter (ipykernel's
# "python3"); tests/test_notebooks.py checks that the committed copies carry no outputs.
# JUPYTER_PATH puts this venv's kernelspec ahead of any user-level "python3" kernel.
notebooks: $(VENV)/.stamp-install
	JUPYTER_PATH="$(abspath $(VENV))/share/jupyter" $(BIN)/python -m pytest --nbmake notebooks -p no:cacheprovider

fuzz: $(VENV)/.stamp-install
	SEMREC_FUZZ_CASES=20000 $(BIN)/python -m pytest -m fuzz -p no:cacheprovider

bench: $(VENV)/.stamp-install
	$(BIN)/pip install --quiet ".[bench]" --no-build-isolation
	$(BIN)/python benchmarks/similarity.py --quick
	$(BIN)/python benchmarks/evaluation.py --quick
	$(BIN)/python benchmarks/encoder.py --quick
	$(BIN)/python benchmarks/semantic.py --quick
	$(BIN)/python benchmarks/als.py --quick

lint: $(VENV)/.stamp-venv
	$(BIN)/pip install --quiet "ruff==0.17.6" "clang-format==23.1.5"
	$(BIN)/ruff check python tests benchmarks notebooks
	$(BIN)/ruff format --check python tests benchmarks notebooks
	find cpp -name '*.cpp' -o -name '*.hpp' | xargs $(BIN)/clang-format --dry-run -Werror

install: $(VENV)/.stamp-install

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: anything looser resolves to a multi-GB CUDA build.
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet $(BUILD_DEPS)
	touch $@

$(VENV)/.stamp-install: $(VENV)/.stamp-venv $(SOURCES)
	$(BIN)/pip install --no-build-isolation ".[test]"
	touch $@

clean:
	rm -rf build dist $(VENV) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
