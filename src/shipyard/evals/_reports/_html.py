"""A self-contained HTML report: inline CSS and inline SVG charts (pass rate per category with its
interval, latency histogram, cost per category); nothing is loaded from anywhere."""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template

from shipyard.evals._gate import GateDecision
from shipyard.evals._reports._format import (
    check_result,
    check_value,
    interval,
    ms,
    pct,
    thresholds,
    title,
    usd,
)
from shipyard.evals._stats import RunSummary

WIDTH = 560
TEXT_W = 190  # room right of the bars for their figures
LABEL_W = 110
ROW_H = 26


def _svg(width: int, height: int, parts: list[str], label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">' + "".join(parts) + "</svg>"
    )


def pass_rate_chart(summary: RunSummary, decision: GateDecision | None) -> str:
    """Horizontal bars of the pass rate per category, with 95% Wilson whiskers and threshold ticks."""
    cats = list(summary.categories.values())
    plot = WIDTH - LABEL_W - TEXT_W
    height = ROW_H * len(cats) + 30
    mins = thresholds(decision)
    parts = []
    for i, s in enumerate(cats):
        y = 10 + i * ROW_H
        x0 = LABEL_W
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end">{escape(s.category)}</text>')
        parts.append(f'<rect x="{x0}" y="{y + 3}" width="{plot}" height="16" fill="#eaeef2"/>')
        colour = "#1a7f37" if s.category not in mins or s.pass_rate >= mins[s.category] else "#cf222e"
        parts.append(
            f'<rect x="{x0}" y="{y + 3}" width="{plot * s.pass_rate:.1f}" height="16" fill="{colour}"/>'
        )
        lo, hi = x0 + plot * s.ci_low, x0 + plot * s.ci_high
        parts.append(
            f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + 11}" y2="{y + 11}" stroke="#1f2328" '
            f'stroke-width="1.5"/>'
        )
        for x in (lo, hi):
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 6}" y2="{y + 16}" stroke="#1f2328"/>')
        if s.category in mins:
            tx = x0 + plot * mins[s.category]
            parts.append(
                f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y}" y2="{y + 22}" stroke="#bf8700" '
                f'stroke-width="2" stroke-dasharray="3,2"><title>minimum {mins[s.category]:.2f}'
                f"</title></line>"
            )
        parts.append(f'<text x="{x0 + plot + 6}" y="{y + 15}">{pct(s.pass_rate)} ({interval(s)})</text>')
    axis_y = 10 + len(cats) * ROW_H + 12
    for frac in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{LABEL_W + plot * frac:.1f}" y="{axis_y}" text-anchor="middle">'
            f"{int(frac * 100)}%</text>"
        )
    return _svg(WIDTH, height, parts, "pass rate per category with 95% Wilson intervals")


def latency_chart(latencies: list[float], p95: float | None) -> str:
    """A histogram of live latencies with the p95 marked."""
    if not latencies:
        return '<p class="meta">No live repeats: every repeat was replayed, so no latency was measured.</p>'
    import numpy as np  # only an HTML report draws a histogram

    arr = np.asarray(latencies, dtype=float)
    bins = int(min(30, max(5, np.sqrt(arr.size))))
    counts, edges = np.histogram(arr, bins=bins)
    left, bottom, plot_w, plot_h = 40, 150, WIDTH - 60, 130
    top = max(int(counts.max()), 1)
    span = float(edges[-1] - edges[0]) or 1.0
    bar_w = plot_w / len(counts)
    parts = [f'<line x1="{left}" x2="{left + plot_w}" y1="{bottom}" y2="{bottom}" stroke="#57606a"/>']
    for i, count in enumerate(counts):
        h = plot_h * count / top
        parts.append(
            f'<rect x="{left + i * bar_w + 1:.1f}" y="{bottom - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#0969da"><title>{edges[i]:.0f}–{edges[i + 1]:.0f} ms: '
            f"{count}</title></rect>"
        )
    if p95 is not None:
        x = left + plot_w * (p95 - edges[0]) / span
        near_right = x > left + plot_w * 0.7
        label_x, anchor = (x - 4, "end") if near_right else (x + 4, "start")
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom - plot_h - 5}" y2="{bottom}" stroke="#cf222e" '
            f'stroke-dasharray="4,2"/><text x="{label_x:.1f}" y="{bottom - plot_h + 5}" '
            f'text-anchor="{anchor}">p95 {ms(p95)}</text>'
        )
    parts.append(f'<text x="{left}" y="{bottom + 16}">{edges[0]:.0f} ms</text>')
    parts.append(f'<text x="{left + plot_w}" y="{bottom + 16}" text-anchor="end">{edges[-1]:.0f} ms</text>')
    parts.append(f'<text x="{left - 6}" y="{bottom - plot_h + 4}" text-anchor="end">{top}</text>')
    return _svg(WIDTH, bottom + 24, parts, "latency histogram of live repeats")


def cost_chart(summary: RunSummary) -> str:
    """Stacked bars of total cost per category: the agent's, then the judge's."""
    cats = list(summary.categories.values())
    plot = WIDTH - LABEL_W - TEXT_W
    top = max((s.agent_cost_usd + s.judge_cost_usd for s in cats), default=0.0) or 1.0
    parts = []
    for i, s in enumerate(cats):
        y = 10 + i * ROW_H
        wa, wj = plot * s.agent_cost_usd / top, plot * s.judge_cost_usd / top
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end">{escape(s.category)}</text>')
        parts.append(
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{wa:.1f}" height="16" fill="#8250df">'
            f"<title>agent {usd(s.agent_cost_usd)}</title></rect>"
        )
        parts.append(
            f'<rect x="{LABEL_W + wa:.1f}" y="{y + 3}" width="{wj:.1f}" height="16" fill="#d2a8ff">'
            f"<title>judge {usd(s.judge_cost_usd)}</title></rect>"
        )
        parts.append(
            f'<text x="{LABEL_W + plot + 6}" y="{y + 15}">{usd(s.agent_cost_usd)} + '
            f"{usd(s.judge_cost_usd)} judge</text>"
        )
    y = 10 + len(cats) * ROW_H + 12
    parts.append(
        f'<rect x="{LABEL_W}" y="{y - 10}" width="10" height="10" fill="#8250df"/>'
        f'<text x="{LABEL_W + 14}" y="{y}">agent</text>'
        f'<rect x="{LABEL_W + 70}" y="{y - 10}" width="10" height="10" fill="#d2a8ff"/>'
        f'<text x="{LABEL_W + 84}" y="{y}">judge</text>'
    )
    return _svg(WIDTH, y + 8, parts, "cost per category, agent and judge")


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _num(v: object) -> str:
    return f'<td class="num">{escape(str(v))}</td>'


def _categories(summary: RunSummary) -> str:
    rows = []
    for s in [*summary.categories.values(), summary.overall]:
        cells = [f"<td>{escape(s.category)}</td>"] + [
            _num(v)
            for v in (
                s.cases,
                s.repeats,
                s.passed,
                s.failed,
                s.errors,
                s.skipped,
                s.flaky,
                pct(s.pass_rate),
                interval(s),
                ms(s.latency_p50_ms),
                ms(s.latency_p95_ms),
                ms(s.latency_p99_ms),
                usd(s.agent_cost_mean_usd),
                usd(s.agent_cost_usd),
                usd(s.judge_cost_usd),
            )
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(
        [
            "category",
            "cases",
            "repeats",
            "pass",
            "fail",
            "error",
            "skipped",
            "flaky",
            "pass rate",
            "95% CI",
            "p50",
            "p95",
            "p99",
            "mean cost",
            "agent cost",
            "judge cost",
        ],
        rows,
    )


def _checks(decision: GateDecision) -> str:
    rows = []
    for c in decision.checks:
        result = check_result(c)
        rows.append(
            f'<tr class="r-{result}"><td>{escape(c.name)}</td>{_num(check_value(c, c.observed))}'
            f"<td>{escape(c.comparator)}</td>{_num(check_value(c, c.threshold))}"
            f'<td>{"hard" if c.hard else "soft"}</td><td class="res">{escape(result)}</td>'
            f"<td>{escape(c.detail)}</td></tr>"
        )
    return _table(["check", "observed", "", "threshold", "kind", "result", "detail"], rows)


def _failing(summary: RunSummary) -> str:
    rows = []
    for c in summary.failing_cases():
        reasons = "".join(f"<li>{escape(r)}</li>" for r in c.reasons) or "<li>no reason given</li>"
        output = (
            f"<details><summary>output</summary><pre>{escape(c.output)}</pre></details>" if c.output else ""
        )
        rows.append(
            f'<tr class="r-{c.outcome}"><td>{escape(c.key)}</td><td>{escape(c.category)}</td>'
            f'{_num(c.k_of_n)}<td class="res">{c.outcome}{" (flaky)" if c.flaky else ""}</td>'
            f'<td><ul class="reasons">{reasons}</ul>{output}</td></tr>'
        )
    return _table(["case", "category", "k/n", "outcome", "reasons"], rows)


def render_html(
    summary: RunSummary, decision: GateDecision | None = None, latencies: list[float] | None = None
) -> str:
    """The whole report as one HTML page.

    Args:
        summary: the run's statistics.
        decision: the gate decision, if any.
        latencies: live repeat latencies for the histogram (replayed repeats left out).
    """
    body: list[str] = []
    if decision is not None:
        body.append(
            f'<p><span class="verdict {decision.verdict}">{decision.verdict}</span> '
            f"{escape(decision.reasons[0] if decision.reasons else '')}</p>"
        )
    if not summary.complete:
        body.append(
            f'<p class="warn">Partial run: {escape(summary.stopped_reason or "interrupted")}. '
            "Cases that never ran are not counted as passed.</p>"
        )
    body.append('<div class="charts">')
    body.append(
        f'<div class="chart"><h3>Pass rate per category (95% Wilson interval)</h3>'
        f"{pass_rate_chart(summary, decision)}</div>"
    )
    body.append(
        f'<div class="chart"><h3>Latency of live repeats</h3>'
        f"{latency_chart(latencies or [], summary.overall.latency_p95_ms)}</div>"
    )
    body.append(f'<div class="chart"><h3>Cost per category</h3>{cost_chart(summary)}</div>')
    body.append("</div>")
    body.append(f"<h2>Categories</h2>{_categories(summary)}")
    if decision is not None:
        body.append(f"<h2>Gate checks</h2>{_checks(decision)}")
        if len(decision.reasons) > 1:
            body.append(
                "<h2>Reasons</h2><ul>" + "".join(f"<li>{escape(r)}</li>" for r in decision.reasons) + "</ul>"
            )
    failing = summary.failing_cases()
    body.append(
        f"<h2>Failing cases ({len(failing)})</h2>" + (_failing(summary) if failing else "<p>None.</p>")
    )
    skipped = summary.skipped_cases()
    if skipped:
        items = "".join(
            f"<li>{escape(c.key)} ({escape(c.category)}): {escape('; '.join(c.reasons) or 'no reason given')}</li>"
            for c in skipped
        )
        body.append(
            f"<h2>Skipped cases ({len(skipped)}): not run, not counted as passed</h2><ul>{items}</ul>"
        )
    flaky = summary.flaky_cases()
    if flaky:
        items = "".join(f"<li>{escape(c.key)} ({escape(c.category)}): {c.k_of_n}</li>" for c in flaky)
        body.append(f"<h2>Flaky cases ({len(flaky)})</h2><ul>{items}</ul>")
    template = Template(resources.files("shipyard.evals._reports").joinpath("report.html").read_text("utf-8"))
    meta = (
        f"run {summary.run_id} · suites: {', '.join(summary.suites) or '—'} · case rule: {summary.case_rule}"
        f" · {summary.overall.repeats} repeats"
    )
    return template.substitute(
        title=escape(title(summary, decision)),
        heading=escape(title(summary, decision)),
        meta=escape(meta),
        body="\n".join(body),
    )
