"""`shipyard cache show | clear`: the project's caches (`cache:` in shipyard.yaml), and invalidation
without a running server (on the SQLite file or Redis the servers share)."""

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, fail, handle_errors, load_project

cache_app = typer.Typer(
    help="The exact, semantic and tool-result caches (`cache:` in shipyard.yaml).\n\n"
    "Example: shipyard cache clear --agent support --version 1.0.0",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")


def _settings(cfg: Any) -> dict[str, Any]:
    c = cfg.cache
    return {
        "backend": c.backend,
        "where": str(cfg.resolve(c.path))
        if c.backend == "sqlite"
        else c.redis_url
        if c.backend == "redis"
        else None,
        "key_prefix": c.key_prefix or cfg.project,
        "traffic_sources": c.traffic_sources,
        "exact": {"ttl_s": c.exact.ttl_s} if c.exact is not None and c.exact.enabled else None,
        "semantic": {
            "ttl_s": c.semantic.ttl_s,
            "threshold": c.semantic.threshold,
            "embedding": c.semantic.embedding.provider,
        }
        if c.semantic is not None and c.semantic.enabled
        else None,
        "tools": {name: {"ttl_s": t.ttl_s} for name, t in sorted(c.tools.items())},
        "prompt_cache": c.prompt_cache,
    }


@cache_app.command("show")
@handle_errors
def show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    config: Path | None = ConfigOption,
) -> None:
    """Show the backend and each cache with its TTL.

    Example: shipyard cache show --json
    """
    s = _settings(load_project(config))
    if as_json:
        typer.echo(orjson.dumps(s).decode())
        return
    table = Table(title=f"caches: {s['backend']} backend" + (f" ({s['where']})" if s["where"] else ""))
    table.add_column("cache")
    table.add_column("on")
    table.add_column("settings")
    exact, semantic = s["exact"], s["semantic"]
    table.add_row("exact", "yes" if exact else "no", f"ttl {exact['ttl_s']:g}s" if exact else "")
    table.add_row(
        "semantic",
        "yes" if semantic else "no",
        f"ttl {semantic['ttl_s']:g}s, threshold {semantic['threshold']:g}, {semantic['embedding']} embedding"
        if semantic
        else "",
    )
    for name, t in s["tools"].items():
        table.add_row(f"tool {name}", "yes", f"ttl {t['ttl_s']:g}s")
    table.add_row(
        "provider prompt caches", "yes" if s["prompt_cache"] else "no", "stable prefix, cache hints"
    )
    console.print(table)


def _check_tool(cfg: Any, tool: str) -> None:
    """Refuse (exit 2) a tool that no version of any agent has: its results are never cached, so
    the name is a typo. A tool only a removed version had is refused too; its results expire with
    their TTL, and `--kind tool` clears every tool's. When an agent cannot be loaded, its tools are
    unknown and nothing is refused."""
    from shipyard.errors import ShipyardError
    from shipyard.runtime import agent_versions

    known: set[str] = set()
    for name in cfg.agents:
        try:
            known.update(n for v in agent_versions(cfg, name) for n in v.spec.tools.names())
        except ShipyardError:
            return
    if tool not in known:
        raise fail(
            f"no agent has a tool {tool!r} (tools: {', '.join(sorted(known)) or 'none'})",
            hint="check the spelling; `--kind tool` clears the results of every tool, a removed one's too",
        )


@cache_app.command("clear")
@handle_errors
def clear(
    agent: str | None = typer.Option(None, "--agent", "-a", help="Only this agent's answers."),
    version: str | None = typer.Option(
        None, "--version", "-v", help="Only this version's (label, hash or id)."
    ),
    kind: str | None = typer.Option(None, "--kind", "-k", help="exact, semantic or tool."),
    tool: str | None = typer.Option(None, "--tool", "-t", help="Only this tool's results."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """Delete cached entries: all of them, or an agent's, a version's, a kind's or a tool's.

    On the shared backend (the SQLite file or Redis): every server using it sees it at once.

    Example: shipyard cache clear --agent support --version 1.0.0
    """
    import asyncio

    from shipyard.cache import build_caches

    cfg = load_project(config)
    caches = build_caches(cfg)
    if caches is None:
        raise fail(
            "no cache is configured", hint="add a `cache:` section to shipyard.yaml (exact, semantic, tools)"
        )
    if cfg.cache.backend == "memory":
        raise fail(
            "the memory backend lives inside each server process; nothing here to clear",
            hint="ask the running server: POST /admin/cache/invalidate, or use backend sqlite or redis",
        )
    if version is not None:
        if agent is None:
            raise fail("--version needs --agent", hint="shipyard cache clear --agent support --version 1.0.0")
        from shipyard.runtime import Runtime

        version = Runtime(cfg).resolve_version(agent, version).id
    if agent is not None and agent not in cfg.agents:
        raise fail(f"no agent {agent!r} (agents: {', '.join(sorted(cfg.agents))})")
    if tool is not None:
        _check_tool(cfg, tool)

    async def run() -> int:
        try:
            return await caches.invalidate(kind=kind, agent=agent, version=version, tool=tool)
        finally:
            await caches.aclose()

    from redis.exceptions import RedisError

    try:
        deleted = asyncio.run(run())
    except ValueError as e:
        raise fail(str(e)) from None
    except (OSError, RedisError) as e:
        raise fail(f"cannot reach the cache backend ({cfg.cache.backend}): {e}", code=1) from None
    out = {"deleted": deleted, "agent": agent, "version": version, "kind": kind, "tool": tool}
    if as_json:
        typer.echo(orjson.dumps(out).decode())
    else:
        what = ", ".join(f"{k} {v}" for k, v in out.items() if k != "deleted" and v) or "everything"
        console.print(f"deleted {deleted} cache entr{'y' if deleted == 1 else 'ies'} ({what})")
