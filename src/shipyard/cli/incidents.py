"""`shipyard incidents list | show | triage | promote | rules ...`: production becomes evals."""

import time
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, fail, handle_errors, load_project

incidents_app = typer.Typer(
    help="Incidents: what production showed (errors, guardrail blocks, tool-policy refusals, escalations, "
    "negative feedback, complaints, alerts), grouped, and promoted to eval cases.\n\n"
    "Example: shipyard incidents promote inc-3f2a9c1b --suite evals/support/regression.yaml "
    '--expect "refunds over $500 need a manager"',
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Incident rules (incidents.rules in shipyard.yaml).\n\nExample: shipyard incidents rules backfill --since 7d",
    no_args_is_help=True,
)
app.add_typer(incidents_app, name="incidents")
incidents_app.add_typer(rules_app, name="rules")

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2).decode()


def _public(inc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inc.items() if k != "tokens"}


@incidents_app.command("list")
@handle_errors
def list_cmd(
    agent: str | None = typer.Option(None, "--agent", "-a", help="Only this agent's incidents."),
    state: list[str] | None = typer.Option(None, "--state", "-s", help="Only these states (repeatable)."),
    review: bool = typer.Option(False, "--review", help="Only the review queue."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="At most this many."),
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """List incidents, most recently seen first: id, state, count, agent, failure, title.

    Example: shipyard incidents list --agent support --state open --state candidate
    """
    from shipyard.loop import sync_fixed
    from shipyard.store import INCIDENT_STATES, Store

    bad = [s for s in state or [] if s not in INCIDENT_STATES]
    if bad:
        raise fail(f"unknown state {bad[0]!r}; states are {', '.join(INCIDENT_STATES)}")
    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        sync_fixed(store, cfg, agent)
        found = store.list_incidents(agent, state or None, review=True if review else None, limit=limit)
    if as_json:
        typer.echo(_dumps([_public(i) for i in found]))
        return
    if not found:
        console.print("no incidents" + (" matching the filters" if agent or state or review else ""))
        return
    table = Table(
        "id", "state", "count", "agent", "failure", "last seen", "title", box=None, header_style="bold"
    )
    for i in found:
        state_text = i["state"] + (" [yellow](review)[/]" if i["review"] else "")
        table.add_row(
            i["id"], state_text, str(i["count"]), escape(i["agent"]), escape(i["failure"]), _when(i["last_seen"]),
            escape(i["title"][:80]),
        )  # fmt: skip
    console.print(table)


@incidents_app.command("show")
@handle_errors
def show_cmd(
    ref: str = typer.Argument(..., metavar="ID", help="The incident id (a unique prefix works)."),
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """Show one incident: state, expectation, case, history and its provenance (interactions, traces, spans).

    Example: shipyard incidents show inc-3f2a9c1b
    """
    from shipyard.loop import sync_fixed
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        sync_fixed(store, cfg)
        inc = store.get_incident(ref)
    if as_json:
        typer.echo(_dumps(_public(inc)))
        return
    console.print(f"[bold]{inc['id']}[/]  {escape(inc['title'])}", highlight=False)
    rows = [
        ("state", inc["state"] + (" (in the review queue)" if inc["review"] else "")),
        ("agent", inc["agent"]),
        ("version", inc["version"] or ""),
        ("failure", inc["failure"]),
        ("source", inc["source"]),
        ("count", str(inc["count"])),
        ("first / last seen", f"{_when(inc['first_seen'])} / {_when(inc['last_seen'])}"),
        ("input", inc["input"][:300]),
        ("expectation", _dumps(inc["expectation"]) if inc["expectation"] else "none (a candidate at most)"),
        ("case", f"{inc['case_id']} in {inc['suite']}" if inc["case_id"] else ""),
        ("fixed by", inc["fixed_version"] or ""),
    ]
    for key, value in rows:
        if value:
            console.print(f"  [dim]{key}:[/] {escape(value)}", highlight=False, soft_wrap=True)
    console.print("[bold]provenance[/] (newest first):")
    for o in inc["occurrences"]:
        spans = ",".join(o["span_ids"] or [])
        console.print(
            f"  {_when(o['at'])}  {o['source']}  interaction {o['interaction_id'] or '-'}  "
            f"trace {o['trace_id'] or '-'}  spans {spans or '-'}",
            highlight=False,
            soft_wrap=True,
        )
    console.print("[bold]history[/]:")
    for h in inc["history"] or []:
        console.print(
            f"  {_when(h['at'])}  {h.get('from') or '-'} -> {h['to']}  by {escape(str(h.get('by')))}  "
            f"{escape(str(h.get('note') or ''))}",
            highlight=False,
            soft_wrap=True,
        )


@incidents_app.command("triage")
@handle_errors
def triage_cmd(
    ref: str = typer.Argument(..., metavar="ID", help="The incident id (a unique prefix works)."),
    to: str = typer.Option(
        "triaged", "--state", "-s", help="Move it forward to: triaged, candidate, golden, or wont_fix."
    ),
    note: str = typer.Option("", "--note", help="Why (kept in its history)."),
    by: str = typer.Option("cli", "--by", help="Who decides."),
    config: Path | None = ConfigOption,
) -> None:
    """Move an incident forward along its lifecycle (open -> triaged -> candidate -> golden -> in_suite ->
    fixed, or to wont_fix; fixed and wont_fix are final). Any other move is refused (exit 2), naming the
    allowed ones; `promote` makes it in_suite and a passing eval run fixed.

    Example: shipyard incidents triage inc-3f2a9c1b --state wont_fix --note "expected behaviour"
    """
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        inc = store.transition_incident(ref, to, by=by, note=note)
    console.print(f"{inc['id']} is now [bold]{inc['state']}[/]")


@incidents_app.command("promote")
@handle_errors
def promote_cmd(
    ref: str = typer.Argument(..., metavar="ID", help="The incident id (a unique prefix works)."),
    suite: str | None = typer.Option(
        None, "--suite", help="Suite file to add the case to (default: incidents.regression_suite)."
    ),
    expect: str | None = typer.Option(None, "--expect", help="The answer the agent should have given."),
    contains: list[str] | None = typer.Option(None, "--contains", help="Text the answer must contain."),
    must_not_call: list[str] | None = typer.Option(None, "--must-not-call", help="A tool it must not call."),
    must_refuse: bool = typer.Option(False, "--must-refuse", help="The agent must refuse."),
    trajectory: str | None = typer.Option(
        None, "--trajectory", help="Tools it should call in order, comma separated."
    ),
    by: str = typer.Option("cli", "--by", help="Who promotes (kept in the history)."),
    config: Path | None = ConfigOption,
) -> None:
    """Write the incident as an eval case that replays deterministically: its input and history, the tool
    results recorded at the time, and the expected behaviour. Without an expectation (given here or
    stored from a correction) it becomes a candidate for review and nothing is written (exit 1).

    Example: shipyard incidents promote inc-3f2a9c1b --suite evals/support/regression.yaml --must-not-call issue_refund
    """
    from shipyard.loop import make_expectation, promote
    from shipyard.store import Store

    cfg = load_project(config)
    expectation = make_expectation(
        expected=expect,
        contains=contains or [],
        must_not_call=must_not_call or [],
        must_refuse=must_refuse,
        trajectory=[t.strip() for t in trajectory.split(",") if t.strip()] if trajectory else None,
        by=by,
    )
    with Store.from_config(cfg) as store:
        result = promote(store, cfg, ref, suite=suite, expectation=expectation, by=by)
    if not result.written:
        console.print(f"[yellow]not promoted:[/] {escape(result.message)}", highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]promoted[/] {result.incident['id']}: {escape(result.message)}", highlight=False)
    console.print(
        f"  {len(result.case['tool_results']) if result.case else 0} recorded tool result(s); "
        "the production gate runs it (incidents.gate_stages)"
    )


@rules_app.command("list")
@handle_errors
def rules_list_cmd(config: Path | None = ConfigOption) -> None:
    """List the incident rules of shipyard.yaml.

    Example: shipyard incidents rules list
    """
    from shipyard.loop._rules import rules_text

    cfg = load_project(config)
    lines = rules_text(cfg.incidents.rules)
    if not lines:
        console.print(
            "no incident rules (incidents.rules in shipyard.yaml); the sources still make incidents"
        )
    for line in lines:
        console.print(escape(line), highlight=False)


@rules_app.command("backfill")
@handle_errors
def backfill_cmd(
    since: str | None = typer.Option(
        None, "--since", help="Only interactions newer than this (90m, 24h, 7d)."
    ),
    agent: str | None = typer.Option(None, "--agent", "-a", help="Only this agent."),
    rules_only: bool = typer.Option(False, "--rules-only", help="Apply only the rules, not the sources."),
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
) -> None:
    """Apply the incident sources and rules to stored interactions (the past, not only new traffic).
    Running it twice adds nothing: each interaction counts once per source.

    Example: shipyard incidents rules backfill --since 7d --agent support
    """
    from shipyard.config import parse_window
    from shipyard.loop import IncidentWatcher, backfill
    from shipyard.store import Store

    cfg = load_project(config)
    start = None
    if since is not None:
        try:
            start = time.time() - parse_window(since)
        except ValueError as e:
            raise fail(f"--since {since!r}: {e}") from None
    with Store.from_config(cfg) as store:
        watcher = IncidentWatcher(cfg.incidents, store)  # delivers the rules' webhooks
        try:
            with console.status("backfilling...") as status:
                result = backfill(
                    store,
                    cfg.incidents,
                    agent=agent,
                    since=start,
                    rules_only=rules_only,
                    record=watcher.record_many,
                    progress=lambda n: status.update(f"backfilling: {n} interactions looked at"),
                )
        finally:
            watcher.close()
    figures = {
        "scanned": result.scanned,
        "signals": result.signals,
        "opened": result.opened,
        "grouped": result.grouped,
        "already_recorded": result.already,
        "incidents": len(result.incidents),
    }
    if as_json:
        typer.echo(_dumps(figures))
        return
    table = Table("interactions", "signals", "new incidents", "grouped", "already recorded", box=None,
                  header_style="bold")  # fmt: skip
    table.add_row(*(str(figures[k]) for k in ("scanned", "signals", "opened", "grouped", "already_recorded")))
    console.print(table)
