"""Pre-merge checks that need no model call: prompt lint, tool definitions, the agent's config, and
the project's own unit tests. Each gives findings; an error fails its check, a warning is shown."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shipyard.config import ShipyardConfig
from shipyard.evals import Check

if TYPE_CHECKING:
    from shipyard.runtime import AgentVersion, Runtime

Severity = Literal["error", "warning"]
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-compatible APIs accept as a function name


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where, what, and the fix in one line."""

    severity: Severity
    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")


def step_check(
    name: str,
    passed: bool,
    detail: str,
    *,
    hard: bool = True,
    skipped: bool = False,
    observed: float | None = None,
    threshold: float | None = None,
    margin: float | None = None,
) -> Check:
    """A pipeline step as a gate check, so JUnit, Markdown and approvals treat it like the others."""
    return Check(
        name=name,
        kind="pipeline",
        observed=observed,
        threshold=threshold,
        comparator="<=",
        passed=passed,
        hard=hard,
        margin=margin,
        detail=detail,
        skipped=skipped,
    )


def findings_check(name: str, findings: list[Finding], ok: str) -> Check:
    """A check failing on any error finding; warnings are listed in its detail."""
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"]
    if not findings:
        return step_check(name, True, ok)
    parts = [str(f) for f in errors[:10]] + [str(f) for f in warnings[:5]]
    more = len(errors) + len(warnings) - len(parts)
    head = f"{len(errors)} error(s), {len(warnings)} warning(s): "
    return step_check(name, not errors, head + "; ".join(parts) + (f"; {more} more" if more > 0 else ""))


# prompt lint ----------------------------------------------------------------------------------------


def lint_prompts(v: AgentVersion) -> list[Finding]:
    """The version's prompt bundle linted against its tools and prompt variables."""
    from shipyard.prompts import lint_bundle

    if v.prompts_path is None:
        return [
            Finding("warning", f"agents.{v.agent}.prompts", "no prompt bundle", "set prompts: to a folder")
        ]
    return [
        Finding(
            i.severity,
            f"{i.file}:{i.line}" if i.line else i.file,
            i.message,
            "see `shipyard prompts lint " + v.agent + "`",
        )
        for i in lint_bundle(v.bundle or v.prompts_path, tools=v.spec.tools, variables=v.prompt_variables)
    ]


# tool definitions -----------------------------------------------------------------------------------


def check_tool_definitions(rt: Runtime, v: AgentVersion) -> list[Finding]:
    """Every tool the model sees: a valid name, a description, and parameters that are a valid JSON
    schema (checked against its own metaschema), each parameter described."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    out: list[Finding] = []
    for d in rt.tool_definitions(v):
        fn = d.get("function") or {}
        name = str(fn.get("name", ""))
        where = f"tool {name!r} of agent {v.agent}"
        if not TOOL_NAME.match(name):
            out.append(
                Finding("error", where, "name must be 1-64 letters, digits, _ or -", "rename the tool")
            )
        if not str(fn.get("description") or "").strip():
            out.append(
                Finding(
                    "error",
                    where,
                    "no description: the model cannot tell when to use it",
                    "add a docstring or a tool_descriptions.yaml entry",
                )
            )
        schema = fn.get("parameters") or {}
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as e:
            out.append(
                Finding(
                    "error", where, f"parameters are not a valid JSON schema: {e.message}", "fix the schema"
                )
            )
            continue
        if schema.get("type", "object") != "object":
            out.append(
                Finding("error", where, "parameters must be an object schema", "use keyword arguments")
            )
        for arg, prop in (schema.get("properties") or {}).items():
            if isinstance(prop, dict) and not str(prop.get("description") or "").strip():
                out.append(
                    Finding(
                        "warning",
                        f"{where}, parameter {arg!r}",
                        "no description",
                        f"describe it under {name}.parameters in tool_descriptions.yaml",
                    )
                )
        for req in schema.get("required") or []:
            if req not in (schema.get("properties") or {}):
                out.append(
                    Finding("error", where, f"required parameter {req!r} is not defined", "fix the schema")
                )
    return out


# the agent's config ---------------------------------------------------------------------------------


def safety_suites(cfg: ShipyardConfig) -> list[str]:
    """Suite files of any gate stage that hold safety cases (relative to shipyard.yaml), in order."""
    from shipyard.evals import SuiteError, load_suite

    out: list[str] = []
    for policy in cfg.gates.stages().values():
        for s in policy.suites:
            if s in out:
                continue
            try:
                suite = load_suite(cfg.resolve(s))
            except (SuiteError, OSError):
                continue  # the eval step reports it
            if any(c.category == "safety" for c in suite.cases):
                out.append(s)
    return out


def analyse_config(cfg: ShipyardConfig, v: AgentVersion) -> list[Finding]:
    """Models without prices or fallbacks, no safety suite. (Tools a guardrail or a suite names that
    the agent does not have are refused where they are loaded: the runtime and the suite check.)"""
    out: list[Finding] = []
    for ref in [v.model.name, *v.model.fallbacks]:
        m = cfg.models[ref]
        if m.prices.input == 0 and m.prices.output == 0:
            out.append(
                Finding(
                    "error",
                    f"models.{ref}.prices",
                    "no prices: costs, cost gates and budgets would all see $0",
                    f"set models.{ref}.prices: {{input: ..., output: ...}} (USD per million tokens)",
                )
            )
    if not v.model.fallbacks:
        out.append(
            Finding(
                "warning",
                f"agents.{v.agent}.model.fallbacks",
                f"no fallback model: when {v.model.name!r} is down, every request fails",
                f"add agents.{v.agent}.model.fallbacks: [<another model>]",
            )
        )
    if not safety_suites(cfg):
        out.append(
            Finding(
                "error",
                "gates",
                f"no gate stage runs a suite with safety cases for agent {v.agent!r}",
                "add a suite whose cases have category: safety to gates.production.suites",
            )
        )
    return out


# the project's own tests ----------------------------------------------------------------------------


def unit_tests(cfg: ShipyardConfig) -> Check:
    """Run the project's own tests (pytest in a subprocess) when it has them, per pipeline.pre-merge."""
    settings = cfg.pipeline.pre_merge
    tests = cfg.root / "tests"
    if settings.unit_tests == "never":
        return step_check("unit_tests", True, "off (pipeline.pre-merge.unit_tests: never)", skipped=True)
    if settings.unit_tests == "auto" and not tests.is_dir() and settings.unit_test_command is None:
        return step_check("unit_tests", True, "the project has no tests/ folder", skipped=True)
    cmd = settings.unit_test_command or [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests",
    ]
    try:
        done = subprocess.run(cmd, cwd=cfg.root, capture_output=True, text=True, check=False, timeout=1800)
    except FileNotFoundError as e:
        return step_check("unit_tests", False, f"could not start {cmd[0]!r}: {e}")
    except subprocess.TimeoutExpired:
        return step_check("unit_tests", False, f"{' '.join(cmd)} ran for over 30 minutes")
    tail = [ln for ln in (done.stdout.strip() or done.stderr.strip()).splitlines() if ln.strip()][-1:]
    last = tail[0] if tail else ""
    if done.returncode == 5 and settings.unit_test_command is None:  # pytest: no tests collected
        return step_check("unit_tests", True, f"pytest collected no tests in {tests}", skipped=True)
    return step_check(
        "unit_tests",
        done.returncode == 0,
        f"`{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}` exited {done.returncode}"
        + (f": {last}" if last else ""),
    )
