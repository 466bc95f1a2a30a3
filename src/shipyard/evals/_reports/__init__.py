"""Reports of a run and its gate decision: terminal, JSON, JUnit XML, HTML and Markdown.

Each kind is one renderer registered in `REPORT_FORMATS` (the built-ins by `shipyard.evals._plugins`,
others by plugins); `--report KIND:PATH` and `write_report` pick one by name."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from shipyard.errors import ShipyardError
from shipyard.evals._gate import GateDecision
from shipyard.evals._reports._format import live_latencies, repeats_of
from shipyard.evals._reports._html import render_html
from shipyard.evals._reports._junit import render_junit
from shipyard.evals._reports._markdown import render_markdown
from shipyard.evals._reports._terminal import print_report
from shipyard.evals._stats import RunSummary
from shipyard.evals._types import EvalRunResult, RepeatResult
from shipyard.plugins import Registry

RunLike = EvalRunResult | list[RepeatResult] | None
Renderer = Callable[[RunLike, RunSummary, GateDecision | None], str]


def render_json(run: RunLike, summary: RunSummary, decision: GateDecision | None = None) -> str:
    """The summary, the decision and every repeat's result as one JSON document."""
    doc: dict[str, Any] = {
        "summary": summary,
        "complete": summary.complete,
        "decision": decision.to_dict() if decision else None,
        "results": repeats_of(run),
    }
    if isinstance(run, EvalRunResult):
        doc["run"] = {f: getattr(run, f) for f in run.__dataclass_fields__ if f != "results"}
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
    return orjson.dumps(doc, default=str, option=options).decode()


def render_terminal(run: RunLike, summary: RunSummary, decision: GateDecision | None = None) -> str:
    """The terminal report as plain text (for a file); print_report prints it in colour."""
    buf = io.StringIO()
    print_report(summary, decision, Console(file=buf, width=140, color_system=None, force_terminal=False))
    return buf.getvalue()


def _junit(run: RunLike, summary: RunSummary, decision: GateDecision | None = None) -> str:
    return render_junit(summary, decision)


def _html(run: RunLike, summary: RunSummary, decision: GateDecision | None = None) -> str:
    return render_html(summary, decision, live_latencies(run))


def _markdown(run: RunLike, summary: RunSummary, decision: GateDecision | None = None) -> str:
    return render_markdown(summary, decision)


BUILTIN_RENDERERS: dict[str, Renderer] = {
    "terminal": render_terminal,
    "json": render_json,
    "junit": _junit,
    "html": _html,
    "markdown": _markdown,
}
"""Registered by `shipyard.evals._plugins` (the `evals` entry point)."""

REPORT_FORMATS: Registry[Renderer] = Registry("report kind")
"""Report renderers by kind: `renderer(run, summary, decision) -> str` (the file's text)."""


EXAMPLE_PATHS = {
    "json": "report.json",
    "junit": "results.xml",
    "html": "report.html",
    "markdown": "report.md",
}
"""A file name to show in an example of each built-in kind (a plugin's kind: report.KIND)."""


class ReportError(ShipyardError):
    """A report was asked for in a way that cannot work (unknown kind, unwritable path)."""


def parse_report_spec(spec: str) -> tuple[str, str]:
    """Split a `--report KIND:PATH` value (``terminal`` alone means stdout)."""
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in REPORT_FORMATS:
        raise ReportError(
            f"--report {spec!r}: {REPORT_FORMATS.unknown_message(kind, label='kind')}",
            hint="for example --report junit:results.xml --report html:report.html",
        )
    if not sep or not path.strip():
        if kind == "terminal":
            return kind, "-"
        example = f"{kind}:{EXAMPLE_PATHS.get(kind, f'report.{kind}')}"
        raise ReportError(f"--report {spec!r}: a path is needed after the colon, e.g. --report {example}")
    return kind, path.strip()


def write_report(
    kind: str,
    path: str | Path,
    run_result: RunLike,
    summary: RunSummary,
    decision: GateDecision | None = None,
) -> None:
    """Write one report.

    Args:
        kind: terminal | json | junit | html | markdown, or a plugin's registered kind.
        path: the file to write (``-`` writes to stdout); parent folders are created.
        run_result: the run's repeats (an EvalRunResult or a list of RepeatResult), for the per-repeat
            data some reports use (JSON results, the HTML latency histogram); may be None.
        summary: the run's statistics.
        decision: the gate decision, if the run was gated.
    """
    if kind not in REPORT_FORMATS:
        raise ReportError(REPORT_FORMATS.unknown_message(kind))
    renderer = REPORT_FORMATS.get(kind)
    if str(path) == "-":
        if kind == "terminal":
            print_report(summary, decision)
        else:
            print(renderer(run_result, summary, decision), end="")
        return
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(renderer(run_result, summary, decision), encoding="utf-8")
    except OSError as e:
        raise ReportError(
            f"cannot write the {kind} report to {target}: {e.strerror}",
            hint="check the folder exists and is writable",
        ) from None


__all__ = [
    "BUILTIN_RENDERERS",
    "REPORT_FORMATS",
    "ReportError",
    "parse_report_spec",
    "print_report",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "write_report",
]
