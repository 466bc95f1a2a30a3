"""JUnit XML: one testcase per eval case, one testsuite per category, and one for the gate's checks,
so any CI shows the run. k/n, the pass rate and its Wilson interval are in `<properties>`; FAIL is
`<failure>` with the reasons, ERROR is `<error>`, SKIPPED is `<skipped message="why">`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from shipyard.evals._gate import GateDecision
from shipyard.evals._reports._format import check_result, check_value
from shipyard.evals._stats import CaseStats, CategoryStats, RunSummary, wilson_interval
from shipyard.evals._types import Outcome

# characters XML 1.0 cannot hold, even escaped
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str, limit: int = 20_000) -> str:
    text = _INVALID_XML.sub("�", text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _properties(parent: ET.Element, values: dict[str, object]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=_clean(str(value)))


def _testcase(parent: ET.Element, summary: RunSummary, c: CaseStats) -> None:
    seconds = (c.latency_ms or 0.0) / 1000
    tc = ET.SubElement(
        parent,
        "testcase",
        classname=".".join(x for x in (summary.agent or "shipyard", c.suite, c.category) if x),
        name=c.case_id,
        time=f"{seconds:.3f}",
    )
    low, high = wilson_interval(c.passed, c.n)
    values: dict[str, object] = {
        "k_of_n": c.k_of_n,
        "pass_rate": f"{c.passed / c.n:.4f}" if c.n else "0",
        "wilson_low": f"{low:.4f}",
        "wilson_high": f"{high:.4f}",
        "flaky": str(c.flaky).lower(),
        "errors": c.errors,
        "cost_usd": f"{c.cost_usd:.6f}",
    }
    values.update({f"pass@{k}": f"{v:.4f}" for k, v in c.pass_at_k.items()})
    values.update({f"pass^{k}": f"{v:.4f}" for k, v in c.pass_hat_k.items()})
    _properties(tc, values)
    if c.outcome == Outcome.SKIPPED:
        ET.SubElement(tc, "skipped", message=_clean("; ".join(c.reasons) or "no reason given", 1000))
    elif c.outcome != Outcome.PASS:
        tag = "error" if c.outcome == Outcome.ERROR else "failure"
        reasons = "; ".join(c.reasons) or "no reason given"
        head = f"{c.k_of_n} repeats passed{' (flaky)' if c.flaky else ''}: {reasons}"
        el = ET.SubElement(tc, tag, message=_clean(head, 1000), type=c.outcome)
        el.text = _clean("\n".join(c.reasons))
    if c.output:
        ET.SubElement(tc, "system-out").text = _clean(c.output)


def _suite_counts(el: ET.Element, tests: int, failures: int, errors: int, skipped: int = 0) -> None:
    el.set("tests", str(tests))
    el.set("failures", str(failures))
    el.set("errors", str(errors))
    el.set("skipped", str(skipped))


def _category_suite(root: ET.Element, summary: RunSummary, s: CategoryStats) -> tuple[int, int, int, int]:
    el = ET.SubElement(root, "testsuite", name=f"{summary.agent} {s.category}".strip())
    cases = [c for c in summary.cases if c.category == s.category]
    _suite_counts(el, len(cases), s.failed, s.errors, s.skipped)
    el.set("time", f"{sum((c.latency_ms or 0.0) * c.n for c in cases) / 1000:.3f}")
    _properties(
        el,
        {
            "run_id": summary.run_id,
            "version": summary.version,
            "stage": summary.stage or "",
            "case_rule": summary.case_rule,
            "pass_rate": f"{s.pass_rate:.4f}",
            "wilson_low": f"{s.ci_low:.4f}",
            "wilson_high": f"{s.ci_high:.4f}",
            "repeats": s.repeats,
            "flaky": s.flaky,
            "latency_p95_ms": "" if s.latency_p95_ms is None else f"{s.latency_p95_ms:.1f}",
            "agent_cost_usd": f"{s.agent_cost_usd:.6f}",
            "judge_cost_usd": f"{s.judge_cost_usd:.6f}",
        },
    )
    for c in cases:
        _testcase(el, summary, c)
    return len(cases), s.failed, s.errors, s.skipped


def _gate_suite(root: ET.Element, decision: GateDecision) -> tuple[int, int, int, int]:
    el = ET.SubElement(root, "testsuite", name=f"gate {decision.stage or ''}".strip())
    failures = 0
    skipped = 0
    _properties(el, {"verdict": decision.verdict, "baseline_run_id": decision.baseline_run_id or ""})
    for c in decision.checks:
        tc = ET.SubElement(el, "testcase", classname="shipyard.gate", name=c.name, time="0")
        _properties(
            tc,
            {
                "observed": check_value(c, c.observed),
                "comparator": c.comparator,
                "threshold": check_value(c, c.threshold),
                "hard": str(c.hard).lower(),
            },
        )
        result = check_result(c)
        if result == "skipped":
            skipped += 1
            ET.SubElement(tc, "skipped", message=_clean(c.detail, 1000))
        elif result != "pass":
            failures += 1
            message = f"{c.describe()} ({result}): {c.detail}"
            ET.SubElement(tc, "failure", message=_clean(message, 1000), type=result).text = _clean(c.detail)
    _suite_counts(el, len(decision.checks), failures, 0, skipped)
    return len(decision.checks), failures, 0, skipped


def render_junit(summary: RunSummary, decision: GateDecision | None = None) -> str:
    """The run (and gate) as a JUnit XML document.

    Args:
        summary: the run's statistics (one testcase per case).
        decision: the gate's decision, written as a `gate` testsuite with one testcase per check.
    """
    root = ET.Element("testsuites", name=f"shipyard {summary.agent} {summary.version}".strip())
    totals = [0, 0, 0, 0]
    parts = [_category_suite(root, summary, s) for s in summary.categories.values()]
    if decision is not None:
        parts.append(_gate_suite(root, decision))
    for part in parts:
        totals = [a + b for a, b in zip(totals, part, strict=True)]
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    root.set("skipped", str(totals[3]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
