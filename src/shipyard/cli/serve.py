"""`shipyard serve`, `keys`, `alerts` and `traces`."""

import time
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from shipyard._closed_sets import InteractionStatus  # not shipyard.types: --help uses no value type
from shipyard.cli._app import ConfigOption, app, console, err_console, fail, handle_errors, load_project

keys_app = typer.Typer(
    help="API keys with roles (invoke, read, admin), stored hashed.\n\n"
    "Example: shipyard keys create --role invoke --name web-frontend",
    no_args_is_help=True,
)
traces_app = typer.Typer(
    help="Traces of served interactions, read from the store.\n\n"
    "Example: shipyard traces list --status failed",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(traces_app, name="traces")

STATE_STYLE = {"ok": "green", "no_data": "dim", "warn": "yellow", "alert": "bold red"}
SHORT_ID = 12
"""How much of a trace id `traces list` shows: unique in practice (48 random bits) and accepted by
`traces show` as a prefix."""
STATUS_STYLE = {"HEALTHY": "bold green", "DEGRADED": "bold yellow", "DOWN": "bold red"}


@app.command()
@handle_errors
def serve(
    host: str | None = typer.Option(None, "--host", help="Address to listen on (default: server.host)."),
    port: int | None = typer.Option(
        None, "--port", "-p", min=1, max=65535, help="Port (default: server.port)."
    ),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: 1)."),
    fsync: str = typer.Option(
        "never",
        "--journal-fsync",
        help="never (survives kill -9) | batch | always (survives power loss; slower).",
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning | error."),
    no_auth: bool = typer.Option(
        False,
        "--no-auth",
        help="Answer without API keys even when keys exist (loopback only; everything local is admin).",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Serve the project's agents over HTTP, with the dashboard and metrics.

    /v1/agents/{agent}/invoke, /v1/chat/completions (OpenAI
    compatible), /v1/feedback, /metrics, /admin, /dashboard, /openapi.json. Logs are JSON lines on stdout.

    On loopback with no API key ever made, anyone on this machine may call it (as admin). Once a key
    exists, or on any other address, every request needs a key; revoking all keys leaves nobody
    allowed until a restart with --no-auth (loopback only). The first key: `shipyard keys create`.

    Config changes apply without a restart: the server reloads shipyard.yaml (and the prompt bundles
    and rules files it names) when they change, on SIGHUP (`kill -HUP PID`; with --workers, sent to
    the parent, every worker reloads), and on `POST /admin/config/reload` (admin key). The new config
    is checked in full first; on any error the running one stays and `GET /admin/config` says why.
    Address, port, workers, store and flags settings need a restart; so does changed agent code.

    Start-up fails fast: a busy port, an unreachable database or Redis, or a schema it cannot migrate
    is one error line and exit code 2. SIGTERM / SIGINT drain (server.drain): /readyz answers 503,
    requests in flight finish (up to drain.timeout_s), the journal moves into the store, exit 0.

    With --workers N, /metrics of any worker shows the sum of all of them; budgets and rate_limits
    then need backend: redis. Rate limits (rate_limits:) answer 429 with Retry-After.

    Example: shipyard serve --port 8000  (then: curl -H 'Content-Type: application/json'
    -d '{"input": "hi"}' localhost:8000/v1/agents/support/invoke)
    """
    from shipyard.server import check_redis, is_loopback, require_gate
    from shipyard.server import serve as run_server
    from shipyard.store import Store

    if fsync not in ("never", "batch", "always"):
        raise fail(f"--journal-fsync must be never, batch or always, got {fsync!r}")
    if log_level not in ("debug", "info", "warning", "error"):
        raise fail(f"--log-level must be debug, info, warning or error, got {log_level!r}")
    cfg = load_project(config)
    if not cfg.agents:
        raise fail(f"{cfg.path}: no agents to serve", hint="add an agent under `agents:` in shipyard.yaml")
    host = host or cfg.server.host
    port = port or cfg.server.port
    if no_auth and not is_loopback(host):
        raise fail(
            f"--no-auth is allowed on loopback only, not on {host}",
            hint="use API keys (`shipyard keys create --role admin`) or --host 127.0.0.1",
        )
    require_gate(cfg.server.require_gate, host)  # off is for loopback only (a user error, exit 2)
    n_workers = workers or cfg.server.workers
    if n_workers > 1 and cfg.budgets.on and cfg.budgets.backend == "memory":
        raise fail(
            f"{cfg.path}: budgets.backend memory keeps its counters in one process; {n_workers} workers "
            "would each allow the whole budget",
            hint="set budgets.backend: redis (and budgets.redis_url), or serve with one worker",
        )
    if n_workers > 1 and cfg.rate_limits.enabled and cfg.rate_limits.backend == "memory":
        raise fail(
            f"{cfg.path}: rate_limits.backend memory counts in one process; {n_workers} workers would "
            "each allow the whole limit",
            hint="set rate_limits.backend: redis (and rate_limits.redis_url), or serve with one worker",
        )
    with Store.from_config(cfg) as store:  # unreachable, or a schema it cannot migrate: one line, exit 2
        rows = store.list_api_keys()
    check_redis(cfg)  # every Redis the config names answers (server/_preflight.py)
    valid = [r for r in rows if r["revoked_at"] is None]
    if no_auth:
        auth = "--no-auth: open to this machine, no key checked"
    elif rows or not is_loopback(host):
        auth = "API keys required"
        if not valid:
            err_console.print(
                "[yellow]no valid API key yet: every request will be refused[/] "
                "(create one with `shipyard keys create --role admin`; the server takes it at its first use)",
                highlight=False,
            )
    else:
        auth = "no API keys yet: open to this machine only"

    def ready() -> None:  # once the socket is bound and the app has started
        err_console.print(
            f"shipyard serving {', '.join(sorted(cfg.agents))} at [bold]http://{host}:{port}[/]  "
            f"({auth}; dashboard at /dashboard)",
            highlight=False,
        )

    run_server(
        cfg,
        host=host,
        port=port,
        workers=workers or cfg.server.workers,
        journal_fsync=fsync,  # type: ignore[arg-type]  # checked above
        log_level=log_level,
        no_auth=no_auth,
        on_ready=ready,
    )


# keys ---------------------------------------------------------------------------------------------------
@keys_app.command("create")
@handle_errors
def keys_create(
    role: str = typer.Option(..., "--role", "-r", help="invoke | read | admin."),
    name: str | None = typer.Option(None, "--name", "-n", help="A label people recognise."),
    config: Path | None = ConfigOption,
) -> None:
    """Create an API key and print it once (only its hash is stored).

    Example: shipyard keys create --role admin --name ops
    """
    from shipyard.server import ROLES, create_key
    from shipyard.store import Store

    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        created = create_key(store, role, name)
    err_console.print(
        f"created {role} key {created['prefix']} (id {created['id']}); it is shown once, keep it safe:",
        highlight=False,
    )
    print(created["key"])


@keys_app.command("list")
@handle_errors
def keys_list(config: Path | None = ConfigOption) -> None:
    """List API keys (prefix, role, name, created, revoked); never the keys or their hashes.

    Example: shipyard keys list
    """
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        rows = store.list_api_keys()
    table = Table(title="API keys")
    for col in ("id", "prefix", "role", "name", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["prefix"],
            r["role"],
            r["name"] or "",
            str(r["created_at"])[:19],
            str(r["revoked_at"])[:19] if r["revoked_at"] else "",
        )
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    ref: str = typer.Argument(..., help="The key's id or prefix."),
    config: Path | None = ConfigOption,
) -> None:
    """Revoke an API key (running servers stop accepting it within 10 s).

    Revoking a key that is already revoked changes nothing, says when it was revoked and exits 0,
    as `DELETE /admin/keys/{ref}` answers 200 with the first revocation time.

    Example: shipyard keys revoke shp_1a2b3c4d
    """
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        before = next((r for r in store.list_api_keys() if ref in (r["id"], r["prefix"])), None)
        row = store.revoke_api_key(ref)  # no such key: NotFoundError, exit 2
    if before is not None and before["revoked_at"] is not None:
        console.print(
            f"{escape(row['prefix'])} ({row['role']}) was already revoked at {str(row['revoked_at'])[:19]}; "
            "nothing changed",
            highlight=False,
        )
        return
    console.print(f"revoked {escape(row['prefix'])} ({row['role']})", highlight=False)


# alerts -------------------------------------------------------------------------------------------------
def _get(url: str, path: str, key: str | None, params: dict[str, Any] | None = None) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        resp = httpx.get(url.rstrip("/") + path, headers=headers, params=params, timeout=10)
    except httpx.HTTPError as e:
        raise fail(
            f"cannot reach the server at {url}: {e}", hint="is `shipyard serve` running there?"
        ) from None
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise fail(
            f"{url}{path} answered HTTP {resp.status_code}: {message}",
            hint="pass a key with --key or $SHIPYARD_API_KEY" if resp.status_code in (401, 403) else None,
        )
    return resp.json()


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric.endswith("_rate"):
        return f"{value:.1%}"
    if metric.startswith("cost"):
        return f"${value:.4f}"
    if metric.endswith("_s"):
        return f"{value:.2f}s"
    return f"{value:g}"


@app.command()
@handle_errors
def alerts(
    url: str | None = typer.Option(
        None, "--url", help="A running server (reads /admin/alerts); default: compute from the store."
    ),
    key: str | None = typer.Option(None, "--key", envvar="SHIPYARD_API_KEY", help="API key (read or admin)."),
    config: Path | None = ConfigOption,
) -> None:
    """Show each alert rule's state (ok / warn / alert / no_data) and the overall status.

    Exit code 0 when nothing is in `alert`, 1 when something is.

    Example: shipyard alerts --url http://127.0.0.1:8000 --key $KEY
    """
    if url:
        data = _get(url, "/admin/alerts", key)
        status, rules = data["status"], data["rules"]
        source = url
    else:
        status, rules = _alerts_from_store(load_project(config))
        source = "the store"
    table = Table(title=f"Alerts ({source})")
    for col in ("rule", "metric", "window", "state", "value", "warn", "alert", "samples", "since"):
        table.add_column(col)
    for r in rules:
        style = STATE_STYLE.get(r["state"], "white")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["since"])) if r.get("since") else ""
        table.add_row(
            r["name"],
            r["metric"],
            f"{r['window_s']:g}s",
            f"[{style}]{r['state']}[/]",
            _fmt(r["metric"], r["value"]),
            f"{r['comparator']} {_fmt(r['metric'], r['warn'])}" if r["warn"] is not None else "-",
            f"{r['comparator']} {_fmt(r['metric'], r['alert'])}" if r["alert"] is not None else "-",
            str(r["samples"]),
            since,
        )
    console.print(table)
    console.print(f"status: [{STATUS_STYLE.get(status, 'white')}]{status}[/]")
    if any(r["state"] == "alert" for r in rules):
        raise typer.Exit(1)


def _alerts_from_store(cfg: Any) -> tuple[str, list[dict[str, Any]]]:
    from shipyard.observe import AlertEngine, EventCounter, samples_from_records, source_from_samples
    from shipyard.store import Store

    rules = cfg.alerts.effective_rules()
    now = time.time()
    longest = max((r.window_s for r in rules), default=0.0)
    with Store.from_config(cfg) as store:
        records = store.list_interactions(since=now - longest, limit=None)
        dead = EventCounter(store.dead_letter_times(now - longest))
    engine = AlertEngine(
        rules, source_from_samples(samples_from_records(records)), counters={"dead_letters": dead}
    )
    engine.evaluate(now)
    return engine.status(), [s.to_dict() for s in engine.states()]


# traces -------------------------------------------------------------------------------------------------
@traces_app.command("list")
@handle_errors
def traces_list(
    session: str | None = typer.Option(None, "--session", "-s", help="Only this session."),
    status: InteractionStatus | None = typer.Option(
        None, "--status", help="Only interactions that ended so."
    ),
    agent: str | None = typer.Option(None, "--agent", "-a", help="Only this agent."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="At most this many."),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON array of the interaction records (full ids) instead of a table."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """List recent traces, newest first. `traces show` takes a trace id, or its first characters.

    Example: shipyard traces list --session s1 --status failed
    """
    from shipyard.cli.core import STATUS_STYLE as RECORD_STYLE
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        records = store.list_interactions(
            agent=agent, session_id=session, status=status.value if status else None, limit=limit
        )
    if as_json:
        typer.echo(orjson.dumps([r.to_dict() for r in records], default=str, option=orjson.OPT_INDENT_2))
        return
    # the first 12 characters, whole (not cut by the table to "…"): what `traces show` takes as a prefix
    table = Table(title="Traces", caption="trace id: its first 12 characters; --json has the full ids")
    table.add_column("trace id", no_wrap=True, min_width=SHORT_ID)
    for col in ("when", "agent", "version", "session", "status", "latency", "cost", "tools"):
        table.add_column(col)
    for r in records:
        style = RECORD_STYLE.get(r.status, "white")
        table.add_row(
            escape(r.trace_id[:SHORT_ID]),
            time.strftime("%m-%d %H:%M:%S", time.localtime(r.created_at)),
            escape(r.agent),
            escape(r.version),
            escape(r.session_id),  # what the client sent: printed as it is, never as markup
            f"[{style}]{escape(r.status)}[/]",
            f"{r.latency_ms:.0f}ms",
            f"${r.cost_usd:.4f}",
            escape(", ".join(t.name for t in r.tool_calls)),
        )
    console.print(table)
    if not records:
        console.print("[dim]no traces match[/]")


@traces_app.command("show")
@handle_errors
def traces_show(
    ref: str = typer.Argument(..., help="A trace id or interaction id (a unique prefix works)."),
    config: Path | None = ConfigOption,
) -> None:
    """Print one trace as a tree: the request, each LLM call, each tool call, totals.

    Example: shipyard traces show 4bf92f3577b34da6a3ce929d0e0e4736  (or its first characters: 4bf92f35)
    """
    from shipyard.cli.core import print_tree
    from shipyard.observe import trace_tree_lines
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        record = store.find_interaction(ref, spans=True, prefix=True)
    if record is None:
        raise fail(
            f"no trace or interaction {ref!r} in the store", hint="list them with `shipyard traces list`"
        )
    console.print(
        f"[bold]{escape(record.agent)}[/] [dim]{escape(record.version)}[/] {escape(record.status)}  "
        f"trace {escape(record.trace_id)}  session {escape(record.session_id)}",
        highlight=False,
    )
    print_tree(trace_tree_lines(record))
