"""The `shipyard` command line: Typer commands, one module per command group."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.cli._app import app

# The modules of commands, each registering its commands on `app` when imported, and the names it
# registers (a command, or a group of them). `main()` imports the module of the command it runs (a
# line's first word), or every one when that word names none (`--help`, a typo); `shipyard.cli.app`
# has them all.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "cache": ("cache",),  # cache show/clear
    "ci": ("ci", "approve", "checklist"),  # ci run/init, approve, checklist
    "core": ("init", "run", "versions", "version"),
    "cost": ("cost",),  # cost report
    "demo": ("demo",),
    "evals": ("eval", "gate"),  # eval run/compare/import, gate, gate approve
    "flags": ("flags",),  # flags list/get/set/enable/disable/rollout
    "guardrails": ("guardrails",),  # guardrails scan/check
    "incidents": ("incidents",),  # incidents list/show/triage/promote
    "mock_llm": ("mock-llm",),
    "prompts": ("prompts",),
    "redteam": ("redteam",),  # redteam generate
    "rollout": ("deploy", "rollout", "experiment"),
    "routing": ("routing",),  # routing evaluate/fit
    "serve": ("serve", "alerts", "keys", "traces"),
    "shadow": ("shadow",),  # shadow replay against a candidate
    "simulate": ("simulate",),
    "store": ("store",),  # store dead-letters list/show/retry
}


def modules_for(args: list[str]) -> list[str]:
    """The command modules a command line needs: the one registering its first word, else all."""
    name = args[0] if args and not args[0].startswith("-") else None
    found = [module for module, names in COMMAND_MODULES.items() if name in names]
    return found if len(found) == 1 else list(COMMAND_MODULES)


def register(modules: Iterable[str]) -> None:
    """Import command modules (each registers its commands on `app`). No garbage collection walks
    the modules and classes meanwhile: they live as long as the process."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        for module in modules:
            importlib.import_module(f"shipyard.cli.{module}")
        from shipyard.cli._app import app, reflow_help

        reflow_help(app)  # help texts as prose the terminal wraps, not the source's line breaks
    finally:
        if collecting:
            # What the imports built is made old at once (what surviving two collections would do,
            # without their walks), so the first young collection does not walk it all (~27,000
            # objects). Only when nothing else is frozen: unfreezing moves everything frozen to the
            # oldest generation.
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def main() -> None:
    """The `shipyard` command."""
    # importing Typer, Rich and the app builds only what the process keeps: no collection walks it
    # (nor, after `own_process`, what parsing builds until the command's body runs)
    collecting = gc.isenabled()
    gc.disable()
    try:
        from shipyard.cli._app import app, only_command, own_process, settle
    except BaseException:  # a caller that goes on gets its collector back
        if collecting:
            gc.enable()
        raise
    own_process(collecting)
    try:
        register(modules_for(sys.argv[1:]))
        with only_command(sys.argv[1:]):  # Typer builds the one command that runs
            app()
    except SystemExit:
        _flush_stdout()
        raise
    finally:
        settle()  # on again if no command ran (`--help`, a usage error), for a caller that goes on
        # the process ends here: the interpreter's last collections would walk every object it
        # built (a fifth of a short command's CPU) only to free them as the process exits anyway
        gc.freeze()


def _flush_stdout() -> None:
    """Send what stdout still buffers before the interpreter's exit would: when its reader has gone,
    quietly (the command's exit code stands; `_app.STDOUT_CLOSED` is for output cut off mid-command)."""
    from shipyard.cli._app import stdout_closed

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_closed()


if not TYPE_CHECKING:  # mypy sees `app` imported above, so a misspelt name is still an error

    def __getattr__(name: str) -> Any:
        """`shipyard.cli.app`: the Typer app with every command registered."""
        if name != "app":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        register(COMMAND_MODULES)
        from shipyard.cli._app import app

        globals()["app"] = app
        return app


__all__ = ["COMMAND_MODULES", "app", "main", "modules_for", "register"]
