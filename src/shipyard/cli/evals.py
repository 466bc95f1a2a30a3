"""`shipyard eval run | compare | import`, `shipyard gate STAGE` and `shipyard gate approve RUN`."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from shipyard.cli._app import (
    ConfigOption,
    app,
    console,
    err_console,
    fail,
    handle_errors,
    load_project,
    start_up,
)
from shipyard.errors import NotFoundError, ShipyardError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shipyard.config import ShipyardConfig, StagePolicy
    from shipyard.evals import CaseChange, CaseRule, EvalRunResult, GateDecision, RunSummary, Suite
    from shipyard.store import Store

eval_app = typer.Typer(
    help="Run eval suites, compare runs, import suites from other tools.\n\n"
    "Example: shipyard eval run --agent support --suite evals/support/smoke.yaml",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


class _GateGroup(TyperGroup):
    """`shipyard gate STAGE ...` runs `gate check STAGE ...`; `shipyard gate approve RUN` approves."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["check", *args]
        return super().parse_args(ctx, args)


gate_app = typer.Typer(
    cls=_GateGroup,
    help="Gate a version on a stage's evals (exit 0 PASS, 1 FAIL, 3 MARGINAL awaiting approval, 2 usage "
    "or config error), or approve a MARGINAL run.\n\n"
    "Example: shipyard gate production --agent support --report junit:gate.xml",
    no_args_is_help=True,
)
app.add_typer(gate_app, name="gate")

ReportOption = typer.Option(
    None,
    "--report",
    "-r",
    metavar="KIND:PATH",
    help="Write a report: terminal, json:PATH, junit:PATH, html:PATH or markdown:PATH. Repeatable.",
)
ConcurrencyOption = typer.Option(
    None,
    "--concurrency",
    "-j",
    min=1,
    help="Most repeats in flight at once (default: adapts to the provider, from 8 up to 64, halving on a 429).",
    show_default=False,
)
ReplayOption = typer.Option(False, "--replay", help="Answer every model and tool call from the recording.")
RecordOption = typer.Option(False, "--record", help="Run live and record every call for later --replay.")
BudgetOption = typer.Option(
    None, "--budget", min=0.0, help="Stop the run cleanly once it has cost this (USD)."
)
VersionOption = typer.Option(None, "--version", "-v", help="Version label, hash or id (default: current).")
FAILED_EXIT_CODES = {"shipyard": 1, "promptfoo": 100}  # `eval run --exit-code STYLE` when a case failed


# running ------------------------------------------------------------------------------------------


def _mode(replay: bool, record: bool) -> Literal["live", "record", "replay"]:
    if replay and record:
        raise ShipyardError("--replay and --record exclude each other; pick one")
    return "replay" if replay else ("record" if record else "live")


def _suite_path(cfg: "ShipyardConfig", path: str) -> Path:
    """A suite named on the command line: relative to the current folder, else to shipyard.yaml."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else cfg.resolve(path)


def _reports(specs: list[str] | None) -> list[tuple[str, str]]:
    from shipyard.evals import parse_report_spec

    return [parse_report_spec(s) for s in specs or []]


async def _run_suites(
    cfg: "ShipyardConfig",
    store: "Store",
    agent: str,
    suites: "Sequence[Path | Suite]",
    *,
    version: str | None,
    stage: str | None,
    repeat: int | None,
    concurrency: int | None,
    mode: Literal["live", "record", "replay"],
    budget: float | None,
) -> "EvalRunResult":
    with start_up():  # what the run uses, built before it starts
        from shipyard.evals import EvalRunner, Suite, load_suite
        from shipyard.runtime import Runtime
        from shipyard.store import BatchWriter

        # every suite error is reported before anything runs
        loaded = [s if isinstance(s, Suite) else load_suite(s) for s in suites]
        writer = BatchWriter(store)
        rt = Runtime(cfg, store=store, writer=writer)
    try:
        runner = EvalRunner(
            rt, cfg, concurrency=concurrency, repeat=repeat, budget_usd=budget, mode=mode, console=err_console
        )
        return await runner.run(agent, loaded, version=version, stage=stage, progress=sys.stderr.isatty())
    finally:
        await rt.aclose()
        writer.close()
        # traces still queued for OTLP (OTEL_EXPORTER_OTLP_ENDPOINT) go before the process exits
        import asyncio

        from shipyard.observe import flush_export

        await asyncio.to_thread(flush_export)


def _status(result: "EvalRunResult") -> str:
    if result.interrupted:
        return "interrupted"
    return "budget_exhausted" if result.budget_exhausted else "finished"


def _save(store: "Store", summary: "RunSummary", status: str, decision: "GateDecision | None") -> None:
    """Store the full summary (keeping what the runner stored) and the decision on the run."""
    row = store.get_eval_run(summary.run_id) or {}
    stored = dict(row.get("summary") or {})
    stored.update(summary.to_dict())
    store.finish_eval_run(
        summary.run_id,
        status,
        summary=stored,
        decision=decision.to_dict() if decision else row.get("decision"),
    )


def _write_reports(
    reports: list[tuple[str, str]], run: Any, summary: "RunSummary", decision: "GateDecision | None"
) -> None:
    from shipyard.evals import write_report

    for kind, path in reports:
        if path == "-" and kind == "terminal":
            continue  # already printed
        write_report(kind, path, run, summary, decision)
        if path != "-":
            err_console.print(f"[dim]wrote {kind} report to {escape(path)}[/]")


def _find_run(store: "Store", ref: str) -> dict[str, Any]:
    """A stored run by id or unique id prefix."""
    run = store.get_eval_run(ref, prefix=True)
    if run is None:
        raise NotFoundError(
            f"no eval run {ref!r}", hint="`shipyard eval run` and `shipyard gate` print run ids"
        )
    return run


@eval_app.command("run")
@handle_errors
def eval_run(
    agent: str = typer.Option(..., "--agent", "-a", help="Agent name from shipyard.yaml."),
    suite: list[str] = typer.Option(
        ..., "--suite", "-s", help="Suite file (ours, promptfoo, ADK, JSONL). Repeatable."
    ),
    version: str | None = VersionOption,
    repeat: int | None = typer.Option(
        None, "--repeat", "-n", min=1, help="Repeats per case (default: the suite's)."
    ),
    concurrency: int | None = ConcurrencyOption,
    replay: bool = ReplayOption,
    record: bool = RecordOption,
    budget: float | None = BudgetOption,
    report: list[str] | None = ReportOption,
    stage: str | None = typer.Option(None, "--stage", help="Record the run as for this stage (no decision)."),
    exit_code: str = typer.Option(
        "shipyard",
        "--exit-code",
        metavar="STYLE",
        help="The exit code when a case failed: shipyard (1) or promptfoo (100, as `promptfoo eval`).",
    ),
    no_fail: bool = typer.Option(
        False, "--no-fail", help="Exit 0 whatever the cases did (reports only; never for a CI gate)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run eval suites against a version and report; the run is stored.

    Exit codes, as pytest and promptfoo: 0 only when every case ran and passed; 1 when any case
    failed or was ERROR, or the run stopped early (100 with `--exit-code promptfoo`); 2 when it could
    not run (usage or config error, a bad suite, an unknown tool name); 130 on Ctrl-C, which keeps
    the results so far. `--no-fail` exits 0 after a run with failures, for reports only. SKIPPED
    cases (they say why they did not run) do not change the exit code; they never count as passed,
    and a gate fails on them.

    Example: shipyard eval run --agent support --suite evals/support/smoke.yaml --repeat 3 --report html:report.html
    """
    from shipyard import _aio
    from shipyard.evals import print_report, summarize_run
    from shipyard.store import Store

    if exit_code not in FAILED_EXIT_CODES:
        raise fail(
            f"--exit-code {exit_code!r} is not a style; use one of: {', '.join(FAILED_EXIT_CODES)}",
            hint="shipyard exits 1 when a case failed, promptfoo 100",
        )
    cfg = load_project(config)
    reports = _reports(report)
    mode = _mode(replay, record)
    case_rule: CaseRule = "all"
    if stage:
        stage = stage.replace("_", "-")
        policy = cfg.gates.stages().get(stage)
        case_rule = policy.case_rule if policy else "all"
    with Store.from_config(cfg) as store:
        result = _aio.run(
            _run_suites(
                cfg,
                store,
                agent,
                [_suite_path(cfg, s) for s in suite],
                version=version,
                stage=stage,
                repeat=repeat,
                concurrency=concurrency,
                mode=mode,
                budget=budget,
            )
        )
        summary = summarize_run(result, case_rule)
        _save(store, summary, _status(result), None)
    print_report(summary, None, console)
    _write_reports(reports, result, summary, None)
    console.print(f"run id: [bold]{summary.run_id}[/]")
    if result.interrupted:
        raise typer.Exit(130)
    o = summary.overall
    if o.skipped:  # SKIPPED is not a failure of `eval run` (as in pytest), and never a pass
        err_console.print(
            f"[yellow]{o.skipped} case(s) SKIPPED, not run and not counted as passed "
            "(a gate fails on them); see the Skipped cases table for why[/]"
        )
    if o.passed + o.skipped == o.cases and o.cases > 0 and summary.complete:
        return
    not_run = (summary.planned_cases or 0) - len(summary.cases)
    said = f"{o.failed} failed, {o.errors} ERROR" + (f", {not_run} not run" if not_run > 0 else "")
    if no_fail:
        err_console.print(f"[yellow]{said}; exit 0 (--no-fail)[/]")
        return
    err_console.print(f"[red]{said} of {o.cases + max(not_run, 0)} case(s)[/]")
    raise typer.Exit(FAILED_EXIT_CODES[exit_code])


# comparing ----------------------------------------------------------------------------------------


@eval_app.command("compare")
@handle_errors
def eval_compare(
    run_a: str = typer.Argument(..., help="The earlier run (id or unique prefix)."),
    run_b: str = typer.Argument(..., help="The later run (id or unique prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    config: Path | None = ConfigOption,
) -> None:
    """Compare two stored runs case by case: regressed, improved, became flaky, still failing, new, removed.

    Exit codes: 0 when no case regressed; 1 when a case that passed in the earlier run does not pass in
    the later one (regressed); 2 usage or config error (an unknown run id).

    Example: shipyard eval compare 3f2a9c 8b1d07
    """
    from shipyard.evals import compare_runs, load_run_summary
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        a = load_run_summary(store, str(_find_run(store, run_a)["id"]))
        b = load_run_summary(store, str(_find_run(store, run_b)["id"]))
    if a.case_rule != b.case_rule:
        b = b.with_case_rule(a.case_rule)
    cmp = compare_runs(a, b)
    if as_json:
        console.print_json(data=cmp.to_dict())
        _exit_on_regression(cmp.regressed)
        return
    console.print(
        f"[bold]{escape(a.version)}[/] run {a.run_id}  →  [bold]{escape(b.version)}[/] run {b.run_id}"
    )
    a_rate, b_rate = a.overall.pass_rate, b.overall.pass_rate
    console.print(f"pass rate {100 * a_rate:.1f}% → {100 * b_rate:.1f}% · {cmp.unchanged} unchanged passing")
    sections = [
        ("Regressed", cmp.regressed, "red"),
        ("Became flaky", cmp.became_flaky, "yellow"),
        ("Improved", cmp.improved, "green"),
        ("Still failing", cmp.still_failing, "red"),
        ("New", cmp.new, "cyan"),
        ("Removed", cmp.removed, "dim"),
    ]
    for name, changes, style in sections:
        if not changes:
            continue
        table = Table(title=f"[{style}]{name} ({len(changes)})[/]", title_justify="left")
        for col in ("case", "category", "before", "after", "reasons"):
            table.add_column(col, overflow="fold")
        for c in changes:
            table.add_row(
                escape(c.case_id),
                c.category,
                c.before or "—",
                c.after or "—",
                escape("; ".join(c.reasons[:3])),
            )
        console.print(table)
    if not cmp.changed:
        console.print("[green]no case changed[/]")
    _exit_on_regression(cmp.regressed)


def _exit_on_regression(regressed: "Sequence[CaseChange]") -> None:
    """Exit 1, saying so, when a case that passed in the earlier run does not pass in the later one."""
    if regressed:
        shown = ", ".join(c.case_id for c in regressed[:5]) + (" ..." if len(regressed) > 5 else "")
        err_console.print(f"[red]{len(regressed)} case(s) regressed[/]: {escape(shown)}", highlight=False)
        raise typer.Exit(1)


@eval_app.command("runs")
@handle_errors
def eval_runs(
    agent: str | None = typer.Option(None, "--agent", "-a", help="Only this agent's runs."),
    version: str | None = VersionOption,
    stage: str | None = typer.Option(None, "--stage", help="pre-merge, post-merge or production."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many, newest first."),
    config: Path | None = ConfigOption,
) -> None:
    """List stored eval runs, newest first, with their gate decisions.

    Example: shipyard eval runs --agent support --stage production
    """
    from shipyard.store import Store

    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        runs = store.list_eval_runs(agent, None, stage, limit=None if version else limit)
    if version:
        runs = [
            r
            for r in runs
            if version in (r["version"], r["version"].split("@")[-1].split("+")[0])
            or r["version"].endswith("+" + version)
        ][:limit]
    if not runs:
        console.print("[dim]no eval runs yet: run `shipyard eval run` or `shipyard gate STAGE`[/]")
        return
    verdict_style = {"PASS": "green", "FAIL": "red", "MARGINAL": "yellow"}
    table = Table(title="Eval runs")
    for col in ("run", "version", "stage", "status", "decision", "pass rate", "started"):
        table.add_column(col, no_wrap=col != "version")
    for r in runs:
        verdict = (r.get("decision") or {}).get("verdict", "")
        overall = ((r.get("summary") or {}).get("overall") or {}).get("pass_rate")
        table.add_row(
            str(r["id"])[:12],
            escape(str(r["version"])),
            r.get("stage") or "-",
            r["status"],
            f"[{verdict_style.get(verdict, 'white')}]{verdict or '-'}[/]",
            f"{100 * overall:.1f}%" if isinstance(overall, int | float) else "-",
            str(r["started_at"])[:16],
        )
    console.print(table)


# importing ----------------------------------------------------------------------------------------


@eval_app.command("import")
@handle_errors
def eval_import(
    kind: str = typer.Argument(..., help="promptfoo, adk, jsonl, or a plugin's suite format."),
    file: Path = typer.Argument(..., help="The file to import."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the Shipyard suite (YAML)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
) -> None:
    """Convert a promptfoo config, an ADK eval set or an OpenAI-evals JSONL file into a Shipyard suite.

    Example: shipyard eval import promptfoo promptfooconfig.yaml -o evals/support/imported.yaml
    """
    from shipyard.evals import IMPORTERS, dump_suite, import_file

    if kind not in IMPORTERS:  # the built-in formats and any plugin's
        raise fail(IMPORTERS.unknown_message(kind, label="import kind"))
    if output.exists() and not force:
        raise fail(f"{output} exists; pass --force to overwrite it")
    suite = import_file(kind, file)
    dump_suite(suite, output)
    console.print(
        f"[green]wrote[/] {escape(str(output))}: suite {escape(suite.name)!r}, {len(suite.cases)} case(s)"
    )


# gating -------------------------------------------------------------------------------------------


def _policy_with_baseline(policy: "StagePolicy", baseline: str | None) -> "StagePolicy":
    if baseline is None:
        return policy
    from shipyard.config import RegressionPolicy

    regression = (policy.regression or RegressionPolicy()).model_copy(update={"baseline": baseline})
    return policy.model_copy(update={"regression": regression})


@gate_app.command("check")
@handle_errors
def gate_check(
    stage: str = typer.Argument(..., help="pre-merge, post-merge or production."),
    agent: str = typer.Option(..., "--agent", "-a", help="Agent name from shipyard.yaml."),
    version: str | None = VersionOption,
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        "-b",
        help="Compare with: production, a run id or a version (default: the policy's).",
    ),
    report: list[str] | None = ReportOption,
    concurrency: int | None = ConcurrencyOption,
    replay: bool = ReplayOption,
    record: bool = RecordOption,
    budget: float | None = BudgetOption,
    run_id: str | None = typer.Option(
        None,
        "--run",
        help="Decide on this stored run instead of running the suites (e.g. after an approval).",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run a stage's suites against a version and decide PASS, FAIL or MARGINAL.

    Exit codes: 0 PASS (or an approved MARGINAL), 1 FAIL, 3 MARGINAL awaiting approval, 2 usage error.

    `shipyard gate STAGE` is short for `shipyard gate check STAGE`.

    Example: shipyard gate production --agent support --version 1.1.0 --report markdown:gate.md
    """
    from shipyard import _aio
    from shipyard.evals import (
        case_keys,
        decide_gate,
        load_run_summary,
        load_suite,
        print_report,
        repeat_from_row,
        resolve_baseline,
        summarize_run,
    )
    from shipyard.store import Store

    cfg = load_project(config)
    key = stage.replace("_", "-")
    policy = _policy_with_baseline(cfg.gates.stage(key), baseline)
    reports = _reports(report)
    if not policy.suites and run_id is None:
        raise fail(
            f"gates.{key}.suites in {cfg.path} is empty: the gate has nothing to run",
            hint=f"list suite files, e.g. gates: {{{key}: {{suites: [evals/{agent}/smoke.yaml]}}}}",
        )
    run: Any = None
    stage_suites = [load_suite(cfg.resolve(s)) for s in policy.suites]
    expected = case_keys(stage_suites) if stage_suites else None  # a run must hold every case
    with Store.from_config(cfg) as store:
        if run_id is not None:
            row = _find_run(store, run_id)
            if row["agent"] != agent:
                raise fail(f"run {row['id']} is of agent {row['agent']!r}, not {agent!r}")
            summary = load_run_summary(store, str(row["id"]), policy.case_rule)
            summary.stage = key
            status = str(row["status"])
            run = [repeat_from_row(r) for r in store.eval_results(summary.run_id)]
        else:
            run = _aio.run(
                _run_suites(
                    cfg,
                    store,
                    agent,
                    stage_suites,
                    version=version,
                    stage=key,
                    repeat=policy.repeat,
                    concurrency=concurrency,
                    mode=_mode(replay, record),
                    budget=budget,
                )
            )
            summary = summarize_run(run, policy.case_rule)
            status = _status(run)
        base = None
        if policy.regression is not None:
            base = resolve_baseline(
                store,
                agent,
                policy.regression.baseline,
                stage=key,
                exclude_run_id=summary.run_id,
                case_rule=policy.case_rule,
            )
        decision = decide_gate(summary, policy, base, stage=key, expected_cases=expected)
        _save(store, summary, status, decision)
        approvals = store.approvals(summary.run_id) if decision.verdict == "MARGINAL" else []
    print_report(summary, decision, console)
    _write_reports(reports, run, summary, decision)
    console.print(f"run id: [bold]{summary.run_id}[/]")
    code = decision.exit_code
    if approvals:
        a = approvals[-1]
        console.print(f"[green]approved[/] by {escape(str(a['by']))}: {escape(str(a['reason']))}")
        code = 0
    elif decision.verdict == "MARGINAL":
        console.print(
            f"[yellow]awaiting approval:[/] shipyard gate approve {summary.run_id} --by NAME --reason TEXT, "
            f"then shipyard gate {key} --agent {agent} --run {summary.run_id}"
        )
    raise typer.Exit(code)


@gate_app.command("approve")
@handle_errors
def gate_approve(
    run_ref: str = typer.Argument(..., metavar="RUN", help="The MARGINAL run (id or unique prefix)."),
    by: str = typer.Option(..., "--by", help="Who approves."),
    reason: str = typer.Option(..., "--reason", help="Why it may ship despite the missed soft thresholds."),
    config: Path | None = ConfigOption,
) -> None:
    """Record a manual approval of a MARGINAL gate decision. A FAIL can never be approved.

    Example: shipyard gate approve 3f2a9c --by alice --reason "p95 latency 2% over; new model warms up"
    """
    from shipyard.evals import GateDecision
    from shipyard.store import Store

    if not by.strip() or not reason.strip():
        raise fail("--by and --reason must not be empty: an approval says who and why")
    cfg = load_project(config)
    with Store.from_config(cfg) as store:
        run = _find_run(store, run_ref)
        stored = run.get("decision")
        if not stored:
            raise fail(
                f"run {run['id']} has no gate decision (it was a plain eval run)",
                hint="approvals apply to `shipyard gate STAGE` runs",
            )
        decision = GateDecision.from_dict(stored)
        if decision.verdict == "FAIL":
            failed = [
                c.describe() + (" (hard)" if c.hard else "")
                for c in decision.checks
                if not c.passed and not c.within_margin
            ]
            raise fail(
                f"run {run['id']} FAILed its {decision.stage or ''} gate and cannot be approved; "
                f"failed beyond any margin: {'; '.join(failed)}",
                code=1,
                hint="fix the failing cases and run the gate again; only MARGINAL decisions take approvals",
            )
        if decision.verdict == "PASS":
            console.print(f"run {run['id']} PASSed its gate: nothing to approve")
            return
        store.add_approval(str(run["id"]), by.strip(), reason.strip())
    console.print(f"[green]approved[/] run {run['id']} ({escape(str(run['version']))}) by {escape(by)}")
