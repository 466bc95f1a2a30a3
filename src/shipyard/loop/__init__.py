"""Observe, act, evolve: incidents that become eval cases, and shadow replay of real traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.loop._incidents import (
        IncidentWatcher,
        alert_signal,
        complaint_signal,
        feedback_signal,
        input_tokens,
        record_signals,
        watch,
    )
    from shipyard.loop._promote import (
        PromoteResult,
        PromotionError,
        build_case,
        make_expectation,
        promote,
        review,
        sync_fixed,
    )
    from shipyard.loop._rules import BackfillResult, backfill, matches, sampled
    from shipyard.loop._shadow import ShadowError, ShadowReport, ShadowRunner, parse_filters
    from shipyard.loop._shadow_compare import KINDS as SHADOW_KINDS
    from shipyard.loop._shadow_mirror import ShadowMirror
    from shipyard.loop._shadow_tools import ShadowTools
    from shipyard.store._shadow import get_shadow_run, list_shadow_runs, shadow_comparisons

__all__: list[str] = [
    "SHADOW_KINDS",
    "BackfillResult",
    "IncidentWatcher",
    "PromoteResult",
    "PromotionError",
    "ShadowError",
    "ShadowMirror",
    "ShadowReport",
    "ShadowRunner",
    "ShadowTools",
    "alert_signal",
    "backfill",
    "build_case",
    "complaint_signal",
    "feedback_signal",
    "get_shadow_run",
    "input_tokens",
    "list_shadow_runs",
    "make_expectation",
    "matches",
    "parse_filters",
    "promote",
    "record_signals",
    "review",
    "sampled",
    "shadow_comparisons",
    "sync_fixed",
    "watch",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
