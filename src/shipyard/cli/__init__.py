"""The `shipyard` command line: Typer commands, one module per command group."""

from __future__ import annotations

from shipyard.cli._app import app

# Each module registers its commands on `app` when imported.
from shipyard.cli import core as _core  # noqa: E402,F401  (init, run, versions, version)
from shipyard.cli import demo as _demo  # noqa: E402,F401
from shipyard.cli import mock_llm as _mock_llm  # noqa: E402,F401
from shipyard.cli import prompts as _prompts  # noqa: E402,F401


def main() -> None:
    app()


__all__ = ["app", "main"]
