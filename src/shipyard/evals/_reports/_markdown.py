"""A Markdown summary fit for a pull-request comment: verdict, one table per run, the checks and
the failing cases (long lists folded in `<details>`)."""

from __future__ import annotations

from shipyard.evals._gate import GateDecision
from shipyard.evals._reports._format import (
    VERDICT_MARK,
    check_result,
    check_value,
    interval,
    ms,
    pct,
    title,
    usd,
)
from shipyard.evals._stats import RunSummary


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(summary: RunSummary, decision: GateDecision | None = None, *, max_cases: int = 15) -> str:
    """The run (and gate decision) as Markdown.

    Args:
        summary: the run's statistics.
        decision: the gate decision, if any; its verdict heads the comment.
        max_cases: failing cases shown before the rest is folded away.
    """
    mark = VERDICT_MARK[decision.verdict] + " " if decision else ""
    out = [f"### {mark}{cell(title(summary, decision))}", ""]
    facts = [f"run `{summary.run_id}`", f"case rule: {summary.case_rule}"]
    if summary.replayed_repeats:
        facts.append(f"{summary.replayed_repeats} replayed repeats (their latency is not counted)")
    out += [" · ".join(facts), ""]
    if not summary.complete:
        out += [f"> **Partial run:** {summary.stopped_reason or 'interrupted'}.", ""]
    rows = [
        [
            s.category,
            s.cases,
            s.passed,
            s.failed,
            s.errors,
            s.skipped,
            s.flaky,
            pct(s.pass_rate),
            interval(s),
            ms(s.latency_p95_ms),
            usd(s.agent_cost_mean_usd),
            usd(s.judge_cost_usd),
        ]
        for s in [*summary.categories.values(), summary.overall]
    ]
    out += table(
        [
            "Category",
            "Cases",
            "Pass",
            "Fail",
            "Error",
            "Skipped",
            "Flaky",
            "Pass rate",
            "95% CI",
            "p95 latency",
            "Mean cost",
            "Judge cost",
        ],
        rows,
    )
    if decision is not None:
        out += ["", "**Checks**", ""]
        out += table(
            ["Check", "Observed", "Threshold", "Hard", "Result"],
            [
                [
                    c.name,
                    check_value(c, c.observed),
                    f"{c.comparator} {check_value(c, c.threshold)}",
                    "yes" if c.hard else "no",
                    check_result(c),
                ]
                for c in decision.checks
            ],
        )
        if decision.regression and decision.regression.newly_failing:
            out += ["", "**Regressed since the baseline**", ""]
            out += table(
                ["Case", "Category", "Before", "After", "Counted", "Reasons"],
                [
                    [
                        ch.case_id,
                        ch.category,
                        ch.before,
                        ch.after,
                        "yes" if ch.case_id in decision.regression.counted else "noise",
                        "; ".join(ch.reasons[:3]),
                    ]
                    for ch in decision.regression.newly_failing
                ],
            )
    from_incidents: list[list[object]] = [  # cases promoted from incidents (`shipyard incidents promote`)
        [c.key, t.removeprefix("incident:"), c.outcome, c.k_of_n]
        for c in summary.cases
        for t in c.tags
        if t.startswith("incident:")
    ]
    if from_incidents:
        out += ["", "**Cases from production incidents**", ""]
        out += table(["Case", "Incident", "Outcome", "k/n"], from_incidents)
    skipped = summary.skipped_cases()
    if skipped:
        out += ["", f"**Skipped cases ({len(skipped)})**: not run, not counted as passed", ""]
        out += table(
            ["Case", "Category", "Reason"], [[c.key, c.category, "; ".join(c.reasons[:2])] for c in skipped]
        )
    bad = summary.failing_cases()
    if bad:
        rows = [
            [
                c.key,
                c.category,
                c.k_of_n + (" (flaky)" if c.flaky else ""),
                c.outcome,
                "; ".join(c.reasons[:3]),
            ]
            for c in bad
        ]
        header = ["Case", "Category", "k/n", "Outcome", "Reasons"]
        out += ["", f"**Failing cases ({len(bad)})**", ""]
        out += table(header, rows[:max_cases])
        if len(rows) > max_cases:
            out += ["", f"<details><summary>{len(rows) - max_cases} more</summary>", ""]
            out += table(header, rows[max_cases:])
            out += ["", "</details>"]
    return "\n".join(out) + "\n"
