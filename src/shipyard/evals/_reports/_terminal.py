"""The terminal report: rich tables per category, the failing cases, then the decision."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.evals._gate import GateDecision
from shipyard.evals._reports._format import check_result, check_value, interval, ms, pct, title, usd
from shipyard.evals._stats import RunSummary
from shipyard.evals._types import Outcome

VERDICT_STYLE = {"PASS": "bold green", "FAIL": "bold red", "MARGINAL": "bold yellow"}
RESULT_STYLE = {"pass": "green", "FAIL": "red", "marginal": "yellow", "skipped": "dim"}


def category_table(summary: RunSummary) -> Table:
    t = Table(title=f"Run {summary.run_id} · case rule: {summary.case_rule}", title_justify="left")
    for col in (
        "category",
        "cases",
        "pass",
        "fail",
        "error",
        "skip",
        "flaky",
        "pass rate",
        "95% CI",
        "p50",
        "p95",
        "p99",
        "mean cost",
        "judge cost",
    ):
        t.add_column(col, justify="left" if col == "category" else "right")
    rows = [*summary.categories.values(), summary.overall] if summary.categories else []
    for s in rows:
        style = "bold" if s.category == "all" else None
        t.add_row(
            s.category,
            str(s.cases),
            str(s.passed),
            str(s.failed) if s.failed else "0",
            f"[red]{s.errors}[/]" if s.errors else "0",
            f"[yellow]{s.skipped}[/]" if s.skipped else "0",
            str(s.flaky),
            pct(s.pass_rate),
            interval(s),
            ms(s.latency_p50_ms),
            ms(s.latency_p95_ms),
            ms(s.latency_p99_ms),
            usd(s.agent_cost_mean_usd),
            usd(s.judge_cost_usd),
            style=style,
        )
    return t


def failing_table(summary: RunSummary, limit: int = 20) -> Table | None:
    bad = summary.failing_cases()
    if not bad:
        return None
    t = Table(title=f"Failing cases ({len(bad)})", title_justify="left")
    for col in ("case", "category", "k/n", "outcome", "reasons"):
        t.add_column(col, overflow="fold")
    for c in bad[:limit]:
        style = "red" if c.outcome == Outcome.ERROR else None
        flaky = " [yellow](flaky)[/]" if c.flaky else ""
        t.add_row(
            escape(c.key),
            c.category,
            c.k_of_n + flaky,
            c.outcome,
            escape("; ".join(c.reasons[:3]) or "—"),
            style=style,
        )
    if len(bad) > limit:
        t.caption = f"... and {len(bad) - limit} more (see the JSON or HTML report)"
    return t


def skipped_table(summary: RunSummary, limit: int = 20) -> Table | None:
    """The cases that did not run (SKIPPED), each with why: not passed, not failed."""
    skipped = summary.skipped_cases()
    if not skipped:
        return None
    t = Table(title=f"Skipped cases ({len(skipped)}): not run, not counted as passed", title_justify="left")
    for col in ("case", "category", "reason"):
        t.add_column(col, overflow="fold")
    for c in skipped[:limit]:
        t.add_row(escape(c.key), c.category, escape("; ".join(c.reasons[:2]) or "no reason given"))
    if len(skipped) > limit:
        t.caption = f"... and {len(skipped) - limit} more (see the JSON or HTML report)"
    return t


def checks_table(decision: GateDecision) -> Table:
    t = Table(title="Gate checks", title_justify="left")
    for col in ("check", "observed", "", "threshold", "hard", "result", "detail"):
        t.add_column(col, overflow="fold")
    for c in decision.checks:
        result = check_result(c)
        t.add_row(
            c.name,
            check_value(c, c.observed),
            c.comparator,
            check_value(c, c.threshold),
            "yes" if c.hard else "no",
            f"[{RESULT_STYLE[result]}]{result}[/]",
            escape(c.detail),
        )
    return t


def print_report(
    summary: RunSummary, decision: GateDecision | None = None, console: Console | None = None
) -> None:
    """Print the run's tables, its failing cases and (when given) the gate decision with each check.

    Args:
        summary: the run's statistics.
        decision: the gate's decision, if the run was gated.
        console: where to print (default: stdout).
    """
    out = console or Console()
    out.print(f"[bold]{escape(title(summary, decision))}[/]")
    if not summary.complete:
        why = summary.stopped_reason or ("interrupted" if summary.interrupted else "incomplete")
        out.print(f"[yellow]The run stopped early ({escape(why)}): the results below are partial.[/]")
    out.print(category_table(summary))
    failing = failing_table(summary)
    if failing is not None:
        out.print(failing)
    skipped = skipped_table(summary)
    if skipped is not None:
        out.print(skipped)
    if decision is not None:
        out.print(checks_table(decision))
        out.print(f"Decision: [{VERDICT_STYLE[decision.verdict]}]{decision.verdict}[/]")
        for r in decision.reasons:
            out.print(f"  • {escape(r)}", highlight=False)
