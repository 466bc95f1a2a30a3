"""Settings every test folder shares, for serial runs and for `make test`'s parallel workers
(pytest-xdist)."""

from __future__ import annotations

import os

# pytest-xdist starts its workers with COLUMNS=80 in their environment, a serial run has no COLUMNS:
# the CLI's consoles (shipyard.cli._app) would wrap at 80 columns instead of 120 for piped output.
# A worker drops it, so a test sees the same console under `make test` (xdist) as in a serial run.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
