"""`shipyard flags list|validate|get|set|enable|disable|rollout`: the project's feature flags."""

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, err_console, fail, handle_errors

flags_app = typer.Typer(
    help="Feature flags in flagd's flag-file format: list, inspect and change them. A project's flags "
    "live in its store (the flag file seeds it, and a file content the store never saw is imported); "
    "changes reach every replica within seconds (a revision poll, and Redis notices when configured)."
    "\n\n"
    "Example: shipyard flags rollout new_refund_flow 10",
    no_args_is_help=True,
)
app.add_typer(flags_app, name="flags")

FileOption = typer.Option(
    None,
    "--file",
    "-f",
    help="The flag file (default: `flags.file` in shipyard.yaml, else flags.json).",
    show_default=False,
)


def _admin(file: Path | None, config: Path | None) -> Any:
    """The FlagAdmin for --file, else the project's configured flag file."""
    from shipyard.config import load_config
    from shipyard.errors import ConfigError
    from shipyard.flags import FlagAdmin, redis_url_from_env

    redis_url = redis_url_from_env()
    channel = "shipyard:flags"
    if file is None or config is not None:
        try:
            cfg = load_config(config)
        except ConfigError:
            if file is None:
                raise
            cfg = None
        if cfg is not None:
            project_file = cfg.resolve(cfg.flags.file)
            file = file or project_file
            redis_url = redis_url or cfg.flags.redis_url
            channel = cfg.flags.channel
            if file.resolve() == project_file.resolve():  # the project's flags: the store holds them
                from shipyard.flags import SharedFlags
                from shipyard.store import Store

                shared = SharedFlags(Store.from_config(cfg), cfg.project, project_file)
                return FlagAdmin(file, redis_url=redis_url, channel=channel, shared=shared, actor="cli")
    assert file is not None
    return FlagAdmin(file, redis_url=redis_url, channel=channel)


def _describe(flag: Any) -> str:
    from shipyard.flags import rollout_percent

    pct = rollout_percent(flag)
    if pct is not None:
        return f"rollout {pct:g}% on"
    if flag.targeting:
        return "targeting"
    return "static"


def _value(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def _warnings_table(warnings: tuple[str, ...]) -> Table:
    table = Table("line", "where", "problem", box=None, header_style="bold yellow")
    for w in warnings:
        line, _, rest = w.partition(": ") if w.startswith("line ") else ("", "", w)
        where, _, problem = rest.partition(": ")
        table.add_row(line.removeprefix("line "), escape(where), escape(problem or where))
    return table


def _warn(flag_set: Any, file: Path) -> None:
    """Rules flagd loads but that can only fail or give null: on stderr, so stdout stays the listing."""
    if not flag_set.warnings:
        return
    err_console.print(
        f"[yellow]warning:[/] {len(flag_set.warnings)} rule(s) in {escape(str(file))} can only fail or give "
        "null: flagd loads them, and those flags resolve with PARSE_ERROR or their default "
        "(`shipyard flags validate` checks the file)",
        highlight=False,
    )
    err_console.print(_warnings_table(flag_set.warnings))


def _done(admin: Any, what: str) -> None:
    console.print(f"{what} [dim](revision {admin.flag_set().revision}, {admin.file})[/]", highlight=False)
    if admin.published is not None:
        console.print(f"[dim]published to redis: {admin.published} replica(s) listening[/]")


@flags_app.command("list")
@handle_errors
def list_cmd(
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print the whole flag file as JSON."),
) -> None:
    """List the flags: state, default, rule.

    Example: shipyard flags list --file flags.json
    """
    admin = _admin(file, config)
    flag_set = admin.flag_set()
    _warn(flag_set, admin.file)
    if as_json:
        console.print_json(json.dumps(flag_set.to_json()))
        return
    flags = sorted(flag_set.flags.values(), key=lambda f: f.name)
    if not flags:
        console.print(f"no flags in {admin.file}")
        return
    table = Table("flag", "state", "type", "default", "rule", "kill switch", box=None, header_style="bold")
    for f in flags:
        default = (
            f"{f.default_variant} = {_value(f.variants[f.default_variant])}" if f.default_variant else "-"
        )
        ks = (
            "tripped"
            if "killSwitchTripped" in f.metadata
            else ("armed" if "killSwitch" in f.metadata else "")
        )
        state = "[green]ENABLED[/]" if f.enabled else "[red]DISABLED[/]"
        table.add_row(escape(f.name), state, f.kind, escape(default), _describe(f), ks)
    console.print(table)


@flags_app.command("validate")
@handle_errors
def validate_cmd(
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check the flag file as flagd reads it. Exit 0: every rule can serve its variants; 1: some
    rules load but can only fail or give null (unknown operator, `$ref` to a missing evaluator, bad
    sem_ver / starts_with / ends_with arguments, ...), listed with their line; 2: flagd would not
    load the file.

    Example: shipyard flags validate --file flags.json
    """
    admin = _admin(file, config)
    if not admin.file.exists():
        raise fail(f"no flag file at {admin.file}", hint="create one with `shipyard flags set NAME '{...}'`")
    from shipyard.flags import load_flag_file

    flag_set = load_flag_file(admin.file)  # the file itself, as flagd reads it (not the store's set)
    if as_json:
        result = {"file": str(admin.file), "flags": len(flag_set.flags), "warnings": list(flag_set.warnings)}
        console.print_json(json.dumps(result))
    elif flag_set.warnings:
        console.print(
            f"[yellow]{len(flag_set.warnings)} rule(s) can only fail or give null[/] in {escape(str(admin.file))} "
            f"({len(flag_set.flags)} flags): flagd loads them, and those flags resolve with PARSE_ERROR "
            "or their default",
            highlight=False,
        )
        console.print(_warnings_table(flag_set.warnings))
    else:
        console.print(
            f"[green]ok[/]: {len(flag_set.flags)} flags in {escape(str(admin.file))}", highlight=False
        )
    if flag_set.warnings:
        raise typer.Exit(1)


@flags_app.command("get")
@handle_errors
def get_cmd(
    name: str = typer.Argument(..., help="The flag key."),
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Print one flag's definition as flagd JSON.

    Example: shipyard flags get new_refund_flow
    """
    flag = _admin(file, config).get(name)
    console.print_json(json.dumps(flag.to_json()))


@flags_app.command("set")
@handle_errors
def set_cmd(
    name: str = typer.Argument(..., help="The flag key."),
    definition: str = typer.Argument(
        ...,
        help="The flag in flagd JSON ({state, variants, defaultVariant, targeting?, metadata?}), or @FILE.",
    ),
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Create or replace a flag (validated before anything is written).

    Example: shipyard flags set new_refund_flow '{"state": "ENABLED", "variants": {"on": true, "off": false},
    "defaultVariant": "off"}'
    """
    text = definition
    if definition.startswith("@"):
        try:
            text = Path(definition[1:]).read_text(encoding="utf-8")
        except OSError as e:
            raise fail(f"cannot read {definition[1:]}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(
            f"the definition is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            hint='example: \'{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}\'',
        ) from None
    admin = _admin(file, config)
    flag = admin.set(name, data)
    _done(admin, f"set flag [bold]{escape(flag.name)}[/] ({flag.state}, {_describe(flag)})")


@flags_app.command("enable")
@handle_errors
def enable_cmd(
    name: str = typer.Argument(..., help="The flag key."),
    variant: str | None = typer.Option(None, "--variant", help="Also make this the default variant."),
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Turn a flag on (state ENABLED): it serves its rules again. A tripped kill switch is reset.

    Example: shipyard flags enable new_refund_flow --variant on
    """
    admin = _admin(file, config)
    flag = admin.enable(name, variant=variant)
    _done(admin, f"enabled [bold]{escape(flag.name)}[/] (default {flag.default_variant}, {_describe(flag)})")


@flags_app.command("disable")
@handle_errors
def disable_cmd(
    name: str = typer.Argument(..., help="The flag key."),
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Turn a flag off (state DISABLED): every caller gets the default in its code.

    Example: shipyard flags disable new_refund_flow
    """
    admin = _admin(file, config)
    flag = admin.disable(name)
    _done(admin, f"disabled [bold]{escape(flag.name)}[/]")


@flags_app.command("rollout")
@handle_errors
def rollout_cmd(
    name: str = typer.Argument(..., help="The flag key (it needs an on and an off variant)."),
    percent: float = typer.Argument(..., help="Share of users (by targeting key) that get 'on', 0-100."),
    file: Path | None = FileOption,
    config: Path | None = ConfigOption,
) -> None:
    """Serve the 'on' variant to PERCENT of users, sticky per user; replaces the flag's targeting.
    Raising the percentage keeps everyone who already has it.

    Example: shipyard flags rollout new_refund_flow 10
    """
    admin = _admin(file, config)
    flag = admin.rollout(name, percent)
    _done(admin, f"rolled out [bold]{escape(flag.name)}[/] to {percent:g}%")
