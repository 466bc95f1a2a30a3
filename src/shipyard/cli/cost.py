"""`shipyard cost report`: what the agents spent on model calls and what caches and routing saved,
from the cost ledger, per user, session, feature, model, version, day, ..."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from shipyard.cli._app import ConfigOption, app, console, fail, handle_errors, load_project

if TYPE_CHECKING:
    from rich.table import Table

    from shipyard.cost import CostReport, CostRow

cost_app = typer.Typer(
    help="Cost control: the cost ledger (one priced row per model call, with what caches and "
    "routing saved).\n\nExample: shipyard cost report --by user --since 24h --top 10",
    no_args_is_help=True,
)
app.add_typer(cost_app, name="cost")

_BY_HELP = "request, session, user, api_key, feature, agent, version, model, tier, traffic_source or day"


def _usd(x: float) -> str:
    return f"${x:,.4f}" if x < 100 else f"${x:,.2f}"


def _tokens(n: int, part: int) -> str:
    return f"{n:,}" + (f" ({part:,})" if part else "")


def _table(report: "CostReport", since_text: str | None) -> "Table":
    from rich.table import Table

    window = f"since {since_text}" if since_text else "all time"
    filters = "".join(f", {k}={v}" for k, v in report.filters.items())
    shown = f"top {report.top}" if report.top else "all"
    table = Table(
        title=f"Cost by {report.by} ({window}{filters}; {shown})",
        title_justify="left",
        caption="spent: model calls; saved: what caches and routing did not spend",
    )
    labels = [len(r.label) for r in report.rows if r.key is None]  # "(no model call: cache)" on one line
    table.add_column(report.by, overflow="fold", min_width=max([9, *labels]))
    for name in ("spent", "saved", "saved %"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("saved by", min_width=8)
    for name in ("calls", "interactions", "tokens in (cached) / out"):
        table.add_column(name, justify="right", no_wrap=True)

    def add(row: "CostRow", label: str, *, end_section: bool = False) -> None:
        share = row.saved_share
        table.add_row(
            escape(label),
            _usd(row.spent_usd),
            _usd(row.saved_usd),
            f"{share:.0%}" if share is not None else "-",
            ", ".join(f"{r} {_usd(v)}" for r, v in sorted(row.savings.items(), key=lambda i: -i[1])) or "-",
            f"{row.calls:,}",
            f"{row.interactions:,}",
            f"{_tokens(row.input_tokens, row.cached_input_tokens)} / {_tokens(row.output_tokens, row.reasoning_tokens)}",
            end_section=end_section,
        )

    for i, row in enumerate(report.rows):
        add(row, row.label, end_section=i == len(report.rows) - 1)
    add(report.total, report.total.label)
    return table


@cost_app.command("report")
@handle_errors
def report(
    by: str = typer.Option("user", "--by", "-b", help=f"Group by: {_BY_HELP}."),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Only calls since this long ago (90s, 15m, 24h, 7d) or this UTC date (2026-12-01).",
    ),
    top: int | None = typer.Option(
        None, "--top", "-n", min=1, max=100_000, help="At most this many rows, biggest spend first."
    ),
    agent: str | None = typer.Option(None, "--agent", help="Only this agent's calls."),
    traffic_source: str | None = typer.Option(
        None,
        "--traffic-source",
        help="Only this traffic: production, canary, eval, shadow or replay (default: all of it).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the report as CSV."),
    config: Path | None = ConfigOption,
) -> None:
    """Spend and savings from the cost ledger, per user, session, feature, model, version or day.

    Also per request, api_key, agent, tier or traffic_source; the last row is the total over
    everything in the window. Features are what agents tag (`ctx.tag_feature`) and flags attach
    (flag metadata `feature`).

    Example: shipyard cost report --by feature --since 7d --top 10 --csv > features.csv
    """
    from shipyard.cost import REPORT_DIMENSIONS, cost_report, parse_since
    from shipyard.store import Store

    if by not in REPORT_DIMENSIONS:
        raise fail(f"--by {by!r} is not a report dimension", hint=f"use one of: {_BY_HELP}")
    if as_json and as_csv:
        raise fail("--json and --csv cannot be used together", hint="pick one output format")
    start = None
    if since is not None:
        try:
            start = parse_since(since)
        except ValueError as e:
            raise fail(f"--since: {e}", hint="e.g. --since 24h or --since 2026-12-01") from None
    filters = {k: v for k, v in (("agent", agent), ("traffic_source", traffic_source)) if v is not None}
    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        result = cost_report(store, by, since=start, top=top, filters=filters)
    if as_json:
        import orjson

        print(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    elif as_csv:
        print(result.to_csv(), end="")
    elif not result.rows:
        console.print(
            f"no model calls in the ledger{' since ' + since if since else ''}"
            f"{''.join(f' for {k}={v}' for k, v in filters.items())}: nothing was spent",
            highlight=False,
        )
    else:
        console.print(_table(result, since))
