"""What `shipyard routing evaluate` and `fit` run: arms (every call on one tier, or a router) on the
eval suites, each through its own runtime, and what they scored. Apart from the commands' module, so
`shipyard --help` builds no dataclass for it."""

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from shipyard.cli._app import err_console

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shipyard.config import ShipyardConfig
    from shipyard.evals import EvalRunResult, Suite
    from shipyard.routing import CaseOutcome


@dataclass(slots=True)
class Arm:
    """One way of choosing the model, run on the suites: every call on one tier, or a router."""

    name: str
    kind: str  # tier | router
    cases: int = 0
    passed: float = 0.0  # passes summed over cases (a case's share of passing repeats)
    cost: float = 0.0  # mean cost per case, summed
    tier_calls: Counter[str] = field(default_factory=Counter)
    per_case: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (pass share, cost)
    announced: bool = False

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0

    @property
    def cost_per_case(self) -> float:
        return self.cost / self.cases if self.cases else 0.0


def _unrouted(cfg: "ShipyardConfig") -> "ShipyardConfig":
    """The config with routing off: each arm sets its own routing on the runtime."""
    return cfg.model_copy(update={"routing": cfg.routing.model_copy(update={"enabled": False})})


def _case_key(r: Any) -> str:
    return f"{r.suite}/{r.case_id}"


async def run_arm(
    cfg: "ShipyardConfig",
    agent: str,
    suites: "Sequence[Suite]",
    arm: Arm,
    *,
    force: str | None,
    router: str | None,
    concurrency: int | None,
    routers: dict[str, Any] | None = None,
) -> "EvalRunResult":
    from shipyard.evals import EvalRunner
    from shipyard.routing import Routing
    from shipyard.runtime import Runtime

    off = _unrouted(cfg)
    rt = Runtime(off)  # no store: a what-if run is never a gate's evidence
    # sessions in memory: a what-if run leaves nothing in a shared Redis and needs none
    memory = cfg.routing.sessions.model_copy(update={"backend": "memory"})
    local = cfg.model_copy(update={"routing": cfg.routing.model_copy(update={"sessions": memory})})
    routing = Routing(local, force=force, router=router, agents=[agent], routers=routers)
    rt.routing = routing
    models = {m: t for t, m in routing.tier_models.items()}

    def count(rec: Any) -> None:
        for c in rec.llm_calls:
            arm.tier_calls[models.get(c.model, c.model)] += 1

    rt.sinks.append(count)
    try:
        runner = EvalRunner(rt, off, concurrency=concurrency, console=err_console)
        if not arm.announced:
            arm.announced = True
            err_console.print(f"[dim]running {', '.join(s.name for s in suites)} with {escape(arm.name)}[/]")
        result = await runner.run(agent, suites, progress=sys.stderr.isatty())
    finally:
        await rt.aclose()
    shares: dict[str, list[tuple[bool, float]]] = {}
    for r in result.results:
        if r.outcome.value == "SKIPPED":
            continue
        shares.setdefault(_case_key(r), []).append((r.outcome.value == "PASS", r.cost_usd))
    for key, runs in shares.items():
        p = sum(1 for ok, _ in runs if ok) / len(runs)
        c = sum(c for _, c in runs) / len(runs)
        arm.per_case[key] = (p, c)
        arm.cases += 1
        arm.passed += p
        arm.cost += c
    if result.interrupted:
        raise typer.Exit(130)
    return result


async def tier_arms(
    cfg: "ShipyardConfig", agent: str, suites: "list[Suite]", tiers: dict[str, str], concurrency: int | None
) -> dict[str, Arm]:
    import asyncio

    arms = {tier: Arm(f"always {tier} ({model})", "tier") for tier, model in tiers.items()}
    await asyncio.gather(
        *(
            run_arm(cfg, agent, suites, arm, force=tier, router=None, concurrency=concurrency)
            for tier, arm in arms.items()
        )
    )
    return arms


def outcomes(arms: dict[str, Arm], suites: "list[Suite]") -> "list[CaseOutcome]":
    from shipyard.routing import CaseOutcome

    inputs = {f"{s.name}/{c.id}": c.first_input for s in suites for c in s.cases}
    keys = set.intersection(*(set(a.per_case) for a in arms.values()))
    return [
        CaseOutcome(
            key=k,
            user=inputs.get(k, ""),
            passed={t: a.per_case[k][0] for t, a in arms.items()},
            cost={t: a.per_case[k][1] for t, a in arms.items()},
        )
        for k in sorted(keys)
    ]


async def cross_fitted(
    cfg: "ShipyardConfig",
    agent: str,
    suites: "list[Suite]",
    arms: dict[str, Arm],
    arm: Arm,
    reference: str,
    target: float,
    concurrency: int | None,
) -> None:
    """The learned router measured on cases it did not learn from: each fold of the cases is run
    with a router fitted on the tier results of the other folds."""
    import asyncio
    import random

    from shipyard.routing import fit

    by_tier = {t: a for t, a in arms.items() if a.kind == "tier"}
    cases = outcomes(by_tier, suites)
    folds = min(5, len(cases))
    arm.name = f"learned router ({folds}-fold cross-fit)"
    keys = [c.key for c in cases]
    random.Random(0).shuffle(keys)
    runs = []
    for f in range(folds):
        test = set(keys[f::folds])
        train = [c for c in cases if c.key not in test]
        router = fit(
            agent,
            train,
            list(by_tier),
            reference,
            target,
            [s.name for s in suites],
            cfg.routing.escalation.min_confidence,
        )
        part = [
            s.model_copy(update={"cases": [c for c in s.cases if f"{s.name}/{c.id}" in test]}) for s in suites
        ]
        part = [s for s in part if s.cases]
        if part:
            runs.append(
                run_arm(
                    cfg,
                    agent,
                    part,
                    arm,
                    force=None,
                    router="learned",
                    concurrency=concurrency,
                    routers={agent: router},
                )
            )
    await asyncio.gather(*runs)


def row(name: str, arm: Arm, ref: Arm) -> dict[str, Any]:
    from shipyard.config import TIERS
    from shipyard.evals import wilson_interval

    passes = round(arm.passed)
    lo, hi = wilson_interval(min(passes, arm.cases), arm.cases)
    calls = sum(arm.tier_calls.values())
    return {
        "name": arm.name,
        "key": name,
        "kind": arm.kind,
        "cases": arm.cases,
        "pass_rate": arm.pass_rate,
        "pass_rate_ci95": [lo, hi],
        "cost_per_case_usd": arm.cost_per_case,
        "cost_usd": arm.cost,
        "saved": 1 - arm.cost / ref.cost if ref.cost > 0 else 0.0,
        "pass_rate_loss_points": 100 * (ref.pass_rate - arm.pass_rate),
        "calls_by_tier": {t: arm.tier_calls[t] / calls for t in TIERS if arm.tier_calls[t]} if calls else {},
    }
