"""Model routing: each model call of a routed agent goes to a model tier (small / medium / large)
chosen by a router, and a session keeps its tier unless it escalates (`routing:` in shipyard.yaml).

Routers: the feature scorer out of the box (`router: rules`), and a learned router fitted on the
project's own eval results (`router: learned`, `shipyard routing fit`)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.routing._features import RouteRequest, difficulty
    from shipyard.routing._learned import (
        Calibration,
        CaseOutcome,
        LearnedRouter,
        RouterNotFitted,
        enough_tier,
        fit,
    )
    from shipyard.routing._router import (
        FeatureScorer,
        Route,
        Router,
        Routing,
        SessionRouter,
        Signals,
        routing_fingerprint,
        trail_signals,
    )
    from shipyard.routing._sessions import MemoryTiers, RedisTiers, SessionTiers

__all__ = [
    "Calibration",
    "CaseOutcome",
    "FeatureScorer",
    "LearnedRouter",
    "MemoryTiers",
    "RedisTiers",
    "Route",
    "RouteRequest",
    "Router",
    "RouterNotFitted",
    "Routing",
    "SessionRouter",
    "SessionTiers",
    "Signals",
    "difficulty",
    "enough_tier",
    "fit",
    "routing_fingerprint",
    "trail_signals",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy): numpy only with the learned router
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
