"""The gate of the version a server serves when no deployment chooses one.

An agent with no deployment row (every fresh `shipyard serve`, a prompt edit a config reload picks
up) is served its current configured version. Where the gate is required (`server.require_gate`,
see `gate_required`), that version takes production traffic only when it passed (or was approved at)
its production gate, or when an admin overrode the gate for it with a reason (`override_serving`,
a `gate_override` decision in the agent's decision log, written to the audit log too). Otherwise the
request is refused (`VersionUnavailable`, a 503) with the commands that fix it.

When is the gate required? Like API keys (server/_auth.py), it latches on: always when the server is
bound to anything but loopback or `server.require_gate: true`; on loopback (the quick start, a
developer's own machine) as soon as the agent has a deployment or any production gate run in the
store, since from then on the team ships through gates. `server.require_gate: false` turns it off,
on loopback only. An override covers the version and the gate runs it was made against: a
production gate run of that version made after it decides again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import ShipyardError
from shipyard.observe import log_event
from shipyard.rollout._assigner import publish_change
from shipyard.rollout._controller import gate_command, gate_for_traffic, override_lines, production_gate
from shipyard.rollout._deployment import RolloutAction

if TYPE_CHECKING:
    from shipyard.rollout._controller import RolloutController

SERVING = "take production traffic without a deployment"


@dataclass(frozen=True, slots=True)
class ServingGate:
    """Whether an agent's current configured version may take production traffic on its own.

    Attributes:
        agent: the agent.
        version: its current configured version id.
        required: the gate is required for it here (see the module docstring).
        why_required: what latched it on ("" when not required).
        refused: why its production gate does not allow it (None: a PASS, or an approved MARGINAL).
        run_id: its newest production gate run (None: never gated).
        override: the admin's override that lets it serve anyway ({by, reason, at, refused}), or None.
    """

    agent: str
    version: str
    required: bool
    why_required: str = ""
    refused: str | None = None
    run_id: str | None = None
    override: dict[str, Any] | None = None

    @property
    def gated(self) -> bool:
        """True when it passed (or was approved at) its production gate, or an admin overrode it."""
        return self.refused is None or self.override is not None

    @property
    def serves(self) -> bool:
        """True when it may take production traffic here."""
        return self.gated or not self.required

    def refusal(self) -> str:
        """The one-line message a refused request gets: what, why, and the commands that fix it."""
        label = self.version.split("@", 1)[-1].split("+", 1)[0]
        return (
            f"{self.version} is not served as production traffic: {self.refused} (the production gate is "
            f"required here: {self.why_required}). Run `{gate_command(self.agent, self.version)}`, then "
            f"`shipyard deploy {self.agent} {label}`; or an admin overrides the gate with a reason: "
            f"`shipyard rollout override-gate {self.agent} {label} --reason TEXT`"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gated": self.gated, "serves": self.serves}


def gate_required(store: Any, agent: str, require: bool | None, *, deployed: bool) -> str:
    """Why the gate is required for `agent` ("" when it is not).

    Args:
        require: `server.require_gate` as the server applies it: True (set, or bound to anything
            but loopback), False (off, loopback only), None (latched by the store).
        deployed: the agent has a deployment row.
    """
    if require is not None:
        return "server.require_gate is on" if require else ""
    if deployed:
        return f"{agent!r} has a deployment"
    if store.list_eval_runs(agent, stage="production", limit=1, status=None):
        return f"{agent!r} has production gate runs"
    return ""


def serving_override(store: Any, agent: str, version: str, run_id: str | None) -> dict[str, Any] | None:
    """The newest admin override that lets `version` serve without a passing gate, or None. It
    counts only while the version's newest production gate run is the one it was made against."""
    for d in store.rollout_decisions(agent, limit=50, candidate=version):
        if d.get("action") != RolloutAction.GATE_OVERRIDE:
            continue
        gate = (d.get("numbers") or {}).get("gate") or {}
        if (gate.get("runs") or {}).get(version) != run_id:
            return None  # a gate run made since the override decides again
        ride: dict[str, Any] | None = gate.get("override")
        return ride
    return None


def serving_gate(
    store: Any, agent: str, version: str, require: bool | None, *, deployed: bool
) -> ServingGate:
    """Read (blocking) whether `version`, `agent`'s current configured version, may serve on its own."""
    why = gate_required(store, agent, require, deployed=deployed)
    run, refused = production_gate(store, agent, version, doing=SERVING)
    run_id = str(run["id"]) if run else None
    if refused is None:
        return ServingGate(agent, version, bool(why), why, None, run_id, None)
    ride = serving_override(store, agent, version, run_id)
    return ServingGate(agent, version, bool(why), why, refused.message, run_id, ride)


def override_serving(
    ctl: RolloutController, agent: str, ref: str | None, reason: str, *, actor: str
) -> dict[str, Any]:
    """An admin lets `ref` (default: the current configured version) take production traffic
    without a passing production gate: recorded in the agent's decision log as `gate_override` (who,
    why, what the gate said), written to the audit log (`gate_overridden`), and told to replicas.
    Raises ShipyardError when the reason is empty or the gate already allows the version."""
    version = ctl._version(agent, ref)
    gate = gate_for_traffic(
        ctl.store, agent, [version], doing=SERVING, override=reason, actor=actor, at=ctl.clock()
    )
    ride = gate["override"]
    if ride is None:
        raise ShipyardError(
            f"{version} passed its production gate (run {gate['runs'][version]}); there is nothing to override",
            hint=f"deploy it instead: `shipyard deploy {agent} {version}`",
        )
    decision = {
        "agent": agent,
        "action": RolloutAction.GATE_OVERRIDE,
        "candidate": version,
        "verdict": "OVERRIDE",
        "reasons": [f"{version} may {SERVING}", *override_lines(gate)],
        "numbers": {"gate": gate},
        "actor": actor,
    }
    row = ctl.store.add_rollout_decision(agent, {k: v for k, v in decision.items() if k != "agent"})
    log_event(
        "gate_overridden",
        level="warning",
        audit=True,
        agent=agent,
        action=str(RolloutAction.GATE_OVERRIDE),
        candidate=version,
        step=0,
        actor=actor,
        overridden_by=ride.get("by"),
        reason=ride.get("reason"),
        gate_said=ride.get("refused"),
    )
    publish_change(ctl.redis_url, agent)  # replicas refresh at once, as after any rollout change
    if ctl.on_change is not None:
        ctl.on_change(agent)
    return {**decision, "created_at": row.get("created_at")}
