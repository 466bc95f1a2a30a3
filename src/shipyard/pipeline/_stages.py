"""The three stages and `run_pipeline`, which runs them in order and stops at the first that does not
pass.

Each stage is one eval run under its gate policy (`gates.<stage>`) plus the pipeline's own steps,
which become checks of the same decision: a failed lint or health check fails the stage's gate just
as a failed case does, and a review requirement makes it MARGINAL (a recorded approval ships it).
The decision is stored on the stage's eval run, so `shipyard approve` and every deploy path read it.
Each stage writes `<stage>.xml` (JUnit, the evals writer) and the whole run writes `comment.md`."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from shipyard.config import PIPELINE_STAGES, RegressionPolicy, ShipyardConfig, StagePolicy
from shipyard.errors import ConfigError, ShipyardError
from shipyard.evals import (
    Check,
    GateDecision,
    GateVerdict,
    RunSummary,
    case_keys,
    decide_gate,
    pass_summary,
    skipped_reason,
    summarize_run,
)
from shipyard.pipeline._evals import (
    Baseline,
    base_from_commit,
    base_from_version,
    ci_dir,
    finish_replay,
    load_suites,
    replay_plan,
    run_evals,
    save_decision,
)
from shipyard.pipeline._git import ChangeSet, detect_changes
from shipyard.pipeline._review import (
    RED_TEAM_PREFIX,
    consistency,
    consistency_check,
    review_change,
    review_checks,
)
from shipyard.pipeline._static import (
    analyse_config,
    check_tool_definitions,
    findings_check,
    lint_prompts,
    safety_suites,
    step_check,
    unit_tests,
)

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.runtime import AgentVersion
    from shipyard.store import Store

Status = Literal["pass", "fail", "waiting", "error"]
EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "error": 1, "waiting": 3}
DOC_SUFFIXES = {".md", ".rst", ".adoc"}


@dataclass(slots=True)
class StageResult:
    """What one stage did: its status, every check, the eval run and where its reports went."""

    stage: str
    status: Status
    checks: list[Check] = field(default_factory=list)
    summary: RunSummary | None = None
    decision: GateDecision | None = None
    baseline: Baseline | None = None
    notes: list[str] = field(default_factory=list)
    junit: Path | None = None
    duration_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str | None:
        return self.summary.run_id if self.summary else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": self.status,
            "run_id": self.run_id,
            "version": self.summary.version if self.summary else None,
            "verdict": self.decision.verdict if self.decision else None,
            "baseline": (self.baseline.label if self.baseline and self.baseline.summary else None),
            "baseline_cached": bool(self.baseline and self.baseline.cached),
            "checks": [
                {"name": c.name, "passed": c.passed, "skipped": c.skipped, "hard": c.hard, "detail": c.detail}
                for c in self.checks
            ],
            "notes": self.notes,
            "junit": str(self.junit) if self.junit else None,
            "duration_s": round(self.duration_s, 3),
            **self.extra,
        }


@dataclass(slots=True)
class CiOptions:
    """How `shipyard ci run` was asked to run.

    agent: the agent (default: pipeline.agent, else the only one); version: the candidate (default:
    the current version); base: a git ref overriding pipeline.base_ref; base_version: compare with
    this version of the same project instead of a git commit; out: where reports go; run: decide the
    production stage on this stored run (after an approval) instead of running it again."""

    agent: str | None = None
    version: str | None = None
    base: str | None = None
    base_version: str | None = None
    out: Path | None = None
    concurrency: int = 8
    run: str | None = None
    console: Console | None = None


@dataclass(slots=True)
class _Context:
    cfg: ShipyardConfig
    store: Store
    agent: str
    version: AgentVersion
    changes: ChangeSet
    base_version: AgentVersion | None
    out: Path
    options: CiOptions
    results: list[StageResult] = field(default_factory=list)

    @property
    def base_label(self) -> str:
        if self.base_version is not None:
            return self.base_version.id
        if self.changes.base_commit:
            return f"{self.changes.base_ref} @ {self.changes.base_commit[:10]}"
        return ""


def pick_agent(cfg: ShipyardConfig, name: str | None) -> str:
    agent = name or cfg.pipeline.agent
    if agent is None:
        if len(cfg.agents) != 1:
            known = ", ".join(sorted(cfg.agents)) or "none"
            raise ShipyardError(
                f"{cfg.path}: say which agent the pipeline gates ({known})",
                hint="pass --agent NAME, or set pipeline.agent in shipyard.yaml",
            )
        agent = next(iter(cfg.agents))
    if agent not in cfg.agents:
        known = ", ".join(sorted(cfg.agents)) or "none"
        raise ShipyardError(f"no agent named {agent!r} in {cfg.path} (agents: {known})")
    return agent


def stage_policy(cfg: ShipyardConfig, stage: str) -> StagePolicy:
    policy = cfg.gates.stages().get(stage)
    if policy is None or not policy.suites:
        raise ConfigError(
            str(cfg.path),
            [f"gates.{stage}.suites: the {stage} stage needs suites to run"],
            hint=f"list suite files under gates.{stage}.suites in shipyard.yaml, or leave {stage} out of "
            "pipeline.stages",
        )
    return policy


def _combine(decision: GateDecision, extra: list[Check], notes: list[str]) -> GateDecision:
    """The decision with the pipeline's checks added and the verdict recomputed by the gate's rule."""
    checks = [*extra, *decision.checks]
    failed = [c for c in checks if not c.passed]
    blocking = [c for c in failed if not c.within_margin]
    verdict = GateVerdict.FAIL if blocking else (GateVerdict.MARGINAL if failed else GateVerdict.PASS)
    # a PASS's first reason sums up its checks (see pass_summary); it is restated over all of them
    was_pass = decision.verdict is GateVerdict.PASS
    reasons = decision.reasons[1:] if was_pass else list(decision.reasons)
    if verdict is GateVerdict.PASS:
        reasons.insert(0, pass_summary(checks))
    else:  # the skipped checks the summary named, or that the evals' decision never saw
        reasons += [skipped_reason(c) for c in (checks if was_pass else extra) if c.skipped]
    for c in extra:
        if not c.passed:
            label = "hard" if c.hard else "needs approval"
            reasons.insert(0, f"{c.name} ({label}) failed: {c.detail}")
    reasons += notes
    decision.checks, decision.verdict, decision.reasons = checks, verdict, reasons
    return decision


def _status(decision: GateDecision, approvals: list[dict[str, Any]]) -> Status:
    if decision.verdict is GateVerdict.PASS:
        return "pass"
    if decision.verdict is GateVerdict.FAIL:
        return "fail"
    people = [a for a in approvals if not str(a.get("reason", "")).startswith(RED_TEAM_PREFIX)]
    unsigned = [c for c in decision.checks if c.name == "review.red_team" and not c.passed]
    return "pass" if people and not unsigned else "waiting"


def _finish(
    ctx: _Context,
    result: StageResult,
    run: Any,
    summary: RunSummary,
    decision: GateDecision,
    approvals: list[dict[str, Any]] | None = None,
) -> StageResult:
    from shipyard.evals import write_report

    result.summary, result.decision, result.checks = summary, decision, decision.checks
    result.status = _status(decision, approvals or [])
    if run is not None:
        save_decision(ctx.store, summary, run, decision)
    result.junit = ctx.out / f"{result.stage}.xml"
    write_report("junit", result.junit, run, summary, decision)
    return result


def _policy_with(policy: StagePolicy, baseline: str | None) -> StagePolicy:
    """The policy, with a regression check when the pipeline compares against a base."""
    if baseline is None or policy.regression is not None:
        return policy
    return policy.model_copy(update={"regression": RegressionPolicy(baseline=baseline)})


# pre-merge ----------------------------------------------------------------------------------------


def _select_suites(ctx: _Context, refs: list[str]) -> tuple[list[str], str]:
    """The suites the change touches, and why; all of them when git cannot tell."""
    cfg, changes = ctx.cfg, ctx.changes
    if cfg.pipeline.pre_merge.fast_evals == "all":
        return refs, "every suite (pipeline.pre-merge.fast_evals: all)"
    if ctx.base_version is not None and not changes.known:
        return (
            refs,
            f"every suite: the candidate {ctx.version.id} differs from the base {ctx.base_version.id}",
        )
    if not changes.known:
        return refs, f"every suite: {changes.why_unknown}"
    assert changes.files is not None
    others = [
        cfg.resolve(a.prompts)
        for name, a in cfg.agents.items()
        if name != ctx.agent and a.prompts and cfg.resolve(a.prompts) != ctx.version.prompts_path
    ]
    suite_files = {cfg.resolve(s).resolve(): s for s in refs}
    touched_suites: list[str] = []
    relevant: list[str] = []
    for f in changes.files:
        p = (cfg.root / f).resolve()
        if p in suite_files:
            touched_suites.append(suite_files[p])
        elif (
            p.suffix.lower() in DOC_SUFFIXES
            or f.startswith("docs/")
            or any(p.is_relative_to(o.resolve()) for o in others)
        ):
            continue
        else:
            relevant.append(f)
    if relevant:
        shown = ", ".join(relevant[:5]) + (f" and {len(relevant) - 5} more" if len(relevant) > 5 else "")
        return refs, f"every suite: the change touches {shown}"
    if touched_suites:
        return touched_suites, f"only the changed suite(s): {', '.join(touched_suites)}"
    return (
        [],
        f"none: the {len(changes.files)} changed file(s) touch no agent file and no suite of {ctx.agent}",
    )


async def _pre_merge(ctx: _Context) -> StageResult:
    cfg, v = ctx.cfg, ctx.version
    result = StageResult("pre-merge", "fail")
    policy = stage_policy(cfg, "pre-merge")
    from shipyard.runtime import Runtime

    rt = Runtime(cfg)
    try:
        v = rt.resolve_version(ctx.agent, v.id)
        static = [
            findings_check("lint.prompts", lint_prompts(v), "the prompt bundle lints clean"),
            findings_check(
                "tools.definitions",
                check_tool_definitions(rt, v),
                f"{len(v.spec.tools.names())} tool definition(s) valid",
            ),
            findings_check("config.analysis", analyse_config(cfg, v), "the agent's config is sound"),
        ]
    finally:
        await rt.aclose()
    static.append(await asyncio.to_thread(unit_tests, cfg))
    refs, why = _select_suites(ctx, policy.suites)
    result.notes.append(f"fast eval set: {why}")
    if not refs:
        static.append(step_check("evals.fast_set", True, why, skipped=True))
        result.checks = static
        result.status = "fail" if any(not c.passed for c in static) else "pass"
        return result
    suites, paths = load_suites(cfg, refs)
    plan = replay_plan(cfg, ctx.agent, v.hash, paths)
    result.notes.append(
        "model calls "
        + ("replayed from the CI cache" if plan.mode == "replay" else "recorded to the CI cache")
        + f" ({plan.directory.relative_to(cfg.root)})"
    )
    baseline = await _baseline(ctx, "pre-merge", refs, suites, paths, policy.repeat)
    result.baseline = baseline
    run = await run_evals(
        cfg, ctx.store, ctx.agent, suites, version=v.id, stage="pre-merge", repeat=policy.repeat,
        mode=plan.mode, replay_dir=plan.directory, concurrency=ctx.options.concurrency,
        console=ctx.options.console,
    )  # fmt: skip
    missed = [r for r in run.results if r.error and "replay: the recording has no" in r.error]
    if plan.mode == "replay" and missed:
        # the same version asked something the recording lacks (a tool answer that changed): the
        # recording is stale, not the candidate wrong; run live again and record anew
        result.notes.append(
            f"{len(missed)} repeat(s) missed the CI replay cache: run live and recorded again"
        )
        plan.marker.unlink(missing_ok=True)
        plan.mode = "record"
        run = await run_evals(
            cfg, ctx.store, ctx.agent, suites, version=v.id, stage="pre-merge", repeat=policy.repeat,
            mode="record", replay_dir=plan.directory, concurrency=ctx.options.concurrency,
            console=ctx.options.console,
        )  # fmt: skip
    finish_replay(plan, run)
    summary = summarize_run(run, policy.case_rule)
    gate_policy = _policy_with(policy, baseline.summary.run_id if baseline.summary else None)
    decision = decide_gate(
        summary, gate_policy, baseline.summary, stage="pre-merge", expected_cases=case_keys(suites)
    )
    if baseline.summary is None:  # said in the reports as a skipped check, never silently
        why = baseline.why or "no base branch"
        static.append(step_check("regression.base", True, f"no base to compare with: {why}", skipped=True))
    return _finish(ctx, result, run, summary, _combine(decision, static, []))


async def _baseline(
    ctx: _Context, stage: str, refs: list[str], suites: list[Any], paths: list[Path], repeat: int | None
) -> Baseline:
    if ctx.base_version is not None:
        if ctx.base_version.id == ctx.version.id:
            return Baseline(None, ctx.base_version.id, why="the candidate is the base version itself")
        return await base_from_version(
            ctx.cfg,
            ctx.store,
            ctx.agent,
            stage,
            suites,
            paths,
            ctx.base_version.id,
            repeat,
            ctx.options.console,
        )
    if ctx.changes.base_commit is not None and ctx.changes.repo is not None:
        return await asyncio.to_thread(base_from_commit, ctx.cfg, ctx.agent, stage, refs, ctx.changes)
    return Baseline(None, "", why=ctx.changes.why_unknown or "no base branch")


# post-merge ---------------------------------------------------------------------------------------


def _dedupe(*groups: list[str]) -> list[str]:
    out: list[str] = []
    for g in groups:
        out += [s for s in g if s not in out]
    return out


async def _post_merge(ctx: _Context) -> StageResult:
    from shipyard.pipeline._staging import HttpRuntime, StagingServer, benchmark, served_versions

    cfg, v = ctx.cfg, ctx.version
    settings = cfg.pipeline.post_merge
    result = StageResult("post-merge", "fail")
    policy = stage_policy(cfg, "post-merge")
    refs = _dedupe(policy.suites, settings.suites, safety_suites(cfg), settings.integration_suites)
    suites, _ = load_suites(cfg, refs)
    # a case that fixes its tools' answers needs an in-process interceptor, which a server cannot
    # take: such a suite runs in the production stage (in process), not through the staging server
    fixed = {
        s.name
        for s in suites
        if any(getattr(c, "tool_results", None) or getattr(c, "recorded_tools_only", False) for c in s.cases)
    }
    explicit = set(policy.suites) | set(settings.suites) | set(settings.integration_suites)
    blocked = [r for r, s in zip(refs, suites, strict=True) if s.name in fixed and r in explicit]
    if blocked:
        raise ConfigError(
            str(cfg.path),
            [f"{', '.join(blocked)}: cases with tool_results cannot run through the staging server"],
            hint="list such suites under gates.production (they run in process there)",
        )
    kept = [(r, s) for r, s in zip(refs, suites, strict=True) if s.name not in fixed]
    if len(kept) < len(refs):
        left = [r for r, s in zip(refs, suites, strict=True) if s.name in fixed]
        result.notes.append(f"left to the production stage (their cases fix tool answers): {', '.join(left)}")
    refs, suites = [r for r, _ in kept], [s for _, s in kept]
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{v.hash[:8]}"
    folder = ci_dir(cfg) / "staging" / stamp
    checks: list[Check] = []
    try:
        server = await asyncio.to_thread(StagingServer(cfg, folder, settings.startup_timeout_s).__enter__)
    except ShipyardError as e:
        result.checks = [step_check("staging.start", False, e.message + (f" ({e.hint})" if e.hint else ""))]
        return result
    try:
        checks.append(
            step_check(
                "staging.healthz",
                server.health.get("status_code") == 200,
                f"GET /healthz {server.health.get('status_code')} on {server.base_url}",
            )
        )
        agents = server.ready.get("agents") or {}
        checks.append(
            step_check(
                "staging.readyz",
                server.ready.get("status") == "ready",
                f"GET /readyz: {server.ready.get('status')}, store {server.ready.get('store')}, agents {agents}",
            )
        )
        served = await served_versions(server.base_url, ctx.agent)
        if v.id not in served:
            checks.append(
                step_check(
                    "staging.version",
                    False,
                    f"the staging server does not serve {v.id} (it serves {', '.join(served) or 'nothing'}): the "
                    "copy differs from the project (a file git ignores?)",
                )
            )
            result.checks = checks
            return result
        checks.append(step_check("staging.version", True, f"serves {v.id}"))
        rt = HttpRuntime(cfg, server.base_url, store=ctx.store)
        try:
            run = await run_evals(
                cfg, ctx.store, ctx.agent, suites, version=v.id, stage="post-merge", repeat=policy.repeat,
                runtime=rt, concurrency=ctx.options.concurrency, console=ctx.options.console,
            )  # fmt: skip
        finally:
            await rt.aclose()
        if settings.benchmark is not None:
            inputs = [c.first_input for s in suites for c in s.cases]
            bench = await benchmark(
                server.base_url,
                ctx.agent,
                v.id,
                inputs,
                settings.benchmark.requests,
                settings.benchmark.concurrency,
            )
            result.extra["benchmark"] = bench
            checks += _benchmark_checks(bench, policy)
    finally:
        code = await asyncio.to_thread(server.stop)
        result.notes.append(
            f"staging server stopped ({'SIGTERM' if code == -signal.SIGTERM else f'exit {code}'}); its records "
            f"are kept: {server.database_url}, log {server.log}"
        )
    summary = summarize_run(run, policy.case_rule)
    base, result.baseline = await _stage_baseline(ctx, "post-merge", policy, summary, refs, suites, result)
    decision = decide_gate(summary, policy, base, stage="post-merge", expected_cases=case_keys(suites))
    result.notes.append(f"suites through the staging server's HTTP API: {', '.join(refs)}")
    return _finish(ctx, result, run, summary, _combine(decision, checks, []))


def _benchmark_checks(bench: dict[str, Any], policy: StagePolicy) -> list[Check]:
    figures = (
        f"{bench['requests']} requests at concurrency {bench['concurrency']}: p50 {bench['p50_ms']:.0f} ms, "
        f"p95 {bench['p95_ms']:.0f} ms, {bench['throughput_rps']:.1f} req/s"
        if bench["p95_ms"] is not None
        else "no request answered"
    )
    cost = bench["mean_cost_usd"]
    out = [
        step_check(
            "benchmark.errors",
            bench["errors"] == 0,
            f"{bench['errors']} of {bench['requests']} requests failed; {figures}",
            observed=float(bench["errors"]),
            threshold=0.0,
        )
    ]
    if policy.max_p95_latency_ms is not None and bench["p95_ms"] is not None:
        out.append(
            Check(
                "benchmark.latency_p95",
                "latency",
                bench["p95_ms"],
                policy.max_p95_latency_ms,
                "<=",
                bench["p95_ms"] <= policy.max_p95_latency_ms,
                "latency" in policy.hard,
                policy.max_p95_latency_ms * policy.marginal_margin,
                figures,
            )
        )
    if policy.max_mean_cost_usd is not None and cost is not None:
        out.append(
            Check(
                "benchmark.cost_mean",
                "cost",
                cost,
                policy.max_mean_cost_usd,
                "<=",
                cost <= policy.max_mean_cost_usd,
                "cost" in policy.hard,
                policy.max_mean_cost_usd * policy.marginal_margin,
                f"mean recorded cost per request, {figures}",
            )
        )
    return out


# production ---------------------------------------------------------------------------------------


async def _production(ctx: _Context) -> StageResult:
    from shipyard.evals import load_run_summary, repeat_from_row

    cfg, v = ctx.cfg, ctx.version
    settings = cfg.pipeline.production
    result = StageResult("production", "fail")
    policy = stage_policy(cfg, "production")
    refs = _dedupe(policy.suites, settings.adversarial_suites, safety_suites(cfg))
    suites, _ = load_suites(cfg, refs)
    checks: list[Check] = []
    if ctx.options.run:
        row = ctx.store.get_eval_run(ctx.options.run)
        if row is None or row["agent"] != ctx.agent or row.get("stage") != "production":
            raise ShipyardError(
                f"no production run {ctx.options.run!r} of agent {ctx.agent!r}",
                hint="`shipyard ci run production` prints its run id",
            )
        summary = load_run_summary(ctx.store, ctx.options.run, policy.case_rule)
        run: Any = [repeat_from_row(r) for r in ctx.store.eval_results(ctx.options.run)]
        if summary.version != v.id:
            raise ShipyardError(f"run {ctx.options.run} is of {summary.version}, not the candidate {v.id}")
        result.notes.append(f"decided again on stored run {ctx.options.run}")
    else:
        run = await run_evals(
            cfg, ctx.store, ctx.agent, suites, version=v.id, stage="production", repeat=policy.repeat,
            concurrency=ctx.options.concurrency, console=ctx.options.console,
        )  # fmt: skip
        summary = summarize_run(run, policy.case_rule)
    approvals = ctx.store.approvals(summary.run_id)
    models = [v.model.name, *v.model.fallbacks]
    if len(models) > 1:
        runs = {v.model.name: summary}
        for m in v.model.fallbacks:
            runs[m] = await _run_on_model(ctx, suites, m, policy.repeat)
        c = consistency(runs)
        checks.append(consistency_check(c, settings.min_model_agreement))
        result.extra["consistency"] = {"rate": c.rate, "disagreeing": c.disagreeing}
    else:
        checks.append(
            step_check(
                "consistency.models", True, f"one model ({v.model.name}): nothing to compare", skipped=True
            )
        )
    checks += await _reviews(ctx, approvals)
    base, result.baseline = await _stage_baseline(ctx, "production", policy, summary, refs, suites, result)
    decision = decide_gate(summary, policy, base, stage="production", expected_cases=case_keys(suites))
    decision = _combine(decision, checks, [])
    out = _finish(ctx, result, run, summary, decision, approvals)
    if out.status == "waiting":
        rid = summary.run_id
        out.notes.append(
            f"awaiting approval: shipyard approve {rid} --by NAME --reason TEXT"
            + (
                " (and --red-team for the sign-off)"
                if any(c.name == "review.red_team" and not c.passed for c in decision.checks)
                else ""
            )
            + f", then shipyard ci run production --run {rid}"
        )
    elif approvals and out.status == "pass" and decision.verdict is GateVerdict.MARGINAL:
        out.notes.append(f"approved by {approvals[-1]['by']}: {approvals[-1]['reason']}")
    return out


async def _run_on_model(ctx: _Context, suites: list[Any], model: str, repeat: int | None) -> RunSummary:
    """The same suites with the agent on one model (no fallbacks), for cross-model consistency."""
    cfg = ctx.cfg.model_copy(deep=True)
    agent = cfg.agents[ctx.agent]
    agent.model = agent.model.model_copy(update={"name": model, "fallbacks": []})
    agent.versions = []
    cfg._root, cfg._path = ctx.cfg.root, ctx.cfg.path
    run = await run_evals(
        cfg, ctx.store, ctx.agent, suites, version=None, stage="production-consistency", repeat=repeat,
        concurrency=ctx.options.concurrency, console=ctx.options.console,
    )  # fmt: skip
    return summarize_run(run)


async def _reviews(ctx: _Context, approvals: list[dict[str, Any]]) -> list[Check]:
    from shipyard.prompts import PromptBundleError, load_bundle_from_git
    from shipyard.runtime import Runtime

    cfg, v, settings = ctx.cfg, ctx.version, ctx.cfg.pipeline.production
    rt = Runtime(cfg)
    try:
        cand = rt.resolve_version(ctx.agent, v.id)
        tools = rt.tool_definitions(cand)
        if ctx.base_version is not None:
            base_v = rt.resolve_version(ctx.agent, ctx.base_version.id)
            review = review_change(base_v.bundle, cand.bundle, rt.tool_definitions(base_v), tools, base_v.id)
        elif ctx.changes.base_commit and ctx.changes.repo is not None and cand.prompts_path is not None:
            try:
                base_bundle = load_bundle_from_git(
                    ctx.changes.repo, ctx.changes.base_commit, cand.prompts_path
                )
            except PromptBundleError:
                base_bundle = None  # a new bundle: every line of it is new
            review = review_change(base_bundle, cand.bundle, None, tools, ctx.base_label)
        else:
            return [
                step_check("review.prompt_change", True, "no base to compare the prompts with", skipped=True)
            ]
    finally:
        await rt.aclose()
    return review_checks(review, settings, approvals)


async def _stage_baseline(
    ctx: _Context,
    stage: str,
    policy: StagePolicy,
    summary: RunSummary,
    refs: list[str],
    suites: list[Any],
    result: StageResult,
) -> tuple[RunSummary | None, Baseline]:
    """The run the stage's gate compares with (its policy's regression baseline), and the one the PR
    comment shows: that same run, or without a regression policy the base branch's run of these
    suites, shown and not gated on."""
    from shipyard.evals import resolve_baseline

    if policy.regression is not None:
        ref = policy.regression.baseline
        base = resolve_baseline(
            ctx.store, ctx.agent, ref, stage=stage, exclude_run_id=summary.run_id, case_rule=policy.case_rule
        )
        label = f"{ref} ({base.version})" if base is not None else ref
        return base, Baseline(base, label, why="" if base is not None else f"no finished run of {ref!r} yet")
    shown = await _baseline(ctx, stage, refs, suites, [ctx.cfg.resolve(r) for r in refs], policy.repeat)
    if shown.summary is not None:
        result.notes.append(
            f"the change against {shown.label} is shown, not gated (gates.{stage} has no regression policy)"
        )
    return None, shown


STAGES = {"pre-merge": _pre_merge, "post-merge": _post_merge, "production": _production}


async def run_pipeline(cfg: ShipyardConfig, stages: list[str], options: CiOptions) -> list[StageResult]:
    """Run `stages` in order for the candidate; stop at the first that does not pass.

    Raises ShipyardError / ConfigError (exit 2) for what the user must fix before anything can run."""
    from shipyard.pipeline._comment import render_comment
    from shipyard.runtime import Runtime
    from shipyard.store import Store, private_dir

    unknown = [s for s in stages if s not in PIPELINE_STAGES]
    if unknown:
        raise ShipyardError(f"unknown stage {unknown[0]!r}; stages are {', '.join(PIPELINE_STAGES)}")
    agent = pick_agent(cfg, options.agent)
    for s in stages:
        stage_policy(cfg, s)  # every configuration problem before anything runs
    rt = Runtime(cfg)
    try:
        version = rt.resolve_version(agent, options.version)
        current = rt.resolve_version(agent, None)
        base_version = rt.resolve_version(agent, options.base_version) if options.base_version else None
    finally:
        await rt.aclose()
    changes = detect_changes(cfg.root, options.base or cfg.pipeline.base_ref)
    if base_version is None and changes.base_commit is None and version.id != current.id:
        base_version = current  # no git base: the agent's current version is what the branch has now
    out = options.out or ci_dir(cfg) / "reports"
    private_dir(out)
    results: list[StageResult] = []
    with Store.from_config(cfg) as store:
        ctx = _Context(cfg, store, agent, version, changes, base_version, out, options, results)
        for stage in stages:
            t0 = time.perf_counter()
            result = await STAGES[stage](ctx)
            result.duration_s = time.perf_counter() - t0
            results.append(result)
            (out / "comment.md").write_text(render_comment(results, agent=agent, version=version.id))
            if result.status != "pass":
                break
    (out / "summary.json").write_bytes(
        orjson.dumps(
            {"agent": agent, "version": version.id, "stages": [r.to_dict() for r in results]},
            option=orjson.OPT_INDENT_2,
            default=str,
        )
    )
    return results


def exit_code(results: list[StageResult]) -> int:
    """0 every stage passed, 1 a stage failed, 3 a stage waits for an approval."""
    for r in results:
        if r.status != "pass":
            return EXIT_CODES[r.status]
    return 0
