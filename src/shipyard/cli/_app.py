"""The Typer application and the helpers every command module shares."""

import contextlib
import functools
import gc
import inspect
import os
import select
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.errors import ShipyardError

F = TypeVar("F", bound=Callable[..., Any])


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich's hook when a write fails with EPIPE (its default exits 1, which here means a failed
        check): the BrokenPipeError goes on to `handle_errors`, which ends the command with
        `STDOUT_CLOSED` when stdout is what closed."""
        self.quiet = True  # this console writes nothing more
        raise BrokenPipeError


def _console(stderr: bool = False) -> Console:
    """A console; piped output (CI logs, files) is 120 columns wide unless COLUMNS says otherwise."""
    c = _Console(stderr=stderr)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c = _Console(stderr=stderr, width=120)
    return c


console = _console()
err_console = _console(stderr=True)

app = typer.Typer(
    name="shipyard",
    help="Take an LLM agent from demo to production: eval-gated deploys, safe rollouts, "
    'observability and cost control.\n\nExample: shipyard run support "Where is my order 10001?"',
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class _LiveStderr:
    """Whatever `sys.stderr` is when a line is written (a test runner swaps it per command)."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


LOG_FORMAT_ENV = "SHIPYARD_LOG_FORMAT"
"""`json` or `text`: how a command writes its event lines; unset, readable text when stderr is a
terminal, else JSON lines (pipes, CI, log collectors). Any other value is a usage error (exit 2)."""

LOG_LEVEL_ENV = "SHIPYARD_LOG_LEVEL"
"""debug | info | warning | error: the least severe event line a command writes (default warning).
Any other value is a usage error (exit 2)."""


def _log_setting(env: str, choices: tuple[str, ...], hint: str) -> str | None:
    """The value of `env` (case and surrounding spaces ignored), None when unset or empty; any value
    outside `choices` fails the command with exit 2."""
    chosen = os.environ.get(env, "").strip().lower()
    if chosen and chosen not in choices:
        raise fail(f"{env} must be one of {', '.join(choices)}, got {os.environ[env]!r}", hint=hint)
    return chosen or None


@app.callback()
def _setup() -> None:
    # Event lines (warm-ups, step failures, audit events) are for operators: on stderr, warnings and
    # up, so a command's own output on stdout stays clean (`--json`, pipes); readable text for a
    # person at a terminal, JSON lines for machines (`LOG_FORMAT_ENV`). `serve` logs to stdout itself.
    from shipyard.observe import configure_logging

    try:
        form = _log_setting(LOG_FORMAT_ENV, ("json", "text"), "leave it unset: text on a terminal, else JSON")
        level = _log_setting(
            LOG_LEVEL_ENV, ("debug", "info", "warning", "error"), "leave it unset for warning"
        )
        configure_logging(
            json=form == "json" if form else not sys.stderr.isatty(),
            stream=cast(IO[Any], _LiveStderr()),
            level=level or "warning",
        )
    finally:
        settle()  # every command's body runs with the garbage collector on
        every_command()  # the Click command is built: app holds every command again


ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="Path of shipyard.yaml (default: nearest one, or $SHIPYARD_CONFIG).",
    show_default=False,
)


def fail(message: str, code: int = 2, hint: str | None = None) -> typer.Exit:
    """Print a clean error and return the Exit to raise. The message and hint are plain text: a YAML
    snippet such as `suites: [evals/smoke.yaml]` is shown as it is, not read as console markup."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if hint:
        err_console.print(f"  [dim]hint:[/] {escape(hint)}", highlight=False)
    return typer.Exit(code)


STDOUT_CLOSED = 141
"""The exit code when stdout's reader went away mid-output (`shipyard traces list | head -1`): what a
shell reports for a command ended by SIGPIPE (128 + 13), as for `git log | head -1`. Not 0: the command
may not have reached its result (a gate's verdict), so `set -o pipefail` still sees it; not 1 (a check
failed) as Click's own EPIPE handling answers, nor 2 (usage). Without pipefail the pipeline's status is
the reader's. Nothing is printed: the reader asked for no more."""


def stdout_closed() -> bool:
    """True when stdout is a pipe or socket whose reader has gone (writing to it fails with EPIPE).
    Anything later written to stdout is then discarded, so the interpreter's own last flush at exit
    does not fail too (the Python docs' "Note on SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poll.poll(0))
        if gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        return gone
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's buffer), no poll()
        return False


def handle_errors(fn: F) -> F:
    """Turn user errors into messages with meaningful exit codes, never tracebacks; a closed stdout
    ends the command quietly with `STDOUT_CLOSED`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # what is still buffered fails here, not in the interpreter's exit
            return result
        except ShipyardError as e:
            raise fail(e.message, e.exit_code, e.hint) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            if not stdout_closed():  # another pipe (a subprocess, a socket): not ours to hide
                raise
            raise typer.Exit(STDOUT_CLOSED) from None

    return wrapper  # type: ignore[return-value]


class _Process:
    own = False
    """True once `main()` runs: this process is the `shipyard` command (not a test calling `app`)."""
    paused = False
    """The collector is off until the command's body runs (`own_process`, `settle`)."""


def own_process(collecting: bool) -> None:
    """Called by `shipyard.cli.main` before the command line is parsed: the process is the command's,
    so `start_up` may tune its garbage collection. `main` paused the collector before importing this
    module (`collecting`: it was on): until the command's body runs (`settle`, from the callback every
    command passes through), nothing is collected: importing Typer and Rich and parsing build only
    what the process keeps (the Click commands, the logging set-up)."""
    _Process.own = True
    _Process.paused = collecting


def settle() -> None:
    """Freeze what start-up built and turn the collector back on, if `own_process` paused it."""
    if _Process.paused:
        _Process.paused = False
        gc.freeze()
        gc.enable()


def _command_name(info: typer.models.CommandInfo) -> str | None:
    callback = info.callback
    return info.name or (callback.__name__.lower().replace("_", "-") if callback else None)


def _group_name(info: typer.models.TyperInfo) -> str | None:
    name = info.name
    return name if isinstance(name, str) else None  # not set: Typer's default (a placeholder)


@contextlib.contextmanager
def only_command(args: list[str]) -> Iterator[None]:
    """While a command line runs: `app` holds only the command (or command group) its first word
    names, so Typer builds one Click command instead of every one (~70: reading each function's
    signature and annotations is most of the parsing's CPU). The command runs, prints its help and
    its usage errors as it would among all of them. Everything stays when the first word is an
    option (`--help`), missing, or names no command (a typo: Click's answer lists the commands)."""
    name = args[0] if args and not args[0].startswith("-") else None
    commands = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if _group_name(g) == name]
    if name is None or len(commands) + len(groups) != 1:
        yield
        return
    _Only.kept = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = commands, groups
    try:
        yield
    finally:
        every_command()


class _Only:
    kept: tuple[Any, Any] | None = None
    """The lists of every command and group while `only_command` holds the one that runs."""


def every_command() -> None:
    """`app` holds every registered command again (after `only_command`): called once Typer has built
    the Click command that runs (its callback), so a command that runs other command lines in this
    process (`shipyard demo`) finds them all."""
    if _Only.kept is not None:
        app.registered_commands, app.registered_groups = _Only.kept
        _Only.kept = None


_LIST_ITEM = ("- ", "* ", "• ")


def reflow(doc: str) -> str:
    """A command's docstring as its `--help` should get it. Typer's rich help keeps a text's single
    line breaks, so prose wrapped for the source reads ragged in a terminal of another width: each
    paragraph's lines are joined (the terminal wraps them), a list item ("- ...") keeps its own line
    with its continuation lines joined to it, and a paragraph that opens indented (an example block)
    stays as written."""
    paragraphs = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        if para[:1] in (" ", "\t", "\b"):
            paragraphs.append(para)
            continue
        lines: list[str] = []
        for line in para.split("\n"):
            text = line.strip()
            if not lines or (line.startswith(_LIST_ITEM) and lines[-1]):
                lines.append(text)
            else:
                lines[-1] = f"{lines[-1]} {text}".strip()
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def reflow_help(typer_app: typer.Typer) -> None:
    """`reflow` the help of every command and command group registered on `typer_app` (their own
    `help=`, else their docstring); reflowing twice changes nothing."""
    for command in typer_app.registered_commands:
        doc = command.help if isinstance(command.help, str) else getattr(command.callback, "__doc__", None)
        if doc:
            command.help = reflow(doc)
    for group in typer_app.registered_groups:
        sub = group.typer_instance
        if sub is None:
            continue
        if isinstance(sub.info.help, str):
            sub.info.help = reflow(sub.info.help)
        reflow_help(sub)


@contextlib.contextmanager
def start_up() -> Iterator[None]:
    """Where a command builds what it keeps until it exits (modules, classes, the validated
    config, the runtime): in the `shipyard` process itself no garbage collection runs meanwhile
    (each one walks every object built so far, a third of a small command's CPU), and what was
    built is then frozen (`gc.freeze`) so later collections skip it. Nested uses are one; elsewhere
    (a test invoking `app`, a library caller) nothing changes."""
    if not _Process.own or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def load_project(config: Path | None) -> Any:
    """Load shipyard.yaml (imported lazily so `--help` stays fast)."""
    with start_up():
        from shipyard.config import load_config

        return load_config(config)


def is_tty() -> bool:
    return sys.stdout.isatty()
