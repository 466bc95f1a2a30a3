"""`shipyard prompts lint` and `shipyard prompts diff`."""

import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, fail, handle_errors, load_project

prompts_app = typer.Typer(
    help="Prompt bundles: lint them against the agent's tools and variables, diff two versions.\n\n"
    "Example: shipyard prompts lint support",
    no_args_is_help=True,
)
app.add_typer(prompts_app, name="prompts")


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--var {pair!r} is not KEY=VALUE", hint="example: --var product=Acme")
        out[key.strip()] = value
    return out


def _show(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


@prompts_app.command("lint")
@handle_errors
def lint(
    agents: list[str] = typer.Argument(None, help="Agents to lint (default: all in shipyard.yaml)."),
    path: Path | None = typer.Option(None, "--path", help="Lint this bundle folder, without a config."),
    var: list[str] = typer.Option([], "--var", help="KEY=VALUE template variable (with --path)."),
    config: Path | None = ConfigOption,
) -> None:
    """Lint prompt bundles against the agent's tools and prompt variables.

    Finds missing or empty files, template variables with no value, unbalanced braces, tool
    descriptions that do not match the registered tools, and bad version labels. Exit code 0
    when there are no errors (warnings are allowed), 1 when there are, 2 on a usage error.

    Example: shipyard prompts lint support

    Example: shipyard prompts lint --path prompts/support --var product=Acme
    """
    from shipyard.cli._lint_targets import Target, agent_targets
    from shipyard.prompts import lint_bundle

    if path is not None:
        if agents:
            raise fail("give either agent names or --path, not both")
        targets = [Target(str(path), path, None, _parse_vars(var))]
    else:
        targets = agent_targets(load_project(config), agents or [])
    errors = warnings = 0
    for t in targets:
        issues = [t.problem] if t.problem else []
        issues += lint_bundle(t.path, tools=t.tools, variables=t.variables)
        errors += sum(i.severity == "error" for i in issues)
        warnings += sum(i.severity == "warning" for i in issues)
        folder = _show(str(t.path))
        if not issues:
            console.print(f"[green]ok[/] {escape(t.title)} ({escape(folder)})")
            continue
        table = Table(title=f"{escape(t.title)} ({escape(folder)})", title_justify="left", expand=False)
        table.add_column("", no_wrap=True)
        table.add_column("where", overflow="fold")
        table.add_column("problem", overflow="fold")
        for i in issues:
            style = "red" if i.severity == "error" else "yellow"
            where = _show(i.file)
            where = where[len(folder) + 1 :] if where.startswith(folder + os.sep) else where
            table.add_row(f"[{style}]{i.severity}[/]", escape(f"{where}:{i.line}" if i.line else where),
                          escape(i.message))  # fmt: skip
        console.print(table)
    console.print(f"{len(targets)} bundle(s): {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


def _resolve(ref: str, cfg_path: Path | None, agent: str | None) -> Any:
    """A bundle from a folder, `REV:path`, or `REV` (the agent's bundle folder at that revision)."""
    from shipyard.prompts import PromptBundleError, load_bundle

    if Path(ref).is_dir():
        return load_bundle(ref)
    if Path(ref).exists():
        raise fail(f"{ref!r} is a file, not a prompt bundle folder", hint="give the bundle's folder")
    try:
        return _from_git(ref, cfg_path, agent)
    except PromptBundleError as e:  # neither: say both, the folder first (what a path-like ref meant)
        raise fail(
            f"no folder {ref!r} in {Path.cwd()}, and as a git revision: {e.message}",
            hint=e.hint,
        ) from None


def _from_git(ref: str, cfg_path: Path | None, agent: str | None) -> Any:
    """The bundle `ref` names as `REV:path`, or `REV` (the agent's bundle folder at that revision)."""
    from shipyard.prompts import load_bundle_from_git

    rev, sep, rel = ref.partition(":")
    if sep and rev:
        return load_bundle_from_git(Path.cwd(), rev, rel)
    cfg = load_project(cfg_path)
    with_bundle = sorted(n for n, a in cfg.agents.items() if a.prompts)
    if agent is None:
        if len(with_bundle) != 1:
            raise fail(
                f"{ref!r} is not a folder, so it is read as a git revision of an agent's bundle, "
                f"but there are {len(with_bundle)} agents with bundles ({', '.join(with_bundle) or 'none'})",
                hint="name one with --agent NAME, or give REV:path",
            )
        agent = with_bundle[0]
    if agent not in cfg.agents or not cfg.agents[agent].prompts:
        raise fail(
            f"agent {agent!r} has no prompt bundle in {cfg.path}", hint=f"agents with one: {with_bundle}"
        )
    return load_bundle_from_git(cfg.root, ref, cfg.resolve(cfg.agents[agent].prompts).resolve())


_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"), ("\\", "dim"))


@prompts_app.command("diff")
@handle_errors
def diff(
    a: str = typer.Argument(..., help="Old bundle: a folder, a git revision, or REV:path."),
    b: str = typer.Argument(..., help="New bundle: a folder, a git revision, or REV:path."),
    agent: str | None = typer.Option(None, "--agent", "-a", help="Whose bundle a bare revision means."),
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit 1 when the bundles differ (like git diff)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Show what changed between two prompt bundles (folders or git revisions).

    Prints coloured unified diffs per file, then a summary: files and lines changed, the label
    change, and tool description changes by tool.

    Example: shipyard prompts diff HEAD~1 HEAD --agent support

    Example: shipyard prompts diff v1.2.0:prompts/support prompts/support
    """
    from shipyard.prompts import diff_bundles, summarize_diff

    old, new = _resolve(a, config, agent), _resolve(b, config, agent)
    files = diff_bundles(old, new)
    for f in files:
        for line in f.diff.splitlines():
            style = next((s for prefix, s in _STYLES if line.startswith(prefix)), "")
            text = escape(line)
            console.print(f"[{style}]{text}[/]" if style else text, highlight=False, soft_wrap=True)
        console.print()
    summary = summarize_diff(old, new, files)
    for line in summary.lines():
        console.print(escape(line), highlight=False)
    if exit_code and summary.changed:
        raise typer.Exit(1)
