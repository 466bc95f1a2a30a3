"""Help texts read as prose the terminal wraps: the line breaks of a docstring wrapped for the source
do not reach `--help` (Typer's rich help keeps them), while list items and example blocks keep theirs."""

from __future__ import annotations

from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.cli._app import reflow


def test_reflow_joins_prose_and_keeps_items_and_blocks() -> None:
    doc = """First line.

    A paragraph wrapped
    for the source, over
    three lines.

    - an item that goes
      on for two lines
    - a second item

        $ shipyard eval run
        $ shipyard gate production
    """
    assert reflow(doc) == (
        "First line.\n\n"
        "A paragraph wrapped for the source, over three lines.\n\n"
        "- an item that goes on for two lines\n- a second item\n\n"
        "    $ shipyard eval run\n    $ shipyard gate production"
    )
    assert reflow(reflow(doc)) == reflow(doc)


def test_a_commands_help_is_wrapped_by_the_terminal_not_by_the_source() -> None:
    # the docstring breaks "... 1 when any case" / "failed or was ERROR ..." across two source lines
    wide = CliRunner().invoke(app, ["eval", "run", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert wide.exit_code == 0, wide.output
    assert "1 when any case failed or was ERROR, or the run stopped early" in wide.output
    assert "Example: shipyard eval run --agent support" in wide.output
