"""`shipyard store prune`: retention on demand; `shipyard store dead-letters list | show | retry`: records
the store refused."""

import time
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape

from shipyard.cli._app import ConfigOption, app, console, err_console, fail, handle_errors, load_project

store_app = typer.Typer(
    help="The store (SQLite under .shipyard/, or PostgreSQL with SHIPYARD_DATABASE_URL).\n\n"
    "Example: shipyard store prune --max-age 30d --ledger-max-age 400d",
    no_args_is_help=True,
)
dead_app = typer.Typer(
    help="Records the store refused (a NUL byte PostgreSQL cannot hold, a number out of range), kept "
    "with the reason in the store, or in .shipyard/dead-letter/ when even that failed.\n\n"
    "Example: shipyard store dead-letters retry --all",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")
store_app.add_typer(dead_app, name="dead-letters")


def _letters(cfg: Any, store: Any, limit: int | None = None) -> list[tuple[Any, str]]:
    """(dead letter, where it is: `store` or a file path), newest first."""
    from shipyard.server import dead_letter_folder, read_dead_letter_files

    found: list[tuple[Any, str]] = [(d, "store") for d in store.list_dead_letters(limit=limit)]
    found += [(d, str(p)) for p, d in read_dead_letter_files(dead_letter_folder(cfg.root))]
    found.sort(key=lambda item: -item[0].created_at)
    return found[:limit] if limit is not None else found


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


@dead_app.command("list")
@handle_errors
def dead_letters_list(
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="At most this many."),
    config: Path | None = ConfigOption,
) -> None:
    """List dead letters, newest first: id, when, record, attempts, where, and the reason.

    Example: shipyard store dead-letters list
    """
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        letters = _letters(cfg, store, limit)
    if not letters:
        console.print("no dead letters: every record reached the store")
        return
    console.print(
        f"[bold]{len(letters)} dead letter(s)[/], newest first (id, first refused, record, tries, where):"
    )
    for d, where in letters:  # two lines each, ids whole: they are copied into `show` and `retry`
        tries = f"{d.attempts} {'try' if d.attempts == 1 else 'tries'}"
        console.print(
            f"{d.id}  {_when(d.created_at)}  {d.kind} {escape(d.record_id)}  {tries}  "
            f"{'store' if where == 'store' else 'file ' + escape(where)}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"    {escape(d.reason.splitlines()[0][:200])}", highlight=False, soft_wrap=True)


@dead_app.command("show")
@handle_errors
def dead_letters_show(
    ref: str = typer.Argument(..., help="A dead letter's id, or its record's id."),
    config: Path | None = ConfigOption,
) -> None:
    """Print one dead letter: the reason in full and the record as JSON.

    Example: shipyard store dead-letters show 3f2a9c0d1e...
    """
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        letter, where = _find(cfg, store, ref)
    console.print(
        f"dead letter {letter.id}  {letter.kind} {escape(letter.record_id)}  first refused "
        f"{_when(letter.created_at)}  attempts {letter.attempts}  in {escape(where)}",
        highlight=False,
    )
    console.print(f"[bold]reason[/] ({letter.error_type}):\n{escape(letter.reason)}", highlight=False)
    try:
        record = orjson.dumps(orjson.loads(letter.payload), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        record = letter.payload
    console.print("[bold]record[/]:", highlight=False)
    print(record)


def _find(cfg: Any, store: Any, ref: str) -> tuple[Any, str]:
    """The dead letter whose id or record id is `ref`: from the store's table (one lookup), else
    from the files."""
    from shipyard.server import dead_letter_folder, read_dead_letter_files

    found = store.get_dead_letter(ref)
    if found is not None:
        return found, "store"
    for path, d in read_dead_letter_files(dead_letter_folder(cfg.root)):
        if ref in (d.id, d.record_id):
            return d, str(path)
    raise fail(f"no dead letter {ref!r}", hint="list them with `shipyard store dead-letters list`")


@dead_app.command("retry")
@handle_errors
def dead_letters_retry(
    refs: list[str] | None = typer.Argument(None, help="Dead letter ids (or record ids)."),
    every: bool = typer.Option(False, "--all", help="Retry every dead letter."),
    config: Path | None = ConfigOption,
) -> None:
    """Write dead letters' records to the store again (after a fix or an upgrade): each one stored
    is removed; each one still refused keeps its new reason. Exit code 1 when some are still refused.

    Example: shipyard store dead-letters retry --all
    """
    from shipyard.store import Store, error_reason

    if not refs and not every:
        raise fail("name the dead letters to retry, or pass --all")
    cfg = load_project(config)
    stored = refused = 0
    with Store.from_config(cfg) as store:
        chosen = _letters(cfg, store) if every else [_find(cfg, store, r) for r in refs or []]
        for letter, where in chosen:
            try:
                again = store.retry_dead_letter(letter)
            except Exception as e:  # the database cannot be used now: nothing changed
                raise fail(
                    f"retrying dead letter {letter.id} failed: {error_reason(e, 300).splitlines()[0]}",
                    hint="check that the database is running; the dead letters are kept",
                ) from None
            if where != "store":  # stored now, or kept in the table with its new reason
                Path(where).unlink(missing_ok=True)
            if again is None:
                stored += 1
                console.print(f"stored {letter.kind} {escape(letter.record_id)} (dead letter {letter.id})")
            else:
                refused += 1
                err_console.print(
                    f"still refused: {letter.id} ({escape(again.reason.splitlines()[0][:160])})",
                    highlight=False,
                )
    console.print(f"{stored} stored, {refused} still refused")
    if refused:
        raise typer.Exit(1)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


@store_app.command("prune")
@handle_errors
def prune(
    max_age: str | None = typer.Option(
        None,
        "--max-age",
        help="Delete interactions older than this (90s, 15m, 1h, 30d). Default: store.retention.max_age.",
    ),
    max_size_mb: float | None = typer.Option(
        None,
        "--max-size-mb",
        help="Then delete the oldest until interactions and spans take at most this many MB on disk "
        "(their tables and indexes; the cost ledger is not counted). Default: store.retention.max_size_mb.",
    ),
    ledger_max_age: str | None = typer.Option(
        None,
        "--ledger-max-age",
        help="Delete cost ledger rows older than this (at least 32d: month budgets are reconciled "
        "from the ledger). Default: store.retention.ledger_max_age (none: the ledger is kept).",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Delete the oldest interactions and their spans, by age and by size, and cost ledger rows by
    age (store.retention in shipyard.yaml, or the options). Eval runs, rollouts and dead letters are
    kept.

    Example: shipyard store prune --max-age 30d --max-size-mb 2000 --ledger-max-age 400d
    """
    from shipyard.config import check_ledger_max_age, parse_window
    from shipyard.store import Store, error_reason

    cfg = load_project(config)
    retention = cfg.store.retention
    age_s = retention.max_age_s
    if max_age is not None:
        try:
            age_s = parse_window(max_age)
        except ValueError as e:
            raise fail(f"--max-age: {e}", hint="e.g. --max-age 30d") from None
    max_bytes = retention.max_bytes
    if max_size_mb is not None:
        if max_size_mb <= 0:
            raise fail(f"--max-size-mb must be more than 0, got {max_size_mb:g}")
        max_bytes = int(max_size_mb * 1024 * 1024)
    ledger_age_s = retention.ledger_max_age_s
    if ledger_max_age is not None:
        try:
            ledger_age_s = parse_window(ledger_max_age)
            check_ledger_max_age(ledger_age_s, ledger_max_age)
        except ValueError as e:
            raise fail(f"--ledger-max-age: {e}", hint="e.g. --ledger-max-age 400d") from None
    if age_s is None and max_bytes is None and ledger_age_s is None:
        where = cfg.path or "shipyard.yaml"
        raise fail(
            "nothing to prune by: no age or size limit",
            hint="pass --max-age / --max-size-mb / --ledger-max-age, or set store.retention.max_age / "
            f"max_size_mb / ledger_max_age in {where}",
        )
    with Store.from_config(cfg) as store:
        try:
            result = store.prune(max_age_s=age_s, max_bytes=max_bytes, ledger_max_age_s=ledger_age_s)
        except Exception as e:  # the database cannot be used now: nothing was half-done per batch
            raise fail(
                f"pruning failed: {error_reason(e, 300).splitlines()[0]}",
                hint="check that the database is running; batches already deleted stay deleted",
            ) from None
    console.print(
        f"deleted {result.deleted} interaction(s) with their spans; interactions and spans: "
        f"{_mb(result.bytes_before)} -> {_mb(result.bytes_after)}; "
        + (
            f"deleted {result.ledger_deleted} ledger row(s)"
            if ledger_age_s is not None
            else "the cost ledger is kept (no ledger max age)"
        ),
        highlight=False,
    )
