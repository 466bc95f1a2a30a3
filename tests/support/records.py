"""Interaction records for tests: one valid record, every required field set, that a test changes
only where it matters."""

from __future__ import annotations

import secrets
from typing import Any

from shipyard.store import InteractionRecord, new_id


def interaction(**overrides: Any) -> InteractionRecord:
    """A completed production interaction of agent `support`, with a fresh id and a random trace id
    (as OpenTelemetry makes them: the trace sampler reads its bits); `overrides` set any field."""
    fields: dict[str, Any] = dict(
        id=new_id(),
        trace_id=secrets.token_hex(16),
        session_id="s",
        user_id=None,
        agent="support",
        version="support@1.0.0+abc1234",
        traffic_source="production",
        input="Where is my order 10001?",
        output="It shipped.",
        status="completed",
        latency_ms=10.0,
    )
    fields.update(overrides)
    return InteractionRecord(**fields)
