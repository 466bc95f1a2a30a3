# Two commands on a fresh machine: `make demo` and `make test`.
# `make demo` installs the runtime dependencies only (`pip install -e .`); `make test` adds the dev
# toolchain (`.[dev]`: pytest, ruff, mypy, and the agent frameworks the integration tests run), also
# after a `make demo`. Each stamp is redone when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# a dev install holds the runtime one, so its stamp is refreshed too
$(DEV): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME)

demo: $(RUNTIME)
	$(BIN)/shipyard demo

test: $(DEV) lint typecheck pytest

lint: $(DEV)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(DEV)
	$(BIN)/mypy

# The suite waits on real servers and subprocesses far more than it computes: several workers
# (pytest-xdist) overlap those waits even on 2 cores. A test file runs whole on one worker, so its
# module-scoped fixtures are built once and its tests never overlap each other. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 4
pytest: $(DEV)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

bench: $(DEV)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
