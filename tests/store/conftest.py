"""Fixtures: each test gets an empty database, a SQLite file or a PostgreSQL schema: `db_url` a fresh
one, `store` one at the newest schema."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testdb import KINDS, fresh_database, newest_schema_database

from shipyard.store import InteractionRecord, LLMCallRecord, SpanRecord, Store, ToolCallRecord, new_id


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh schema in the local PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A Store on an empty database at the newest schema, migrated once per process (each test runs on
    SQLite and on PostgreSQL: testdb.newest_schema_database), closed afterwards. A module that sets
    FRESH_DATABASE = True gets a fresh database, migrated by the store: its tests measure sizes on disk,
    and an emptied PostgreSQL schema keeps the pages its relations grew to."""
    folder = tmp_path_factory.mktemp("db")
    with contextlib.ExitStack() as stack:
        if getattr(request.module, "FRESH_DATABASE", False):
            url = stack.enter_context(fresh_database(request.param, folder))
        else:
            url = newest_schema_database(request.param, folder)
        s = stack.enter_context(contextlib.closing(Store(url)))
        yield s


def make_record(**overrides: Any) -> InteractionRecord:
    """A realistic interaction: one LLM call, one tool call, two spans, JSON-heavy fields."""
    trace_id = overrides.pop("trace_id", new_id())
    fields: dict[str, Any] = dict(
        id=new_id(),
        trace_id=trace_id,
        session_id="sess-1",
        user_id="user-1",
        agent="support",
        version="support@1.0.0+abc1234",
        traffic_source="production",
        input="Where is my order 10001?",
        output="Order 10001 shipped yesterday.",
        status="completed",
        latency_ms=123.5,
        input_tokens=120,
        output_tokens=30,
        cached_input_tokens=64,
        cost_usd=0.00042,
        tool_calls=[
            ToolCallRecord(
                name="lookup_order",
                arguments={"order_id": "10001", "fields": ["status", "eta"]},
                status="success",
                duration_ms=4.25,
                result={"status": "shipped", "items": [{"sku": "A-1", "qty": 2}]},
            )
        ],
        llm_calls=[
            LLMCallRecord(
                model="small",
                provider="scripted",
                duration_ms=80.0,
                input_tokens=120,
                output_tokens=30,
                cached_input_tokens=64,
                cost_usd=0.00042,
                tool_calls=["lookup_order"],
            )
        ],
        guardrails=[{"name": "pii", "verdict": "allow", "details": {"matches": []}}],
        metadata={"channel": "web", "ünïcode": "✓", "nested": {"n": [1, 2.5, None, True]}},
        spans=[
            SpanRecord(
                trace_id, "a1", None, "invoke_agent support", "internal", 1_000, 9_000_000_000_000_000_000
            ),
            SpanRecord(
                trace_id,
                "b2",
                "a1",
                "execute_tool lookup_order",
                "internal",
                2_000,
                3_000,
                attributes={"gen_ai.tool.name": "lookup_order", "gen_ai.usage.input_tokens": 5},
            ),
        ],
    )
    fields.update(overrides)
    return InteractionRecord(**fields)


@pytest.fixture
def record_factory() -> Callable[..., InteractionRecord]:
    return make_record
