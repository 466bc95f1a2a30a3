"""The rollout part of `shipyard demo`: version 1.1's canary rolled back for its real regression,
then the fixed version 1.2 promoted step by step to 100%.

1.1 did not pass its production gate, so its canary is started the way an admin would start it,
with `--override-gate REASON` (recorded in the decision log); 1.2 is gated first when it has not
been. The demo uses nothing a user's project cannot.

Runs in-process (the runtime, the assigner and the controller on the project's store) with the
simulator's conversations and simulated customer feedback, so it needs no server and takes seconds.
The regression 1.1 carries is real: its "faster refunds" prompt refunds orders the policy does not
allow. Production catches it with the refund policy the demo project configures as an output
guardrail (`tool_policy` in its shipyard.yaml: a refund made without a confirmed eligibility check is
blocked), which is a critical safety incident for the canary. The runtime here is made like every
other, so the served app's pipeline catches exactly what this demo catches.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.rule import Rule

from shipyard.cli._traffic import conversations, feedback_for

OVERRIDE_1_1 = "the demo shows what production traffic catches in a version its gate refused"

if TYPE_CHECKING:
    from shipyard.rollout import Decision, RolloutController
    from shipyard.runtime import Runtime
    from shipyard.store import InteractionRecord, Store


async def simulate_traffic(
    rt: Runtime,
    store: Store,
    interactions: int,
    *,
    rng: random.Random,
    agent: str = "support",
    users: int = 400,
    feedback_rate: float = 0.3,
    concurrency: int = 64,
) -> list[InteractionRecord]:
    """Run about `interactions` turns of simulated conversations through the runtime (versions
    assigned by its assigner), give a share simulated feedback, and store the records.

    Each session draws its feedback from a generator of its own, seeded from `rng` when the session
    is planned: the sessions run concurrently and finish in an order that depends on how busy the
    machine is, and a shared generator would hand out different feedback in each order."""
    stream = conversations(rng, users)
    records: list[InteractionRecord] = []
    limit = asyncio.Semaphore(concurrency)

    async def session(turns: list[str], session_id: str, user_id: str, own: random.Random) -> None:
        history: list[Any] = []
        async with limit:
            for text in turns:
                r = await rt.invoke(agent, text, session_id=session_id, user_id=user_id, history=history)
                history += [{"role": "user", "content": text}, {"role": "assistant", "content": r.output}]
                if own.random() < feedback_rate:
                    r.feedback = {**feedback_for(own, r.status, r.output), "at": r.created_at}
                records.append(r)

    jobs = []
    planned = 0
    while planned < interactions:
        conv = next(stream)
        planned += len(conv.turns)
        jobs.append(session(conv.turns, conv.session_id, conv.user_id, random.Random(rng.getrandbits(64))))
    await asyncio.gather(*jobs)
    await asyncio.to_thread(store.write_interactions, records)
    return records


def _numbers_line(d: Decision) -> str:
    a = d.numbers.get("analysis") or {}
    base, can = d.numbers.get("baseline", {}), d.numbers.get("canary", {})
    score = a.get("score")
    return (
        f"baseline n={base.get('interactions')}  canary n={can.get('interactions')}  score {score:.0f}"
        if isinstance(score, (int, float))
        else f"baseline n={base.get('interactions')}  canary n={can.get('interactions')}"
    )


def _show(console: Console, d: Decision, weight: int) -> None:
    from shipyard.cli.rollout import print_analysis

    style = {"rollback": "bold red", "promote": "bold green", "step_up": "green", "pause": "yellow"}.get(
        d.action, "dim"
    )
    verdict = d.verdict or "-"
    console.print(f"  [{style}]{d.action}[/] at {weight}%: {verdict}   {_numbers_line(d)}", highlight=False)
    for r in d.reasons[:4]:
        console.print(f"    {r}", highlight=False, markup=False)
    analysis = d.numbers.get("analysis") or {}
    if d.action in ("rollback", "promote") and analysis:
        print_analysis(analysis)


async def _run_canary(
    console: Console,
    rt: Runtime,
    store: Store,
    ctl: RolloutController,
    version: str,
    rng: random.Random,
    *,
    min_interactions: int,
    override_gate: str | None = None,
    max_batches: int = 40,
) -> str:
    """Start a canary as `shipyard rollout canary` does, drive traffic and tick until it is
    promoted, rolled back or paused. `override_gate`: the reason to start it although the version
    did not pass its production gate (`--override-gate`); without one such a version is refused."""
    from shipyard.rollout import RolloutAssigner, override_lines, production_gate

    version_id = rt.resolve_version("support", version).id
    override = None
    run, refused = production_gate(store, "support", version_id, doing="take canary traffic")
    if refused is not None:
        if override_gate is None:
            raise refused
        verdict = ((run or {}).get("decision") or {}).get("verdict")
        said = {None: "has not passed a production gate", "FAIL": "failed its production gate"}.get(
            verdict, f"did not pass its production gate ({verdict})"
        )
        console.print(
            f"[yellow]{version} {said}; we canary it anyway with --override-gate to show what "
            "production catches[/]"
        )
        override = override_gate
    command = (
        f"shipyard rollout canary support {version} --steps 5,25,50,100 "
        f"--min-interactions {min_interactions} --min-duration 0 --by demo"
    )
    console.print(f"[bold cyan]$ {command}{f' --override-gate {override!r}' if override else ''}[/]")
    dep = ctl.start_canary(
        "support",
        version,
        steps="5,25,50,100",
        min_interactions=min_interactions,
        min_duration_s=0,
        actor="demo",
        override_gate=override,
    )
    for line in override_lines(dep.config.get("gate")):
        console.print(f"  [yellow]{line}[/]", highlight=False)
    assigner = rt.assigner
    assert isinstance(assigner, RolloutAssigner)
    console.print(
        f"canary of [bold]{dep.candidate_version}[/] against {dep.stable_version}: steps 5 → 25 → 50 → 100%,"
        f" at least {min_interactions} interactions per arm per step"
    )
    for _ in range(max_batches):
        assigner.refresh()  # what the server's 2-second refresh does
        dep = ctl.get("support")
        if dep.state != "running":
            break
        # a sixth of what the smaller arm needs per batch, then a tick: the step is judged soon after it
        # has its minimum, without a large overshoot of simulated traffic
        share = min(dep.weight, 100 - dep.weight) / 100
        await simulate_traffic(rt, store, int(min_interactions / share / 6) + 20, rng=rng)
        decision = ctl.tick("support")
        if decision is not None and decision.action != "hold":
            _show(console, decision, dep.weight)
    final = ctl.get("support")
    console.print(f"→ {final.state}: stable is now [bold]{final.stable_version}[/]\n")
    return final.state


def _gate_first(console: Console, store: Store, config: Path, version_id: str, label: str) -> None:
    """Run the production gate on a version that has not passed one, as a user would before its
    canary (`shipyard gate production`); the canary refuses it otherwise."""
    from shipyard.cli.demo import _shipyard
    from shipyard.errors import GateFailed
    from shipyard.rollout import check_deployable

    try:
        check_deployable(store, "support", version_id, doing="take canary traffic")
    except GateFailed:
        console.print(f"{label} takes traffic only once it passes its production gate:")
        _shipyard("gate", "production", "--agent", "support", "--version", label, "-c", str(config))
        console.print()


def run_rollout_demo(
    config: Path, console: Console, *, seed: int = 1, min_interactions: int = 60
) -> dict[str, str]:
    """The rollout demo on the project at `config`: returns the final state of each canary
    (`{"1.1": "rolled_back", "1.2": "promoted"}` when all goes as designed)."""
    from shipyard.config import load_config
    from shipyard.rollout import RolloutAssigner, RolloutController
    from shipyard.runtime import Runtime
    from shipyard.store import Store

    cfg = load_config(config)
    rng = random.Random(seed)
    outcome: dict[str, str] = {}
    with Store.from_config(cfg) as store:
        rt = Runtime(cfg, store=store)
        RolloutAssigner.for_runtime(rt, store)
        ctl = RolloutController.for_runtime(rt, store)

        async def go() -> None:
            try:
                dep = ctl.get("support")
                first = rt.resolve_version("support", None).id
                if dep.revision and (dep.active or dep.stable_version != first):  # an earlier demo run
                    store.save_deployment(
                        "support",
                        dict(
                            stable_version=first,
                            candidate_version=None,
                            strategy="none",
                            weight=0,
                            state="stable",
                            step=0,
                            config={},
                        ),
                        expected_revision=dep.revision,
                        decision={
                            "action": "deploy",
                            "candidate": first,
                            "actor": "demo",
                            "reasons": ["demo: back to the first version"],
                        },
                    )
                console.print(Rule('[bold]Canary: version 1.1 (the "faster refunds" prompt)[/]'))
                outcome["1.1"] = await _run_canary(
                    console,
                    rt,
                    store,
                    ctl,
                    "1.1",
                    rng,
                    min_interactions=min_interactions,
                    override_gate=OVERRIDE_1_1,
                )
                console.print(Rule("[bold]Canary: version 1.2 (faster refunds, eligibility check kept)[/]"))
                v12 = rt.resolve_version("support", "1.2").id
                await asyncio.to_thread(_gate_first, console, store, config, v12, "1.2.0")
                outcome["1.2"] = await _run_canary(
                    console, rt, store, ctl, "1.2", rng, min_interactions=min_interactions
                )
            finally:
                await rt.aclose()

        asyncio.run(go())
    console.print("every decision and its numbers: [bold]shipyard rollout status support --last 20[/]")
    return outcome
