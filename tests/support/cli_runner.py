"""`shipyard` commands run in this process (typer's CliRunner), for tests whose behaviour is the
command's, not a process's of its own. Shared by several test folders (pytest puts `tests/support` on
the import path)."""

from __future__ import annotations

from click.testing import Result


def invoke_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `shipyard ARGS` to completion (`env` added to the environment meanwhile). A crash (anything
    but a clean exit, whatever its code) fails the test."""
    from typer.testing import CliRunner

    from shipyard.cli import app

    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result
