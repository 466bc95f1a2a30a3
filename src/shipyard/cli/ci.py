"""`shipyard ci run | init`, `shipyard approve RUN` and `shipyard checklist`."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._app import ConfigOption, app, console, err_console, fail, handle_errors, load_project

if TYPE_CHECKING:
    from shipyard.pipeline import StageResult

ci_app = typer.Typer(
    help="The CI/CD pipeline: pre-merge, post-merge and production stages, and CI workflow files.\n\n"
    "Example: shipyard ci run pre-merge",
    no_args_is_help=True,
)
app.add_typer(ci_app, name="ci")

STYLE = {"pass": "green", "fail": "red", "waiting": "yellow", "error": "red"}


def _summary_table(results: "list[StageResult]") -> Table:
    table = Table(title="shipyard ci run", title_justify="left")
    for col in ("stage", "result", "run", "checks", "failed or waiting", "time"):
        table.add_column(col, overflow="fold", no_wrap=col in ("stage", "result", "time"))
    for r in results:
        bad = [c for c in r.checks if not c.passed]
        shown = ", ".join(c.name for c in bad)
        passed = sum(1 for c in r.checks if c.passed)
        table.add_row(
            r.stage,
            f"[{STYLE.get(r.status, 'white')}]{r.status.upper()}[/]",
            (r.run_id or "-")[:12],
            f"{passed}/{len(r.checks)}",
            escape(shown) or "-",
            f"{r.duration_s:.1f}s",
        )
    return table


@ci_app.command("run")
@handle_errors
def ci_run(
    stage: str | None = typer.Argument(
        None, help="pre-merge, post-merge or production (default: every stage of pipeline.stages, in order)."
    ),
    agent: str | None = typer.Option(
        None, "--agent", "-a", help="The agent (default: pipeline.agent or the only one)."
    ),
    version: str | None = typer.Option(
        None, "--version", "-v", help="The candidate: a version label, hash or id (default: current)."
    ),
    base: str | None = typer.Option(
        None, "--base", help="The base branch, a git ref (default: pipeline.base_ref)."
    ),
    base_version: str | None = typer.Option(
        None, "--base-version", help="Compare with this version of the project instead of a git commit."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Where the JUnit files, comment.md and summary.json go (default: .shipyard/ci/reports).",
    ),
    run: str | None = typer.Option(
        None, "--run", help="production only: decide again on this stored run (after `shipyard approve`)."
    ),
    concurrency: int = typer.Option(8, "--concurrency", "-j", min=1, help="Eval repeats in flight at once."),
    config: Path | None = ConfigOption,
) -> None:
    """Run the pipeline's stages in order, stopping at the first that does not pass.

    pre-merge: prompt lint, tool definitions, config analysis, the project's tests, the evals the change
    touches (model calls replayed from .shipyard/ci/replay when this version ran them before) and
    regression against the base branch. post-merge: a staging `shipyard serve`, its health checks, the
    broad, safety and integration suites through its HTTP API, a latency and cost benchmark.
    production: full and adversarial suites, cross-model consistency, human review and red-team
    sign-off when the change needs them.

    Each stage writes <stage>.xml (JUnit); the run writes comment.md (for the pull request) and
    summary.json.

    Exit codes: 0 every stage passed; 1 a stage failed; 2 usage or config error; 3 a stage waits for
    an approval (`shipyard approve RUN`, then `shipyard ci run production --run RUN`).

    Example: shipyard ci run pre-merge --base origin/main
    """
    from shipyard import _aio
    from shipyard.pipeline import CiOptions, exit_code, run_pipeline

    cfg = load_project(config)
    if run is not None and stage != "production":
        raise fail("--run applies to the production stage: shipyard ci run production --run RUN")
    stages = [stage.replace("_", "-")] if stage else list(cfg.pipeline.stages)
    options = CiOptions(
        agent=agent,
        version=version,
        base=base,
        base_version=base_version,
        out=out,
        concurrency=concurrency,
        run=run,
        console=err_console,
    )
    results = _aio.run(run_pipeline(cfg, stages, options))
    console.print(_summary_table(results))
    for r in results:
        for c in r.checks:
            if not c.passed:
                state = "needs approval" if c.within_margin else "failed"
                console.print(
                    f"[red]{r.stage}: {escape(c.name)} {state}:[/] {escape(c.detail)}", highlight=False
                )
        for note in r.notes:
            console.print(f"[dim]{r.stage}:[/] {escape(note)}", highlight=False)
    reports = options.out or cfg.root / ".shipyard" / "ci" / "reports"
    console.print(f"[dim]reports: {reports}/ (comment.md, summary.json, <stage>.xml)[/]")
    raise typer.Exit(exit_code(results))


@app.command("approve")
@handle_errors
def approve(
    run_ref: str = typer.Argument(
        ..., metavar="RUN", help="The run waiting for approval (id or unique prefix)."
    ),
    by: str = typer.Option(..., "--by", help="Who approves."),
    reason: str = typer.Option(..., "--reason", help="Why it may ship."),
    red_team: bool = typer.Option(
        False, "--red-team", help="Record this as the red-team sign-off the production stage asks for."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Record an approval of a gate decision that waits for one (MARGINAL, or a required review).
    A FAIL can never be approved. Same as `shipyard gate approve`, plus --red-team.

    Example: shipyard approve 3f2a9c --by alice --reason "reviewed the refund wording with legal"
    """
    from shipyard.cli.evals import gate_approve
    from shipyard.pipeline import RED_TEAM_PREFIX

    text = reason.strip()
    if red_team and text:
        text = RED_TEAM_PREFIX + text
    gate_approve(run_ref=run_ref, by=by, reason=text, config=config)


@ci_app.command("init")
@handle_errors
def ci_init(
    github: bool = typer.Option(False, "--github", help="Write .github/workflows/shipyard.yml."),
    gitlab: bool = typer.Option(False, "--gitlab", help="Write .gitlab-ci.yml."),
    agent: str | None = typer.Option(
        None, "--agent", "-a", help="The agent (default: pipeline.agent or the only one)."
    ),
    install: str = typer.Option(
        "pip install shipyard",
        "--install",
        help="The command that installs Shipyard and the agent's dependencies.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite workflow files that exist."),
    config: Path | None = ConfigOption,
) -> None:
    """Write CI workflow files: pre-merge on pull requests (with the PR comment), post-merge and the
    production gate on merges, the replay cache kept between runs, and manual approval through the
    protected `production` environment. Files go to the top of the git repository (else the project).

    Example: shipyard ci init --github
    """
    from shipyard.pipeline import pick_agent, render_templates, repo_root

    if github == gitlab:
        raise fail("choose one of --github or --gitlab", hint="shipyard ci init --github")
    cfg = load_project(config)
    name = pick_agent(cfg, agent)
    top = repo_root(cfg.root) or cfg.root
    project = (
        cfg.root.resolve().relative_to(top.resolve()).as_posix()
        if cfg.root.resolve().is_relative_to(top.resolve())
        else ""
    )
    project = "" if project == "." else project
    cfg_path = (cfg.path or cfg.root / "shipyard.yaml").resolve()
    config_rel = (
        cfg_path.relative_to(top.resolve()).as_posix()
        if cfg_path.is_relative_to(top.resolve())
        else str(cfg_path)
    )
    templates = render_templates(
        github=github, gitlab=gitlab, agent=name, project=project, config=config_rel, install=install
    )
    for t in templates:
        target = top / t.path
        if target.exists() and not force:
            raise fail(f"{target} exists; pass --force to overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(t.text)
        console.print(f"[green]wrote[/] {escape(str(target))}")
    if github:
        console.print(
            "next: create the `production` environment with required reviewers (Settings > Environments), "
            "and optionally a SHIPYARD_DATABASE_URL secret for a shared store",
            highlight=False,
        )
    else:
        console.print(
            "next: protect the `production` environment (Settings > CI/CD > Protected environments), add a "
            "SHIPYARD_GITLAB_TOKEN variable (api scope) for MR notes, optionally SHIPYARD_DATABASE_URL",
            highlight=False,
        )


@app.command("checklist")
@handle_errors
def checklist(
    agent: str | None = typer.Option(
        None, "--agent", "-a", help="The agent (default: pipeline.agent or the only one)."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown or json."),
    config: Path | None = ConfigOption,
) -> None:
    """The launch checklist: eval suites per category, a hard safety gate, latency and cost gates,
    budgets, alerts with a target, a tracing exporter, PII redaction, kill switches on risky tools,
    a rehearsed rollback, versioned prompts, a CI workflow and guardrails. Each item is pass, fail or
    warning with its evidence and the fix.

    Exit codes: 0 every required item passes; 1 a required item fails; 2 usage or config error.

    Example: shipyard checklist --format markdown > LAUNCH.md
    """
    import orjson

    from shipyard.pipeline import checklist_failed, pick_agent, run_checklist
    from shipyard.pipeline import render_checklist as render_markdown

    if fmt not in ("table", "markdown", "json"):
        raise fail(f"--format must be table, markdown or json, got {fmt!r}")
    cfg = load_project(config)
    name = pick_agent(cfg, agent)
    items = run_checklist(cfg, name)
    failed = checklist_failed(items)
    if fmt == "json":
        doc = {"agent": name, "ready": not failed, "items": [i.to_dict() for i in items]}
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        print(render_markdown(items, name), end="")
    else:
        style = {"pass": "green", "fail": "red", "warning": "yellow"}
        table = Table(title=f"Launch checklist: {name}", title_justify="left")
        for col in ("item", "result", "evidence", "fix"):
            table.add_column(col, overflow="fold")
        for i in items:
            table.add_row(
                i.title + ("" if i.required else " [dim](optional)[/]"),
                f"[{style[i.result]}]{i.result}[/]",
                escape(i.evidence),
                escape(i.fix),
            )
        console.print(table)
        bad = sum(1 for i in items if i.required and i.result == "fail")
        console.print("[green]READY[/]" if not failed else f"[red]NOT READY[/]: {bad} required item(s) fail")
    raise typer.Exit(1 if failed else 0)
