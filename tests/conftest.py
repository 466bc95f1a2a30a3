"""Settings every test folder shares, for serial runs and for `make test`'s parallel workers
(pytest-xdist)."""

from __future__ import annotations

import os

import pytest

# pytest-xdist starts its workers with COLUMNS=80 in their environment, a serial run has no COLUMNS:
# the CLI's consoles (shipyard.cli._app) would wrap at 80 columns instead of 120 for piped output.
# A worker drops it, so a test sees the same console under `make test` (xdist) as in a serial run.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

# The longest files, longest first (per-file wall time in a full `make test` run, 2026-12-07). Under
# `make test` a file runs whole on one worker, and xdist by itself hands out files with the most tests
# first: these few-test files, which start servers, replicas or installs (npm's promptfoo, Debian's
# chromium), came last and made the run's tail. Started first, they overlap the many short files.
# A file missing here only loses its place at the front; refresh the list from a `--durations=0` run.
SLOW_FILES_FIRST = (
    "tests/integrations/test_adk.py",
    "tests/pipeline/test_demo_pipeline.py",
    "tests/demo/test_demo_project.py",  # the whole `shipyard demo` once, its phases checked on that run
    "tests/server/test_rate_limits.py",
    "tests/replicas/test_replicas_haproxy.py",
    "tests/server/test_reload.py",
    "tests/rollout/test_gate_integrity.py",
    "tests/flags/test_shared_flags.py",
    "tests/conformance/test_otel_conformance.py",
    "tests/server/test_faults_drain.py",
    "tests/server/test_faults_startup.py",
    "tests/server/test_faults_outages.py",
    "tests/pipeline/test_stores.py",
    "tests/routing/test_routing_cli.py",
    "tests/conformance/test_promptfoo_conformance.py",
    "tests/loop/test_incidents_browser.py",
    "tests/demo/test_demo_suites.py",
    "tests/cli/test_startup_imports.py",
    "tests/cost/test_budget_replicas.py",
    "tests/observe/test_kpi_aggregates.py",
    "tests/replicas_shared/test_shared_dashboard.py",
    "tests/server/test_edge_validation.py",
    "tests/plugins/test_third_party_plugin.py",
    "tests/server/test_sigkill.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On xdist workers: the files in SLOW_FILES_FIRST first, then the rest by number of tests (xdist's
    own order); each file's tests keep their order. Every worker sorts alike, and `make test` runs
    xdist with --no-loadscope-reorder, so files are handed out in this order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {path: i for i, path in enumerate(SLOW_FILES_FIRST)}
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    order = sorted(files, key=lambda path: (rank.get(path, len(rank)), -len(files[path])))
    items[:] = [item for path in order for item in files[path]]
