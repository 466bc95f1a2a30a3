"""The Markdown comment for the pull request: per stage, per category, the pass rate, its change
against the base branch in points, and how many cases improved and regressed; then the checks that
did not pass and the regressed cases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.evals import Comparison, RunSummary, compare_runs

if TYPE_CHECKING:
    from shipyard.pipeline._stages import StageResult

MARK = {"pass": "✅", "fail": "❌", "waiting": "⏸️", "error": "⚠️", "skipped": "➖"}
COMMENT_TAG = "<!-- shipyard-ci -->"  # lets a workflow find and update its own comment


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def category_rows(summary: RunSummary, base: RunSummary | None) -> list[list[str]]:
    """Rows: category, cases, pass rate, base pass rate, change in points, improved, regressed."""
    cmp: Comparison | None = compare_runs(base, summary) if base is not None else None
    rows = []
    cats = dict(sorted(summary.categories.items()))
    cats.setdefault("all", summary.overall)
    for name, s in cats.items():
        b = (base.overall if name == "all" else base.categories.get(name)) if base is not None else None
        improved = regressed = "—"
        if cmp is not None:
            improved = str(sum(1 for ch in cmp.improved if name in ("all", ch.category)))
            regressed = str(sum(1 for ch in cmp.regressed if name in ("all", ch.category)))
        delta = "—"
        if b is not None and b.cases:
            points = 100 * (s.pass_rate - b.pass_rate)
            delta = f"{points:+.1f} pts"
        rows.append(
            [
                f"**{name}**" if name == "all" else name,
                str(s.cases),
                f"{100 * s.pass_rate:.1f}%",
                f"{100 * b.pass_rate:.1f}%" if b is not None and b.cases else "—",
                delta,
                improved,
                regressed,
            ]
        )
    return rows


def render_stage(result: StageResult) -> list[str]:
    out = [f"#### {MARK.get(result.status, '')} {result.stage}: {result.status.upper()}", ""]
    if result.summary is not None:
        base = result.baseline.summary if result.baseline is not None else None
        who = f"`{result.summary.version}`"
        vs = f" vs base {result.baseline.label}" if result.baseline is not None and base is not None else ""
        why = f" (no base: {result.baseline.why})" if result.baseline is not None and base is None else ""
        out.append(f"Run `{result.summary.run_id[:12]}` of {who}{vs}{why}")
        out.append("")
        header = ["category", "cases", "pass rate", "base", "change", "improved", "regressed"]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        out += [
            "| " + " | ".join(_cell(v) for v in row) + " |" for row in category_rows(result.summary, base)
        ]
        out.append("")
    not_passed = [c for c in result.checks if not c.passed or c.skipped]
    if not_passed:
        out.append("| check | result | detail |")
        out.append("|---|---|---|")
        for c in not_passed:
            state = "skipped" if c.skipped else ("needs approval" if c.within_margin else "FAIL")
            out.append(f"| {_cell(c.name)} | {state} | {_cell(c.detail[:400])} |")
        out.append("")
    if result.summary is not None and result.baseline is not None and result.baseline.summary is not None:
        regressed = compare_runs(result.baseline.summary, result.summary).regressed
        if regressed:
            out.append(f"<details><summary>{len(regressed)} regressed case(s)</summary>\n")
            for ch in regressed[:50]:
                why = f": {'; '.join(ch.reasons[:2])}" if ch.reasons else ""
                out.append(f"- `{ch.case_id}` ({ch.category}) {ch.before} → {ch.after}{_cell(why)}")
            out.append("\n</details>\n")
    for note in result.notes:
        out.append(f"- {note}")
    if result.notes:
        out.append("")
    return out


def render_comment(results: list[StageResult], *, agent: str, version: str) -> str:
    """The whole comment for a `shipyard ci run`."""
    overall = next((r.status for r in results if r.status != "pass"), "pass")
    out = [
        COMMENT_TAG,
        f"### {MARK.get(overall, '')} Shipyard CI: {agent} `{version}` — {overall.upper()}",
        "",
    ]
    for r in results:
        out += render_stage(r)
    return "\n".join(out).rstrip() + "\n"
