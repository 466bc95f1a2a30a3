"""The `shipyard` process skips the garbage collections of its start-up (they only walk what lives
until it exits) but runs every command's body with the collector on; a test or library calling the
Typer app is left alone."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.cli import _app


def probe(script: str, cwd: Path) -> dict[str, object]:
    """Run `script` in a fresh Python process; the JSON it printed last on stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


# Runs `shipyard version` through `main()` in a fresh interpreter and reports whether the collector
# was on while the command printed, and after main() ended.
PROBE = """
import gc, json, sys
sys.argv = ["shipyard", "version"]
from shipyard.cli import _app, main
seen = []
_print = _app.console.print
_app.console.print = lambda *a, **k: (seen.append(gc.isenabled()), _print(*a, **k))
code = 0
try:
    main()
except SystemExit as e:
    code = e.code or 0
print(json.dumps({"code": code, "during": seen, "after": gc.isenabled()}), file=sys.stderr)
"""


def test_a_command_body_runs_with_the_collector_on(tmp_path: Path) -> None:
    assert probe(PROBE, tmp_path) == {"code": 0, "during": [True], "after": True}


HELP_PROBE = """
import contextlib, gc, io, json, sys
sys.argv = ["shipyard", "--help"]
from shipyard.cli import main
code = 0
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
print(json.dumps({"code": code, "after": gc.isenabled()}), file=sys.stderr)
"""


def test_the_collector_is_on_again_when_no_command_ran(tmp_path: Path) -> None:
    assert probe(HELP_PROBE, tmp_path) == {"code": 0, "after": True}


@pytest.fixture
def own_process() -> Iterator[None]:
    assert gc.isenabled()
    _app._Process.own = True
    try:
        yield
    finally:
        _app._Process.own = False
        gc.unfreeze()
        gc.enable()


def test_start_up_pauses_the_collector_and_freezes_what_it_built(own_process: None) -> None:
    frozen = gc.get_freeze_count()
    with _app.start_up():
        assert not gc.isenabled()
        with _app.start_up():  # nested: one start-up
            kept = [[] for _ in range(10)]
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
    assert kept


def test_start_up_turns_the_collector_back_on_when_it_fails(own_process: None) -> None:
    with pytest.raises(RuntimeError), _app.start_up():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_start_up_changes_nothing_outside_the_shipyard_process() -> None:
    assert not _app._Process.own
    frozen = gc.get_freeze_count()
    with _app.start_up():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


# Counts the collections `shipyard --help` runs through `main()` in a fresh interpreter: importing
# Typer, Rich and the commands, building and printing the help only build what the process keeps.
NO_COLLECTION_PROBE = """
import contextlib, gc, io, json, sys
sys.argv = ["shipyard", "--help"]
from shipyard.cli import main
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
code = 0
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
print(json.dumps({"code": code, "collections": collections, "after": gc.isenabled()}), file=sys.stderr)
"""


def test_help_runs_no_garbage_collection(tmp_path: Path) -> None:
    assert probe(NO_COLLECTION_PROBE, tmp_path) == {"code": 0, "collections": [], "after": True}
