"""The launch checklist: every item of the pre-launch list, computed from the project and its store.

Each item is pass / fail / warning with its evidence and the fix in one line. A required item that
fails makes `shipyard checklist` exit 1; an optional one (budgets) only warns. Every `shipyard ...`
command line an item prints is in backticks and runs as printed once its <placeholders> are filled
(tests/pipeline/test_checklist.py parses each one with the real CLI)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.config import ShipyardConfig, StagePolicy
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.runtime import AgentVersion
    from shipyard.store import Store

Result = Literal["pass", "fail", "warning"]
CATEGORIES_NEEDED = ("functional", "tool_usage", "safety")
RISKY_TAGS = frozenset({"write", "money", "payment", "delete", "destructive", "risky", "external"})
"""Tool tags that make a tool with side effects risky (a tool with none is risky too: unknown)."""


@dataclass(slots=True)
class Item:
    """One checklist item."""

    key: str
    title: str
    result: Result
    evidence: str
    fix: str = ""
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _suite_categories(cfg: ShipyardConfig) -> tuple[dict[str, list[str]], list[str]]:
    """Category -> suite files holding such cases, over every gate stage; and unreadable suites."""
    from shipyard.evals import SuiteError, load_suite

    found: dict[str, list[str]] = {}
    broken: list[str] = []
    seen: set[str] = set()
    for policy in cfg.gates.stages().values():
        for s in policy.suites:
            if s in seen:
                continue
            seen.add(s)
            try:
                suite = load_suite(cfg.resolve(s))
            except (SuiteError, OSError) as e:
                broken.append(f"{s} ({str(e).splitlines()[0][:120]})")
                continue
            for c in suite.cases:
                found.setdefault(c.category, [])
                if s not in found[c.category]:
                    found[c.category].append(s)
    return found, broken


def _eval_suites(cfg: ShipyardConfig) -> Item:
    found, broken = _suite_categories(cfg)
    missing = [c for c in CATEGORIES_NEEDED if c not in found]
    evidence = (
        "; ".join(f"{c}: {', '.join(found[c])}" for c in CATEGORIES_NEEDED if c in found) or "no suites"
    )
    if broken:
        evidence += f"; unreadable: {', '.join(broken)}"
    return Item(
        "eval_suites",
        "Eval suites for each category",
        "fail" if missing or broken else "pass",
        evidence + (f"; no {', '.join(missing)} cases in any gate stage" if missing else ""),
        f"add cases with category: {missing[0]} to a suite in gates: (promptfoo and ADK sets convert with "
        "`shipyard eval import promptfoo promptfooconfig.yaml -o evals/imported.yaml`)"
        if missing
        else ("fix the unreadable suites" if broken else ""),
    )


def _production(cfg: ShipyardConfig) -> StagePolicy | None:
    return cfg.gates.stages().get("production")


def _safety_gate(cfg: ShipyardConfig) -> Item:
    p = _production(cfg)
    fix = "add `gates: {production: {suites: [...], safety: {min_pass_rate: 1.0}}}` with a safety suite"
    if p is None:
        return Item("safety_gate", "Safety gate is hard", "fail", "no production gate in shipyard.yaml", fix)
    found, _ = _suite_categories(cfg)
    safety_suites = [s for s in p.suites if s in found.get("safety", [])]
    if not safety_suites:
        return Item(
            "safety_gate",
            "Safety gate is hard",
            "fail",
            "the production gate runs no suite with safety cases",
            "add the safety suite to gates.production.suites",
        )
    relaxed = p.safety.relaxed if p.safety is not None else None
    if relaxed or "safety" not in p.hard:
        return Item(
            "safety_gate",
            "Safety gate is hard",
            "warning",
            f"the production gate relaxes the safety check: {relaxed or 'safety is not in hard'}",
            "remove the relaxation when the reason no longer holds",
        )
    floor = p.safety.min_pass_rate if p.safety is not None else 1.0
    return Item(
        "safety_gate",
        "Safety gate is hard",
        "pass",
        f"production runs {', '.join(safety_suites)}; every safety case must pass every repeat "
        f"(min {floor:g}, ERROR counts as failure)",
    )


def _latency_cost(cfg: ShipyardConfig) -> Item:
    p = _production(cfg)
    if p is None:
        return Item(
            "latency_cost_gates",
            "Latency and cost gates set",
            "fail",
            "no production gate",
            "set gates.production.max_p95_latency_ms and max_mean_cost_usd",
        )
    missing = [k for k in ("max_p95_latency_ms", "max_mean_cost_usd") if getattr(p, k) is None]
    evidence = f"p95 <= {_num(p.max_p95_latency_ms)} ms, mean cost <= ${_num(p.max_mean_cost_usd)}"
    return Item(
        "latency_cost_gates",
        "Latency and cost gates set",
        "fail" if missing else "pass",
        f"gates.production: {evidence}",
        f"set gates.production.{missing[0]}" if missing else "",
    )


def _num(value: float | None) -> str:
    return "unset" if value is None else f"{value:g}"


def _budgets(cfg: ShipyardConfig, store: Store | None, agent: str) -> Item:
    title = "Budgets set"
    b = cfg.budgets
    example = (
        "add `budgets: {limits: [{name: user-daily, scope: user, window: day, usd: 1.00}]}` to shipyard.yaml "
        "(scopes: session, user, api_key, feature, agent, global; windows: interaction, session, day, month)"
    )
    if not b.on:
        if b.limits:
            return Item("budgets", title, "warning",
                        f"budgets.enabled: false turns off {len(b.limits)} limit(s) in shipyard.yaml",
                        "remove `enabled: false` under budgets:", required=False)  # fmt: skip
        return Item(
            "budgets",
            title,
            "warning",
            "no budgets: what a session, user or day may spend has no cap (costs are recorded, and the "
            "gate's cost check holds per eval case)",
            example,
            required=False,
        )
    applies = [
        f"{x.name} ({x.scope} per {x.window}: "
        + (f"${x.usd:g}" if x.usd is not None else f"{x.tokens} tokens")
        + ")"
        for x in b.limits
        if x.agent in (None, agent)
    ]
    admin = store.admin_budgets() if store is not None else {}
    applies += [
        f"{name} (set through the admin API)"
        for name, row in sorted(admin.items())
        if (row.get("definition") or {}).get("agent") in (None, agent)
    ]
    if not applies:
        others = [x.name for x in b.limits]
        return Item(
            "budgets",
            title,
            "warning",
            f"budgets are on but none counts {agent}'s calls"
            + (f" (limits of other agents: {', '.join(others)})" if others else ""),
            example,
            required=False,
        )
    return Item(
        "budgets",
        title,
        "pass",
        f"{len(applies)} budget(s) count {agent}'s calls: {', '.join(applies)}; counters in {b.backend}",
    )


def _alerts(cfg: ShipyardConfig) -> Item:
    from shipyard.config import default_alert_rules

    rules = cfg.alerts.rules if cfg.alerts.rules is not None else list(default_alert_rules())
    targets = [*cfg.alerts.webhooks, *cfg.alerts.files]
    if not rules:
        return Item("alerts", "Alerts with thresholds and a target", "fail", "alerts.rules: [] turns alerting off",
                    "remove `rules: []`, or list rules with warn/alert thresholds")  # fmt: skip
    names = ", ".join(sorted({r.metric for r in rules}))
    if not targets:
        return Item(
            "alerts",
            "Alerts with thresholds and a target",
            "fail",
            f"{len(rules)} rule(s) ({names}) but no notification target: alerts reach only the log",
            "add alerts.webhooks: [https://hooks.example.com/...] (Slack, PagerDuty, any webhook) "
            "or alerts.files: [.shipyard/alerts.jsonl]",
        )
    sent = [f"{len(cfg.alerts.webhooks)} webhook(s)"] if cfg.alerts.webhooks else []
    sent += [f"appended to {f}" for f in cfg.alerts.files]
    return Item(
        "alerts",
        "Alerts with thresholds and a target",
        "pass",
        f"{len(rules)} rule(s) on {names}; {', '.join(sent)}",
    )


def _tracing(cfg: ShipyardConfig) -> Item:
    endpoint = cfg.server.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    found = []
    if endpoint:
        where = "server.otlp_endpoint" if cfg.server.otlp_endpoint else "OTEL_EXPORTER_OTLP_ENDPOINT"
        found.append(f"OTLP to {endpoint} ({where})")
    if cfg.server.otlp_file:
        found.append(f"OTLP JSON lines to {cfg.server.otlp_file} (server.otlp_file)")
    if found:
        return Item("tracing", "Tracing exporter configured", "pass", "; ".join(found))
    return Item(
        "tracing",
        "Tracing exporter configured",
        "fail",
        "no OTLP endpoint or file: traces stay in Shipyard's store only",
        "set server.otlp_endpoint: http://collector:4318 (or OTEL_EXPORTER_OTLP_ENDPOINT, or "
        "server.otlp_file: .shipyard/traces.jsonl)",
    )


def _guardrails(cfg: ShipyardConfig, agent: str) -> tuple[Item, Item]:
    g = cfg.agents[agent].guardrails
    inputs = list(getattr(g, "input", []) or [])
    outputs = list(getattr(g, "output", []) or [])
    tool_checks = list(getattr(g, "tool_call", []) or []) + list(getattr(g, "tool_result", []) or [])
    pii = [x for x in outputs if x.kind == "pii"]
    capture = cfg.server.content_capture
    if pii and not capture:
        pii_item = Item("pii_redaction", "PII redaction on", "pass",
                        f"output guardrail {pii[0].label!r} (pii); content capture off in logs")  # fmt: skip
    else:
        why = [] if pii else [f"agent {agent!r} has no pii output guardrail"]
        if capture:
            why.append("server.content_capture is on (logs keep message content)")
        pii_item = Item(
            "pii_redaction",
            "PII redaction on",
            "fail",
            "; ".join(why),
            f"add `- kind: pii` under agents.{agent}.guardrails.output"
            if not pii
            else "set server.content_capture: false",
        )
    actions = [x for x in [*tool_checks, *outputs]]
    ok = bool(inputs) and bool(actions)
    missing = "input" if not inputs else "output"
    rails = Item(
        "guardrails",
        "Guardrails configured",
        "pass" if ok else "fail",
        f"input: {[x.label for x in inputs] or 'none'}; tool calls: {[x.label for x in tool_checks] or 'none'}; "
        f"output: {[x.label for x in outputs] or 'none'}",
        ""
        if ok
        else f"add agents.{agent}.guardrails.{missing}: "
        + (
            "[{kind: prompt_injection}]"
            if missing == "input"
            else "[{kind: pii}] or tool_call: [{kind: tool_policy, ...}]"
        ),
    )
    return pii_item, rails


def _kill_switches(cfg: ShipyardConfig, v: AgentVersion | None) -> Item:
    from shipyard.flags import load_flag_file

    if v is None:
        return Item("kill_switches", "Kill switches on risky tools", "fail", "the agent could not be loaded",
                    "fix the agent's entry point first")  # fmt: skip
    tools = v.spec.tools
    risky: list[str] = []
    gentle: list[str] = []
    for name in tools.names():
        get = getattr(tools, "get", None)
        tool = get(name) if get is not None else None
        tags = set(getattr(tool, "tags", ()) or ())
        if tool is not None and getattr(tool, "idempotent", False):
            continue
        # side effects: risky when tagged as writing, moving money or deleting, or when untagged (unknown)
        (risky if not tags or tags & RISKY_TAGS else gentle).append(name)
    if not risky:
        return Item(
            "kill_switches",
            "Kill switches on risky tools",
            "pass",
            "no tool with side effects (all idempotent)",
        )
    covered: set[str] = set()
    path = cfg.resolve(cfg.flags.file)
    if path.is_file():
        try:
            flag_set = load_flag_file(path)
        except ShipyardError as e:
            return Item(
                "kill_switches",
                "Kill switches on risky tools",
                "fail",
                f"{path}: {e.message}",
                "fix the flag file",
            )
        for flag in flag_set.flags.values():
            rule = (flag.metadata or {}).get("killSwitch") or {}
            covered |= {t for t in rule.get("tools", []) if isinstance(t, str)}
    uncovered = [t for t in risky if t not in covered]
    evidence = f"risky tools: {', '.join(risky)}; guarded by a kill switch: {', '.join(sorted(covered & set(risky))) or 'none'}"
    if gentle:
        evidence += f"; side effects but not tagged risky: {', '.join(gentle)}"
    return Item(
        "kill_switches",
        "Kill switches on risky tools",
        "fail" if uncovered else "pass",
        evidence,
        f'add a flag with "metadata": {{"killSwitch": {{"tools": ["{uncovered[0]}"], "toolErrorRate": 0.2}}}} to '
        f"{cfg.flags.file}"
        if uncovered
        else "",
    )


def _rollback(store: Store | None, agent: str) -> Item:
    title = "Rollback rehearsed"
    if store is None:
        return Item("rollback_rehearsed", title, "fail", "the store could not be opened", "check store.url")
    rollbacks = [d for d in store.rollout_decisions(agent, limit=None) if d.get("action") == "rollback"]
    if not rollbacks:
        # a canary runs a candidate beside a deployed stable version; each needs a passing production gate
        steps = (
            []
            if (store.get_deployment(agent) or {}).get("stable_version")
            else [
                f"`shipyard gate production --agent {agent} --version <stable>`",
                f"`shipyard deploy {agent} <stable>`",
            ]
        )
        steps += [
            f"`shipyard gate production --agent {agent} --version <candidate>`",
            f"`shipyard rollout canary {agent} <candidate>`",
        ]
        return Item(
            "rollback_rehearsed",
            title,
            "fail",
            f"no canary of {agent} was ever rolled back in this store",
            f"rehearse it: {', '.join(steps)}, then `shipyard rollout rollback {agent}`",
        )
    d = rollbacks[0]
    return Item(
        "rollback_rehearsed",
        title,
        "pass",
        f"{len(rollbacks)} rollback(s); latest of {d.get('candidate')} at {str(d.get('created_at'))[:19]} by {d.get('actor')}",
    )


def _prompts_versioned(cfg: ShipyardConfig, v: AgentVersion | None, agent: str) -> Item:
    from shipyard.pipeline._git import _git, repo_root

    title = "Prompts versioned"
    if v is None or v.prompts_path is None or v.bundle is None:
        return Item("prompts_versioned", title, "fail", f"agent {agent!r} has no prompt bundle",
                    f"set agents.{agent}.prompts to a folder with system_prompt.txt and version.txt")  # fmt: skip
    if "version.txt" not in v.bundle.files:
        return Item("prompts_versioned", title, "fail", f"{v.prompts_path} has no version.txt",
                    f"add {v.prompts_path}/version.txt with a label like 1.0.0")  # fmt: skip
    evidence = f"{v.prompts_path.relative_to(cfg.root) if v.prompts_path.is_relative_to(cfg.root) else v.prompts_path}: label {v.label}, version {v.id}"
    repo = repo_root(cfg.root)
    if repo is not None:
        tracked = _git(repo, "ls-files", "--error-unmatch", str(v.prompts_path / "version.txt"))
        if tracked.returncode != 0:
            return Item("prompts_versioned", title, "fail", evidence + "; not tracked by git",
                        f"git add {v.prompts_path}")  # fmt: skip
        evidence += "; tracked by git"
    return Item("prompts_versioned", title, "pass", evidence)


def _ci_workflow(cfg: ShipyardConfig) -> Item:
    from shipyard.pipeline._git import repo_root
    from shipyard.pipeline._templates import GITHUB_PATH, GITLAB_PATH

    roots = [cfg.root]
    repo = repo_root(cfg.root)
    if repo is not None and repo != cfg.root:
        roots.append(repo)
    candidates: list[Path] = []
    for r in roots:
        candidates += [*sorted((r / GITHUB_PATH.parent).glob("*.y*ml")), r / GITLAB_PATH]
    found = [p for p in candidates if p.is_file() and "shipyard ci run" in p.read_text(errors="replace")]
    if found:
        return Item(
            "ci_workflow",
            "CI workflow present",
            "pass",
            f"runs `shipyard ci run`: {', '.join(map(str, found))}",
        )
    return Item(
        "ci_workflow",
        "CI workflow present",
        "fail",
        "no GitHub or GitLab workflow runs `shipyard ci run`",
        "`shipyard ci init --github` (or `shipyard ci init --gitlab`)",
    )


def _pipeline_stages(cfg: ShipyardConfig) -> Item:
    stages = cfg.gates.stages()
    missing = [s for s in cfg.pipeline.stages if s not in stages or not stages[s].suites]
    return Item(
        "pipeline_stages",
        "Every pipeline stage gates on evals",
        "fail" if missing else "pass",
        f"gates with suites: {', '.join(s for s in stages if stages[s].suites) or 'none'}",
        f"add gates.{missing[0]}.suites (or drop {missing[0]} from pipeline.stages)" if missing else "",
    )


def run_checklist(cfg: ShipyardConfig, agent: str) -> list[Item]:
    """Every item, in the order of the pre-launch list."""
    from shipyard.runtime import agent_versions
    from shipyard.store import Store

    v: AgentVersion | None
    try:
        v = agent_versions(cfg, agent)[0]
    except ShipyardError:
        v = None
    try:
        store: Store | None = Store.from_config(cfg)
    except ShipyardError:
        store = None
    try:
        pii, rails = _guardrails(cfg, agent)
        return [
            _eval_suites(cfg),
            _safety_gate(cfg),
            _latency_cost(cfg),
            _pipeline_stages(cfg),
            _budgets(cfg, store, agent),
            _alerts(cfg),
            _tracing(cfg),
            pii,
            _kill_switches(cfg, v),
            _rollback(store, agent),
            _prompts_versioned(cfg, v, agent),
            _ci_workflow(cfg),
            rails,
        ]
    finally:
        if store is not None:
            store.close()


def checklist_failed(items: list[Item]) -> bool:
    return any(i.required and i.result == "fail" for i in items)


def render_markdown(items: list[Item], agent: str) -> str:
    mark = {"pass": "✅", "fail": "❌", "warning": "⚠️"}
    out = [f"### Launch checklist: {agent}", "", "| | item | evidence | fix |", "|---|---|---|---|"]
    for i in items:
        cells = [mark[i.result], i.title + ("" if i.required else " (optional)"), i.evidence, i.fix or ""]
        out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    failed = [i for i in items if i.required and i.result == "fail"]
    out += ["", f"**{'NOT READY' if failed else 'READY'}**: {len(failed)} required item(s) fail."]
    return "\n".join(out) + "\n"
