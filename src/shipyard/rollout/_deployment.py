"""A deployment (one agent's stable version, candidate and rollout state) and sticky assignment.

Assignment is a pure function of the deployment and a key, so every replica gives the same answer
without talking to the others: flagd's `fractional` bucketing of `"{agent}:{key}"` over
`[(candidate, weight), (stable, 100 - weight)]`. The candidate is listed first, so raising its
weight only moves keys from the stable version to the candidate, never the other way.

Traffic tagging (what canary analysis and KPIs read): an interaction a canary sends to its
candidate has `traffic_source = "canary"`; everything else stays `"production"`. The analysis
compares `production` records of the stable version with `canary` records of the candidate on
the same window, so previews forced with `X-Shipyard-Version` (still `production`, but of the
candidate version) never enter either arm. Experiments keep `production` and add
`metadata.experiment` and `metadata.arm` ("a" or "b").
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shipyard.flags import fractional


class Strategy(StrEnum):
    """How a deployment brings in its candidate."""

    NONE = "none"  # nothing rolling out
    CANARY = "canary"
    BLUE_GREEN = "blue_green"
    EXPERIMENT = "experiment"


class RolloutState(StrEnum):
    """Where a deployment is (see `Deployment`)."""

    STABLE = "stable"
    RUNNING = "running"
    PAUSED = "paused"
    READY = "ready"
    SWITCHED = "switched"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    STOPPED = "stopped"


class RolloutAction(StrEnum):
    """What the controller (or a person) did, as the decision log records it."""

    DEPLOY = "deploy"
    START = "start"
    STEP_UP = "step_up"
    HOLD = "hold"
    DRY_RUN = "dry_run"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ABORT = "abort"
    SWITCH = "switch"
    GATE_OVERRIDE = "gate_override"  # an admin lets an ungated version serve without a deployment


# States in which a candidate is deployed beside the stable version (one candidate at a time).
ACTIVE_STATES = frozenset(
    {RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.READY, RolloutState.SWITCHED}
)
DEFAULT_STEPS = (5, 25, 50, 100)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One agent's deployment as stored.

    `strategy`: none | canary | blue_green | experiment. `state`: stable (nothing rolling out);
    a canary is running | paused | promoted | rolled_back | aborted; blue-green is ready (green
    deployed, preview only) | switched (all traffic on green, blue kept) | promoted | rolled_back |
    aborted; an experiment is running | stopped. `weight` is the candidate's percent of traffic.
    `revision` grows with every change (optimistic concurrency)."""

    agent: str
    stable_version: str | None = None
    candidate_version: str | None = None
    strategy: Strategy = Strategy.NONE
    weight: int = 0
    state: RolloutState = RolloutState.STABLE
    step: int = 0
    started_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # a stored row's strings become the enums
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        object.__setattr__(self, "state", RolloutState(self.state))

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Deployment:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in row.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("started_at", "updated_at"):
            d[key] = d[key].isoformat() if d[key] is not None else None
        return d

    @property
    def active(self) -> bool:
        """A candidate is deployed beside the stable version."""
        return (
            self.strategy is not Strategy.NONE
            and self.state in ACTIVE_STATES
            and self.candidate_version is not None
        )

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.config.get("steps", DEFAULT_STEPS)]

    @property
    def dry_run(self) -> bool:
        return bool(self.config.get("dry_run"))

    @property
    def gate_override(self) -> dict[str, Any] | None:
        """The admin's override of the production gate this rollout started with (`by`, `reason`,
        `at`, and `refused`: what the gate said of each version), or None."""
        override = (self.config.get("gate") or {}).get("override")
        return dict(override) if override else None

    def arms(self) -> list[tuple[str, int]]:
        """`(version, weight)` pairs for bucketing, the candidate first; empty when all traffic goes
        to the stable version."""
        if not self.active or self.candidate_version is None:
            return []
        if self.strategy is Strategy.EXPERIMENT:
            a, b = self.config["arms"]["a"], self.config["arms"]["b"]
            split = int(self.config.get("split", 50))
            return [(b, split), (a, 100 - split)]
        if self.stable_version is None or self.weight >= 100:
            return [(self.candidate_version, 100)]
        return [(self.candidate_version, self.weight), (self.stable_version, 100 - self.weight)]


def assignment_key(session_id: str | None, user_id: str | None) -> str:
    """What a request is bucketed by: its session id, else its user id, else a random key
    (a request with neither is assigned afresh each time)."""
    return session_id or user_id or uuid.uuid4().hex


UNIT_KEY = "assignment_unit"
"""The record metadata key where the assigner says what an experiment's request was bucketed by
(`assignment_unit`)."""


def assignment_unit(session_id: str | None, user_id: str | None) -> str:
    """Which of them `assignment_key` keys on: ``session``, ``user``, or ``request`` (neither: a
    random key, the request alone). Recorded rather than the key itself: the record keeps the
    session and user ids unmasked, while its metadata is masked at rest (an e-mail address as a
    user id would become ``[EMAIL]``, and every such user one unit)."""
    return "session" if session_id else "user" if user_id else "request"


def assign(deployment: Deployment, key: str) -> str | None:
    """The version a request with this key runs (None: the agent's current configured version).

    Args:
        deployment: the agent's deployment.
        key: the assignment key (`assignment_key`); the same key always gets the same answer for
            the same deployment, on every replica.
    """
    arms = deployment.arms()
    if not arms:
        return deployment.stable_version
    if len(arms) == 1:
        return arms[0][0]
    return fractional(f"{deployment.agent}:{key}", arms)
