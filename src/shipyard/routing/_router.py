"""Routing: which tier's model answers each model call of a routed agent, and why.

    routing = Routing(cfg)                       # once per runtime
    calls = routing.for_session("support", session_id, client_for, signals)   # once per interaction
    route = await calls.route(messages, tools, step="final_answer")           # once per model call

A call's tier, in order: a `steps:` entry for its step; else the session's tier (sticky), chosen on
the session's first call by the `rules:` (first match) or the router (`rules`: the feature scorer;
`learned`: the fitted router) and raised (never lowered) by an escalation: a decision less confident
than `escalation.min_confidence`, a failed tool call, a tool guardrail that escalated, or a new user
turn the router rates harder than the session's tier."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import ConfigError
from shipyard.observe import log_event
from shipyard.routing._features import RouteRequest, difficulty
from shipyard.routing._sessions import MemoryTiers, RedisTiers, session_tiers

if TYPE_CHECKING:
    from shipyard.config import RoutingConfig, ShipyardConfig

REDIS_ENV = "SHIPYARD_REDIS_URL"


class Router(Protocol):
    """Scores one request: the tier, the confidence in it (0..1) and the reasons."""

    name: str

    def decide(self, r: RouteRequest) -> tuple[str, float, list[str]]: ...


class FeatureScorer:
    """The out-of-the-box router: the feature scorer's difficulty (`_features.difficulty`) against
    the configured thresholds; confidence is the distance to the nearest threshold."""

    name = "rules"

    def __init__(self, tiers: list[str], thresholds: Sequence[float]) -> None:
        if len(thresholds) != len(tiers) - 1:
            n = len(tiers)
            thresholds = [i / n for i in range(1, n)]
        self.tiers = tiers
        self.thresholds = list(thresholds)
        self._cuts = "/".join(f"{t:.2f}" for t in self.thresholds)

    def decide(self, r: RouteRequest) -> tuple[str, float, list[str]]:
        score, top = difficulty(r)
        k = sum(1 for t in self.thresholds if score >= t)
        margin = min(abs(score - t) for t in self.thresholds)
        confidence = min(1.0, margin / 0.15)  # 0.15 from a threshold is a clear call
        return (
            self.tiers[k],
            confidence,
            [f"difficulty {score:.2f} (cut-offs {self._cuts}; {', '.join(top) or 'short'})"],
        )


@dataclass(frozen=True, slots=True)
class Route:
    """The routing decision of one model call.

    Attributes:
        tier: the tier that answers; model: its model key; client: its chat client.
        reference_model: the reference tier's model key (savings are measured against its prices).
        decided_by: step | rule | rules | learned | sticky | forced | fallback.
        reasons: why, in words (on the span).
        confidence: the router's confidence when it decided now (None: it did not score).
        escalated: this call moved the session up a tier."""

    tier: str
    model: str
    client: Any
    reference_model: str
    decided_by: str
    reasons: tuple[str, ...]
    confidence: float | None = None
    escalated: bool = False
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Signals:
    """What happened in the interaction since its previous model call."""

    failed_tools: tuple[str, ...] = ()
    guardrail_escalated: bool = False


class Routing:
    """Routes the model calls of the agents `routing.agents` names (one per runtime).

    Args:
        cfg: the loaded shipyard.yaml (its `routing:` section).
        force: send every call to this tier (`shipyard routing evaluate` runs a suite per tier).
        router: `rules` or `learned` instead of the configured one.
        agents: route these agents instead of `routing.agents`.
        routers: a router object per agent instead of the configured one (a learned router fitted on
            part of a suite, to evaluate it on the rest).

    Raises ConfigError when the session store cannot be set up, and RouterNotFitted when the
    learned router is asked for and has not been fitted."""

    def __init__(
        self,
        cfg: ShipyardConfig,
        *,
        force: str | None = None,
        router: str | None = None,
        agents: Sequence[str] | None = None,
        routers: Mapping[str, Router] | None = None,
    ) -> None:
        r: RoutingConfig = cfg.routing
        self.cfg = r
        self.tier_models = r.tier_models(cfg)
        self.tiers = list(self.tier_models)
        self.reference = r.reference if r.reference in self.tier_models else self.tiers[-1]
        self.agents = set(agents if agents is not None else r.agents)
        if force is not None and force not in self.tier_models:
            raise ConfigError(
                str(cfg.path or "shipyard.yaml"),
                [f"routing: no model for tier {force!r} (tiers: {', '.join(self.tiers)})"],
            )
        self.force = force
        self.router_name = router or r.router
        self._rules = [
            (rule, re.compile(rule.when.pattern) if rule.when.pattern else None) for rule in r.rules
        ]
        self._routers: dict[str, Router] = {}
        for agent in self.agents if force is None else ():  # a forced tier asks no router
            given = routers.get(agent) if routers is not None else None
            self._routers[agent] = given if given is not None else self._build_router(cfg, agent)
        url = r.sessions.redis_url or os.environ.get(REDIS_ENV)
        if r.sessions.backend == "redis" and not url:
            raise ConfigError(
                str(cfg.path or "shipyard.yaml"),
                [
                    "routing.sessions.backend is redis but no Redis URL is set: give routing.sessions."
                    f"redis_url or the environment variable {REDIS_ENV}"
                ],
            )
        self.sessions: MemoryTiers | RedisTiers = session_tiers(r.sessions, url)

    def _build_router(self, cfg: ShipyardConfig, agent: str) -> Router:
        if self.router_name == "learned":
            from shipyard.routing._learned import LearnedRouter  # numpy: only for the learned router

            return LearnedRouter.load(self.learned_path(cfg, agent), self.tiers)
        return FeatureScorer(self.tiers, self.cfg.scorer.thresholds)

    async def aclose(self) -> None:
        """Close the session store's connections (this event loop's)."""
        if isinstance(self.sessions, RedisTiers):
            await self.sessions.aclose()

    def learned_path(self, cfg: ShipyardConfig, agent: str) -> Any:
        return cfg.resolve(self.cfg.learned.file.replace("{agent}", agent))

    def routes(self, agent: str) -> bool:
        return agent in self.agents

    def router(self, agent: str) -> Router:
        return self._routers[agent]

    def for_session(
        self,
        agent: str,
        session_id: str,
        client_for: Callable[[str], Any],
        signals: Callable[[], Signals],
    ) -> SessionRouter:
        """The router of one interaction's model calls."""
        return SessionRouter(self, agent, session_id, client_for, signals)

    # one decision --------------------------------------------------------------------------------
    def _rank(self, tier: str) -> int:
        return self.tiers.index(tier)

    def initial(self, agent: str, r: RouteRequest) -> tuple[int, str, float | None, list[str], bool]:
        """A fresh decision for a request: (rank, decided_by, confidence, reasons, raised for low
        confidence)."""
        for i, (rule, pattern) in enumerate(self._rules):
            w = rule.when
            if pattern is not None and not pattern.search(r.user):
                continue
            if w.step and r.step not in w.step:
                continue
            if w.min_words is not None and len(r.words) < w.min_words:
                continue
            if w.max_words is not None and len(r.words) > w.max_words:
                continue
            if w.min_turns is not None and r.turns < w.min_turns:
                continue
            return self._rank(rule.tier), "rule", None, [f"routing.rules[{i}] matched"], False
        router = self._routers[agent]
        tier, confidence, reasons = router.decide(r)
        rank = self._rank(tier)
        low = confidence < self.cfg.escalation.min_confidence and rank < len(self.tiers) - 1
        if low:
            rank += 1
            reasons = [
                *reasons,
                f"low confidence {confidence:.2f} < {self.cfg.escalation.min_confidence:.2f}: up to "
                f"{self.tiers[rank]}",
            ]
        return rank, router.name, confidence, reasons, low


class SessionRouter:
    """Routes the model calls of one interaction (`Routing.for_session`)."""

    def __init__(
        self,
        routing: Routing,
        agent: str,
        session_id: str,
        client_for: Callable[[str], Any],
        signals: Callable[[], Signals],
    ) -> None:
        self._routing = routing
        self._agent = agent
        self._key = f"{agent}:{session_id}"
        self._client_for = client_for
        self._signals = signals
        self._known: int | None = None  # the session's rank as this interaction last read or wrote it
        self._unsure: float | None = None  # the mean logprob of an answer under the escalation limit

    def _route(
        self,
        rank: int,
        decided_by: str,
        reasons: list[str],
        step: str | None,
        confidence: float | None = None,
        escalated: bool = False,
    ) -> Route:
        rt = self._routing
        tier = rt.tiers[rank]
        model = rt.tier_models[tier]
        return Route(
            tier=tier,
            model=model,
            client=self._client_for(model),
            reference_model=rt.tier_models[rt.reference],
            decided_by=decided_by,
            reasons=tuple(reasons),
            confidence=confidence,
            escalated=escalated,
            step=step,
        )

    def answered(self, route: Route, logprobs: Sequence[float]) -> None:
        """Note a routed call's answer: one less confident (mean token log-probability) than
        `escalation.min_answer_logprob` moves the session up on its next call."""
        limit = self._routing.cfg.escalation.min_answer_logprob
        if limit is None or not logprobs or route.decided_by in ("step", "forced"):
            return
        mean = sum(logprobs) / len(logprobs)
        if mean < limit:
            self._unsure = mean

    async def route(self, messages: list[Any], tools: list[dict[str, Any]] | None, step: str | None) -> Route:
        """The tier of one model call (`messages` as sent, `step` as the agent named it)."""
        rt = self._routing
        if rt.force is not None:
            return self._route(rt._rank(rt.force), "forced", [f"every call on {rt.force}"], step)
        if step is not None and step in rt.cfg.steps:
            tier = rt.cfg.steps[step]
            return self._route(rt._rank(tier), "step", [f"routing.steps.{step}: {tier}"], step)
        # the router reads the request on an interaction's first call and on a new user turn; a call
        # that follows a tool result within the turn keeps the tier the interaction already has
        last = messages[-1] if messages else None
        new_turn = isinstance(last, dict) and last.get("role") == "user"
        request = (
            RouteRequest.of(self._agent, messages, step=step, has_tools=bool(tools))
            if self._known is None or new_turn
            else None
        )
        # what happened since the last session-routed call (a pinned step leaves it for the next one)
        signals = self._signals()
        try:
            return await self._session_route(request, signals, step)
        except Exception as e:  # the session store is down: the reference tier (never a worse answer)
            log_event(
                "routing_session_store_failed",
                level="warning",
                agent=self._agent,
                error=f"{type(e).__name__}: {e}"[:300],
            )
            reason = f"session store unavailable ({type(e).__name__}): the reference tier"
            return self._route(rt._rank(rt.reference), "fallback", [reason], step)

    async def _session_route(self, request: RouteRequest | None, signals: Signals, step: str | None) -> Route:
        rt = self._routing
        esc = rt.cfg.escalation
        top = len(rt.tiers) - 1
        reasons: list[str] = []
        confidence: float | None = None
        escalated = False
        harder_turn = request is not None and request.new_turn and request.turns > 0  # is it harder?
        if self._known is None:
            assert request is not None
            # the interaction's first routed call: one round trip reads the session's rank and keeps
            # the router's for a new session, or a harder new turn (later calls use what it answered:
            # one round trip per interaction, plus one per escalation)
            fresh = rt.initial(self._agent, request)
            kept, stored = await rt.sessions.decide(self._key, fresh[0], raise_kept=harder_turn)
        else:
            fresh = None
            kept = stored = self._known
        if stored is None:
            assert fresh is not None
            target, decided_by, confidence, reasons, escalated = fresh
        else:
            target, decided_by = stored, "sticky"
            reasons.append(f"session kept on {rt.tiers[stored]}")
            if harder_turn:
                assert request is not None
                rank, by, conf, why, _ = fresh if fresh is not None else rt.initial(self._agent, request)
                if rank > stored:
                    target, decided_by, confidence, escalated = rank, by, conf, True
                    reasons.append(f"harder new turn: up to {rt.tiers[rank]} ({'; '.join(why)})")
        if signals.failed_tools and esc.on_tool_error and target < top:
            target += 1
            escalated = True
            reasons.append(f"failed tool call ({', '.join(signals.failed_tools)}): up to {rt.tiers[target]}")
        if signals.guardrail_escalated and esc.on_guardrail_escalation and target < top:
            target += 1
            escalated = True
            reasons.append(f"guardrail escalation: up to {rt.tiers[target]}")
        if self._unsure is not None and target < top:
            target += 1
            escalated = True
            reasons.append(
                f"low-confidence answer (mean token logprob {self._unsure:.2f} < "
                f"{esc.min_answer_logprob}): up to {rt.tiers[target]}"
            )
        self._unsure = None
        if target > kept:
            kept = await rt.sessions.raise_to(self._key, target)
        self._known = kept
        if kept != target:
            reasons.append(f"another replica had raised the session to {rt.tiers[kept]}")
        return self._route(kept, decided_by, reasons, step, confidence, escalated)


def trail_signals(tool_calls: list[Any], escalated: Callable[[], bool]) -> Callable[[], Signals]:
    """The signals of an interaction, read from its tool-call records (a `status` other than
    success or blocked is a failed call; a guardrail's block has its own trigger) and whether a
    tool guardrail escalated it. Each read reports what happened since the previous read."""
    seen = [0]
    was_escalated = [False]

    def read() -> Signals:
        new = tool_calls[seen[0] :]
        seen[0] = len(tool_calls)
        failed = tuple(c.name for c in new if getattr(c, "status", "success") not in ("success", "blocked"))
        now = escalated()
        newly = now and not was_escalated[0]
        was_escalated[0] = now
        return Signals(failed, newly)

    return read


def routing_fingerprint(cfg: ShipyardConfig, agent: str) -> str | None:
    """What routing changes about an agent's answers, as text for its version id (None when its
    calls are not routed): the routing settings (not where session tiers are kept), each tier's model
    identity, and the fitted router's content. Turning routing on is a new version, so the gates
    judge the routed agent, not the one they saw before."""
    import hashlib
    import json

    r = cfg.routing
    if not r.enabled or agent not in r.agents:
        return None
    models: dict[str, Any] = {}
    for tier, key in r.tier_models(cfg).items():
        m = cfg.models[key]
        models[tier] = {
            "key": key,
            "provider": m.provider,
            "model": m.model,
            **m.spec.identity(m.settings, cfg),
        }
    settings = r.model_dump(mode="json", exclude={"enabled", "agents", "sessions"})
    found: dict[str, Any] = {"settings": settings, "models": models}
    if r.router == "learned":
        path = cfg.resolve(r.learned.file.replace("{agent}", agent))
        found["learned"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return json.dumps(found, sort_keys=True, default=str)
