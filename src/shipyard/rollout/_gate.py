"""The eval gate a canary step can require: run suites against the candidate, apply the policy.

Runs in its own runtime and event loop, so it can be called from the controller in any thread
(the server ticks the controller in a worker thread). The run is stored like any eval run, with
stage `canary`, and its gate decision; the controller records the verdict with the step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.config import ShipyardConfig, StagePolicy
from shipyard.rollout._controller import EvalGate
from shipyard.store import EvalRunStatus

if TYPE_CHECKING:
    from shipyard.evals import GateVerdict


@dataclass(frozen=True, slots=True)
class EvalGateResult:
    """What a canary step's eval gate decided.

    Attributes:
        verdict: PASS lets the step go on; FAIL rolls the canary back; MARGINAL pauses it.
        reasons: the decision's first reasons.
        run_id: the stored eval run (stage `canary`).
        policy: the stage whose policy judged the suites (see `policy_for`).
    """

    verdict: GateVerdict
    reasons: tuple[str, ...]
    run_id: str
    policy: str

    def to_dict(self) -> dict[str, Any]:
        """As kept in the decision log's numbers."""
        return {
            "verdict": str(self.verdict),
            "reasons": list(self.reasons),
            "run_id": self.run_id,
            "policy": self.policy,
        }


def policy_for(cfg: ShipyardConfig, suites: list[str]) -> tuple[str, StagePolicy]:
    """The policy to judge `suites` by: that of the first stage (pre-merge, post-merge, production)
    that runs all of them, since its thresholds were set for suites of that size; else production's."""
    for name, policy in cfg.gates.stages().items():
        if set(suites) <= set(policy.suites):
            return name, policy
    return "production", cfg.gates.stage("production")


def eval_gate(cfg: ShipyardConfig, store: Any) -> EvalGate:
    """An `EvalGate` for the project: the policy of the stage that runs the given suites (pass
    rates, safety, latency, cost; no regression check) applied to them."""

    def run(agent: str, version: str, suites: list[str]) -> EvalGateResult:
        from shipyard.evals import EvalRunner, case_keys, decide_gate, load_suite, summarize_run
        from shipyard.runtime import Runtime

        stage, policy = policy_for(cfg, suites)
        policy = policy.model_copy(update={"regression": None})
        loaded = [load_suite(cfg.resolve(s)) for s in suites]

        async def go() -> Any:
            rt = Runtime(cfg, store=store)
            try:
                runner = EvalRunner(rt, cfg, repeat=policy.repeat)
                return await runner.run(
                    agent,
                    loaded,
                    version,
                    stage="canary",
                    progress=False,
                )
            finally:
                await rt.aclose()

        result = asyncio.run(go())
        summary = summarize_run(result, policy.case_rule)
        decision = decide_gate(summary, policy, None, stage="canary", expected_cases=case_keys(loaded))
        row = store.get_eval_run(summary.run_id) or {}
        stored = {**(row.get("summary") or {}), **summary.to_dict()}
        store.finish_eval_run(
            summary.run_id, row.get("status") or EvalRunStatus.FINISHED, stored, decision.to_dict()
        )
        return EvalGateResult(decision.verdict, tuple(decision.reasons[:10]), summary.run_id, stage)

    return run
