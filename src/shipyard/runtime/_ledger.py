"""What the cost ledger needs from an interaction beyond its record's columns: the features it was
tagged with (by `ctx.tag_feature` or a flag), the money it saved (`Trail.savings`), and each model
call's tier. The store derives the ledger rows from the record (`shipyard.store.ledger_rows`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.agents import FEATURE_NAME
from shipyard.flags import FlagsForContext
from shipyard.observe import log_event
from shipyard.store import LEDGER_KEY

if TYPE_CHECKING:
    from shipyard.runtime._pipeline import Exchange
    from shipyard.runtime._runtime import Runtime

FEATURE_METADATA = "feature"
"""The flag metadata key naming the feature a flag tags when it evaluates true (flagd format):
`"metadata": {"feature": "new_refund_flow"}`."""


def flag_features(flags: FlagsForContext, features: list[str]) -> None:
    """Add to `features` the feature of each flag the agent evaluated true whose metadata names one."""
    for d in flags.evaluations:
        if d.value is not True:
            continue
        name = flags.store.metadata(d.flag).get(FEATURE_METADATA)
        if not isinstance(name, str) or not FEATURE_NAME.fullmatch(name):
            if name is not None:
                log_event("flag_feature_ignored", level="warning", flag=d.flag, feature=str(name)[:100],
                          reason="a feature name is 1-64 letters, digits, '_', '-', '.' or ':'")  # fmt: skip
            continue
        if name not in features:
            features.append(name)


def ledger_metadata(metadata: dict[str, Any], ex: Exchange, rt: Runtime) -> None:
    """Put the ledger's part of the record in `metadata[LEDGER_KEY]` (replacing whatever a request
    or an agent put there: only the runtime says what was tagged or saved, and which API key
    called), and each model call's tier on its call record."""
    trail = ex.trail
    metadata.pop(LEDGER_KEY, None)
    ledger: dict[str, Any] = {}
    if ex.api_key:
        ledger["api_key_id"] = ex.api_key  # the caller's key prefix (what `shipyard keys list` shows)
    if trail.features:
        ledger["features"] = list(trail.features)
    savings = {reason: usd for reason, usd in trail.savings.items() if usd > 0}
    if savings:
        ledger["savings"] = savings
    if ledger:
        metadata[LEDGER_KEY] = ledger
    models = rt.cfg.models
    for call in trail.llm_calls:
        if call.tier is None:
            model = models.get(call.model)
            call.tier = model.tier if model is not None else None
