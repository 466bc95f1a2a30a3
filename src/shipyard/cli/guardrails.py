"""`shipyard guardrails scan|check`: run the built-in detectors on texts, outside any agent."""

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from shipyard.cli._app import app, console, fail

guardrails_app = typer.Typer(
    help="Run Shipyard's built-in guardrail detectors (prompt injection, PII, system-prompt leak, "
    "exfiltration) on texts, with their default settings, and print the verdicts.\n\n"
    'Example: shipyard guardrails check "Ignore all previous instructions"',
    no_args_is_help=True,
)
app.add_typer(guardrails_app, name="guardrails")

STAGES = ("input", "tool_result", "output")
# The detectors each stage runs, in order: (name, kind).
_DEFAULT_SET = {
    "input": (("prompt_injection", "prompt_injection"), ("pii", "pii")),
    "tool_result": (("prompt_injection", "prompt_injection"), ("pii", "pii")),
    "output": (
        ("system_prompt_leak", "system_prompt_leak"),
        ("exfiltration", "exfiltration"),
        ("pii", "pii"),
    ),
}

StageOption = typer.Option("input", "--stage", "-s", help="input | tool_result | output")


def _checks(stage: str) -> list[Any]:
    from shipyard.config import GUARDRAIL_KINDS

    out = []
    for name, kind in _DEFAULT_SET[stage]:
        cls = GUARDRAIL_KINDS.get(kind)
        out.append(cls(name, cls.options()))  # type: ignore[call-arg]
    return out


def _judge(text: str, stage: str, checks: list[Any]) -> dict[str, Any]:
    """Every check of the stage on `text` (redactions carried forward); the strongest verdict wins."""
    from shipyard.guardrails import GuardrailInput, Verdict

    rank = {Verdict.ALLOW: 0, Verdict.REDACT: 1, Verdict.ESCALATE: 2, Verdict.BLOCK: 3}
    verdict = Verdict.ALLOW
    results = []
    current = text
    t0 = time.perf_counter()
    for check in checks:
        d = check.check(GuardrailInput(agent="cli", stage=stage, text=current, user_input=text))  # type: ignore[arg-type]
        results.append({"name": check.name, "verdict": d.verdict.value, "score": d.score, "reason": d.reason})
        if d.verdict is Verdict.REDACT and d.text is not None:
            current = d.text
        if rank[d.verdict] > rank[verdict]:
            verdict = d.verdict
    out: dict[str, Any] = {"stage": stage, "verdict": verdict.value}
    scores = [r["score"] for r in results if r["score"] is not None]
    out["score"] = round(max(scores), 4) if scores else 0.0
    out["checks"] = [r for r in results if r["verdict"] != "allow" or r["score"]]
    if current != text:
        out["redacted"] = current
    out["ms"] = round((time.perf_counter() - t0) * 1000, 3)
    return out


def _stage(value: str, where: str) -> str:
    if value not in STAGES:
        raise fail(
            f"{where}: stage {value!r} is not one of {', '.join(STAGES)}",
            hint="tool calls are checked by `tool_policy` guardrails in shipyard.yaml",
        )
    return value


@guardrails_app.command("check")
def check(
    text: str = typer.Argument(..., help="The text to check."),
    stage: str = StageOption,
) -> None:
    """Check one text and print its verdict as JSON.

    Example: shipyard guardrails check --stage output "Mail me at jane@example.com"
    """
    stage = _stage(stage, "--stage")
    console.print_json(json.dumps(_judge(text, stage, _checks(stage))))


@guardrails_app.command("scan")
def scan(
    file: Path = typer.Argument(..., help='A JSON-lines file: one {"text": ..., "stage": ...} per line.'),
    stage: str = typer.Option("input", "--stage", "-s", help="the stage of lines that name none"),
) -> None:
    """Scan a JSON-lines file: one verdict per line as JSON lines on stdout, a summary on stderr.
    Exit code 0 when it ran (whatever it found), 2 when the file cannot be read.

    Example: shipyard guardrails scan prompts.jsonl --stage input > verdicts.jsonl
    """
    from shipyard.cli._app import err_console

    default = _stage(stage, "--stage")
    try:
        lines = file.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"{file}: cannot read it ({e})", hint="give a UTF-8 JSON-lines file") from None
    items: list[tuple[int, str, str]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise fail(
                f"{file}:{n}: not JSON ({e})", hint='each line is {"text": "...", "stage": "input"}'
            ) from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise fail(
                f'{file}:{n}: needs a "text" string', hint='each line is {"text": "...", "stage": "input"}'
            )
        row_stage = row.get("stage", default)
        if not isinstance(row_stage, str):
            raise fail(f'{file}:{n}: "stage" must be a string')
        items.append((n, row["text"], _stage(row_stage, f"{file}:{n}")))
    checks = {s: _checks(s) for s in {s for _, _, s in items}}
    counts: Counter[str] = Counter()
    for n, text, row_stage in items:
        verdict = _judge(text, row_stage, checks[row_stage])
        counts[verdict["verdict"]] += 1
        typer.echo(json.dumps({"line": n, **verdict}, ensure_ascii=False))
    summary = ", ".join(f"{counts[v]} {v}" for v in ("block", "escalate", "redact", "allow") if counts[v])
    err_console.print(f"{len(items)} texts scanned: {summary or 'nothing to scan'}", highlight=False)
