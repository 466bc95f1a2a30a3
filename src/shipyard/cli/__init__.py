"""The `shipyard` command line: Typer commands, one module per command group."""

from __future__ import annotations

# Each module registers its commands on `app` when imported.
from shipyard.cli import core as _core  # noqa: F401  (init, run, versions, version)
from shipyard.cli import demo as _demo  # noqa: F401
from shipyard.cli import mock_llm as _mock_llm  # noqa: F401
from shipyard.cli import prompts as _prompts  # noqa: F401
from shipyard.cli._app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
