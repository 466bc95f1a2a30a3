"""`shipyard init`, `run`, `versions`, `version`."""

import json
import shutil
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from shipyard.cli._app import ConfigOption, app, console, fail, handle_errors, load_project, start_up

STATUS_STYLE = {
    "completed": "green",
    "escalated": "yellow",
    "failed": "red",
    "blocked": "magenta",
    "budget_exceeded": "cyan",
}


def print_tree(lines: list[str]) -> None:
    """Print a trace tree, colouring what matters."""
    for line in lines:
        text = escape(line)
        for word, style in (
            ("Status: success", "green"),
            ("ERROR", "red"),
            ("Status: error", "red"),
            ("Status: invalid_arguments", "red"),
            ("Status: not_found", "red"),
        ):
            text = text.replace(word, f"[{style}]{word}[/]")
        if line.startswith("Total:"):
            text = f"[bold]{text}[/]"
        console.print(text, highlight=False, soft_wrap=True)


@app.command()
def version() -> None:
    """Print Shipyard's version.

    Example: shipyard version
    """
    from shipyard import __version__

    console.print(f"shipyard {__version__}")


def _templates() -> list[str]:
    """The starter projects `shipyard init --template` can write (folders of cli/_starter)."""
    from importlib import resources

    root = resources.files("shipyard.cli") / "_starter"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


@app.command()
@handle_errors
def init(
    directory: Path = typer.Argument(Path("."), help="Folder to create the project in."),
    template: str = typer.Option(
        "default",
        "--template",
        "-t",
        help="Starter project: default (a plain Shipyard agent), or an agent written with a framework "
        "(openai-agents, langgraph, adk) wired to Shipyard. `--template list` lists them.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
) -> None:
    """Write a starter project that runs at once, offline.

    Example: shipyard init my-agent && cd my-agent && shipyard run assistant "What is 2 plus 3?"
    """
    from importlib import resources

    known = _templates()
    if template == "list":
        for name in known:
            console.print(name)
        return
    if template not in known:
        raise fail(f"no template {template!r} (templates: {', '.join(known)})")
    src = resources.files("shipyard.cli") / "_starter" / template
    directory.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    with resources.as_file(src) as root:
        for path in sorted(Path(root).rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.name == "NEXT.txt":
                continue
            rel = path.relative_to(root)
            name = str(rel).replace("_py.txt", ".py")  # packaged as text, so they are never imported
            dest = directory / name
            if dest.exists() and not force:
                skipped.append(name)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            written.append(name)
        after = Path(root) / "NEXT.txt"
        next_steps = after.read_text().strip() if after.is_file() else ""
    for name in written:
        console.print(f"  [green]created[/] {directory / name}")
    for name in skipped:
        console.print(f"  [yellow]kept[/]    {directory / name} (exists; --force overwrites)")
    here = directory.resolve() == Path.cwd().resolve()  # no `cd` step to the folder the user is in
    if next_steps:
        where = "" if here else f", in {directory}"
        console.print(f"\nNext{where}:\n{next_steps}", highlight=False, markup=False)
    else:
        first = "" if here else f"[bold]cd {escape(str(directory))}[/] and "
        console.print(f'\nNext: {first}[bold]shipyard run assistant "What is 2 plus 3?"[/]', highlight=False)


@app.command()
@handle_errors
def run(
    agent: str = typer.Argument(..., help="Agent name from shipyard.yaml."),
    user_input: str = typer.Argument(..., metavar="INPUT", help="What the user says."),
    session: str | None = typer.Option(
        None, "--session", "-s", help="Session id (continues a conversation)."
    ),
    user: str | None = typer.Option(None, "--user", "-u", help="User id."),
    version: str | None = typer.Option(
        None, "--version", "-v", help="Version label, hash or id (default: current)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the interaction record as JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """Run one interaction and print the output and its trace tree.

    Exit code 0 when the interaction completed or escalated, 1 when it failed.

    Example: shipyard run support "Where is my order 10001?" --session s1
    """
    import asyncio

    cfg = load_project(config)
    record = asyncio.run(_run_one(cfg, agent, user_input, session, user, version))
    if as_json:
        console.print_json(json.dumps(record.to_dict(spans=True), default=str))
    else:
        from shipyard.observe import trace_tree_lines

        style = STATUS_STYLE.get(record.status, "white")
        console.print(
            f"[bold]{escape(record.agent)}[/] [dim]{escape(record.version)}[/] "
            f"[{style}]{record.status}[/]  session {escape(record.session_id)}"
        )
        console.print(escape(record.output) if record.output else "[dim](no output)[/]", highlight=False)
        console.print()
        print_tree(trace_tree_lines(record))
    if record.status == "failed":
        raise typer.Exit(1)


async def _run_one(
    cfg: Any, agent: str, text: str, session: str | None, user: str | None, version: str | None
) -> Any:
    with start_up():  # what the interaction runs on, built before it runs
        from shipyard.flags import project_flags
        from shipyard.runtime import Runtime
        from shipyard.store import BatchWriter, Store

        store = Store.from_config(cfg)
        writer = BatchWriter(store)
        rt = Runtime(cfg, store=store, writer=writer)
    rt.flags, _ = project_flags(cfg, start=False)  # ctx.flags reads the project's flag file, as served
    try:
        history = _history(store, session) if session else []
        with start_up():  # a framework's lazy start-up is not this latency
            not_ready = await rt.warm_up(agent, version, content_mask=_guarded(cfg, agent))
        if not_ready:
            raise fail(
                f"agent {agent!r} is not ready: {'; '.join(not_ready.values())}", hint="nothing was run"
            )
        return await rt.invoke(
            agent, text, session_id=session, user_id=user, version=version, history=history
        )
    finally:
        await rt.aclose()
        writer.close()
        store.close()
        await _flush_traces()


def _guarded(cfg: Any, agent: str) -> bool:
    """Whether the agent has guardrails (which may scan its texts for PII while it runs): then the PII
    detectors load before it runs. Without, they are left to load when the one record is masked,
    after its latency is taken, and only as far as its texts need them."""
    spec = cfg.agents.get(agent)
    return spec is not None and any(
        getattr(spec.guardrails, stage) for stage in ("input", "tool_call", "tool_result", "output")
    )


async def _flush_traces() -> None:
    """Send the traces still queued for OTLP before the process exits (OTEL_EXPORTER_OTLP_ENDPOINT)."""
    import asyncio

    from shipyard.observe import flush_export

    await asyncio.to_thread(flush_export)


def _history(store: Any, session: str) -> list[dict[str, Any]]:
    """The earlier turns of a session, as chat messages."""
    turns = store.list_interactions(session_id=session, limit=50)
    messages: list[dict[str, Any]] = []
    for r in sorted(turns, key=lambda r: r.created_at):
        messages.append({"role": "user", "content": r.input})
        if r.output:
            messages.append({"role": "assistant", "content": r.output})
    return messages


@app.command()
@handle_errors
def versions(
    agent: str | None = typer.Argument(None, help="Only this agent."),
    config: Path | None = ConfigOption,
) -> None:
    """List agent versions: label + content hash of code, prompt bundle and model settings.

    Example: shipyard versions support
    """
    from shipyard.runtime import agent_versions
    from shipyard.store import Store

    cfg = load_project(config)
    names = [agent] if agent else sorted(cfg.agents)
    if agent and agent not in cfg.agents:
        raise fail(f"no agent named {agent!r} in {cfg.path}", hint=f"agents: {', '.join(sorted(cfg.agents))}")
    store = Store.from_config(cfg)
    try:
        seen = {row["version"]: row for row in store.list_agent_versions()}
    finally:
        store.close()
    from rich.table import Table  # here: `run` prints no table

    table = Table(
        title="Agent versions",
        caption="components: content hashes of code/prompts/model/tools/config (/routing when routed)",
    )
    for col in ("version id", "", "components", "last run"):
        table.add_column(col, no_wrap=True)
    for name in names:
        for i, v in enumerate(agent_versions(cfg, name)):
            row = seen.get(v.id)
            c = v.components
            table.add_row(
                v.id,
                "[green]current[/]" if i == 0 else "",
                "/".join(
                    c[k][:7] or "-"
                    for k in ("code", "prompts", "model", "tools", "config", "routing")
                    if k in c
                ),
                str(row["last_seen"])[:16] if row else "[dim]never[/]",
            )
    console.print(table)
