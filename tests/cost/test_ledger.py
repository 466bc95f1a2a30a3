"""The cost ledger through a real Runtime: an agent on a mock LLM server over HTTP, records written
by the store's background writer to SQLite and PostgreSQL, one priced ledger row per model call with
its features and savings, and the reports by every dimension."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_project import PRICES, RULES, forget, write_project
from testdb import KINDS, newest_schema_database

from shipyard.config import ModelPrices, load_config
from shipyard.cost import REPORT_DIMENSIONS, call_cost, cost_report
from shipyard.llm import MockLLMServer, Usage
from shipyard.runtime import Runtime
from shipyard.store import BatchWriter, InteractionRecord, LLMCallRecord, Store, ledger_rows, new_id


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at the newest schema (testdb.newest_schema_database)."""
    return newest_schema_database(request.param, tmp_path)


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with MockLLMServer(RULES) as url:
        yield url


def _saving_step(usd: float) -> Any:
    """A pipeline step that notes a saving, as a cache or the router does (`Trail.add_saving`)."""

    async def note(ex: Any, rt: Any) -> None:
        if "cached" in ex.user_input:
            ex.trail.add_saving("cache", usd)
            ex.trail.add_saving("cache", usd)  # adds up
            ex.trail.add_saving("routing", usd / 4)

    return note


TRAFFIC = [
    # (user, session, input)
    ("alice", "s-a1", "where is order 10001?"),
    ("alice", "s-a1", "and order 10002?"),
    ("alice", "s-a2", "I want a refund"),
    ("beta-bob", "s-b1", "refund for order 10003 please"),
    ("beta-bob", "s-b1", "hello, cached question"),
    ("carol", "s-c1", "hello"),
]


async def _run_traffic(rt: Runtime) -> list[InteractionRecord]:
    records = []
    try:
        for user, session, text in TRAFFIC:
            spoof = {"ledger": {"savings": {"x": 99.0}, "features": ["spoofed"]}}  # a client's own metadata
            out = await rt.interact("desk", text, user_id=user, session_id=session, metadata=spoof)
            records.append(out.kept)
    finally:
        await rt.aclose()
    return records


@pytest.fixture
def ledger_store(
    db_url: str, llm_url: str, tmp_path: Path
) -> Iterator[tuple[Store, list[InteractionRecord]]]:
    module = write_project(tmp_path, llm_url)
    store = Store(db_url)
    writer = BatchWriter(store, batch_size=4, flush_interval_ms=50)
    try:
        cfg = load_config(tmp_path / "shipyard.yaml")
        rt = Runtime(
            cfg,
            store=store,
            writer=writer,
            extend_pipeline=lambda p: p.insert_before("record", "note_saving", _saving_step(0.01)),
        )
        records = asyncio.run(_run_traffic(rt))
        assert writer.flush(timeout=60)
        yield store, records
    finally:
        writer.close()
        store.close()
        forget(tmp_path, module)


def test_one_priced_row_per_model_call_with_features_and_savings(
    ledger_store: tuple[Store, list[InteractionRecord]],
) -> None:
    store, records = ledger_store
    prices = ModelPrices.model_validate(PRICES)
    calls = [r for r in store.ledger_entries(limit=None) if r["kind"] == "call"]
    assert len(calls) == sum(len(r.llm_calls) for r in records) == 9  # two per order question, one otherwise
    cached = [c for c in calls if c["cached_input_tokens"]]
    assert cached, "the mock reports the repeated system prompt as cached"
    for row in calls:
        usage = Usage(row["input_tokens"], row["output_tokens"], row["cached_input_tokens"])
        assert row["cost_usd"] == pytest.approx(call_cost(prices, usage))
        assert (
            row["cost_usd"] < call_cost(prices, Usage(row["input_tokens"], row["output_tokens"]))
            or not (row["cached_input_tokens"])
        )  # cached tokens at the cached price, not billed twice
        assert (row["agent"], row["model"], row["tier"], row["status"]) == (
            "desk",
            "desk-model",
            "small",
            "ok",
        )
        assert row["traffic_source"] == "production" and row["day"] == time.strftime(
            "%Y-%m-%d", time.gmtime()
        )
    by_interaction = {r.id: r for r in records}
    for row in calls:
        assert row["session_id"] == by_interaction[row["interaction_id"]].session_id
    refund = next(r for r in records if r.user_id == "alice" and "refund" in r.input)
    assert {row["features"] for row in store.ledger_entries(refund.id)} == {"refunds"}
    flagged = next(r for r in records if "10003" in r.input)
    assert {row["features"] for row in store.ledger_entries(flagged.id)} == {"new_refund_flow,refunds"}
    assert "spoofed" not in {row["features"] for row in store.ledger_entries(limit=None)}
    # a request's own metadata cannot claim savings: only the runtime's trail says what was saved
    savings = [r for r in store.ledger_entries(limit=None) if r["kind"] == "saving"]
    assert sorted((s["reason"], round(s["saved_usd"], 6)) for s in savings) == [
        ("cache", 0.02),
        ("routing", 0.0025),
    ]


def test_reports_by_every_dimension_add_up(ledger_store: tuple[Store, list[InteractionRecord]]) -> None:
    store, records = ledger_store
    spent = sum(r.cost_usd for r in records)
    assert spent > 0
    for by in REPORT_DIMENSIONS:
        report = cost_report(store, by)
        assert report.total.spent_usd == pytest.approx(spent), by
        assert report.total.saved_usd == pytest.approx(0.0225), by
        assert report.total.calls == 9 and report.total.interactions == len(records), by
        if by != "feature":  # a row tagged with two features counts in both
            assert sum(r.spent_usd for r in report.rows) == pytest.approx(spent), by
            assert sum(r.saved_usd for r in report.rows) == pytest.approx(0.0225), by
    users = {r.key: r for r in cost_report(store, "user").rows}
    assert set(users) == {"alice", "beta-bob", "carol"}
    for user, row in users.items():
        mine = [r for r in records if r.user_id == user]
        assert row.spent_usd == pytest.approx(sum(r.cost_usd for r in mine))
        assert row.input_tokens == sum(r.input_tokens for r in mine)
        assert row.cached_input_tokens == sum(r.cached_input_tokens for r in mine)
        assert row.interactions == len(mine)
    assert users["beta-bob"].savings == {"cache": pytest.approx(0.02), "routing": pytest.approx(0.0025)}
    assert users["alice"].savings == {} and users["alice"].saved_usd == 0
    features = {r.key: r for r in cost_report(store, "feature").rows}
    assert set(features) == {"refunds", "new_refund_flow", None}
    tagged = [r for r in records if "refund" in r.input]
    assert features["refunds"].spent_usd == pytest.approx(sum(r.cost_usd for r in tagged))
    assert features["refunds"].interactions == 2
    beta = [r for r in records if r.user_id == "beta-bob"]  # the flag is on for both of bob's
    assert features["new_refund_flow"].interactions == 2
    assert features["new_refund_flow"].spent_usd == pytest.approx(sum(r.cost_usd for r in beta))
    assert features[None].interactions == 3  # carol's and alice's order questions: untagged
    request = cost_report(store, "request", top=1).rows[0]
    most = max(r.cost_usd for r in records)
    assert request.spent_usd == pytest.approx(most)
    assert request.key in {r.id for r in records if r.cost_usd == pytest.approx(most)}
    sessions = cost_report(store, "session", top=2)
    assert len(sessions.rows) == 2 and sessions.rows[0].spent_usd >= sessions.rows[1].spent_usd
    assert sessions.total.spent_usd == pytest.approx(spent)  # the total covers more than the top rows
    assert [r.key for r in cost_report(store, "model").rows] == ["desk-model", None]  # None: savings rows
    assert cost_report(store, "version").rows[0].key == records[0].version
    day = cost_report(store, "day")
    assert [r.key for r in day.rows] == [time.strftime("%Y-%m-%d", time.gmtime())]


def test_since_filters_and_bad_arguments(ledger_store: tuple[Store, list[InteractionRecord]]) -> None:
    store, _ = ledger_store
    assert cost_report(store, "user", since=time.time() + 3600).rows == []
    assert cost_report(store, "user", since=time.time() + 3600).total.spent_usd == 0
    only_bob = cost_report(store, "session", filters={"user": "beta-bob"})
    assert [r.key for r in only_bob.rows] == ["s-b1"]
    assert cost_report(store, "user", filters={"feature": "new_refund_flow"}).rows[0].key == "beta-bob"
    with pytest.raises(ValueError, match="cannot report cost by 'colour'"):
        cost_report(store, "colour")
    with pytest.raises(ValueError, match="top must be at least 1"):
        cost_report(store, "user", top=0)
    with pytest.raises(ValueError, match="cannot filter the ledger by 'colour'"):
        cost_report(store, "user", filters={"colour": "red"})


def test_writing_a_batch_twice_adds_nothing_and_agent_reported_usage_is_kept(db_url: str) -> None:
    call = LLMCallRecord("m", "openai", 10.0, 100, 20, 40, 0.001, reasoning_tokens=5, tier="large")
    record = InteractionRecord(
        id=new_id(), trace_id=new_id(), session_id="s", user_id=None, agent="a", version="a@1",
        traffic_source="eval", input="hi", output="ok", status="completed", latency_ms=1.0,
        input_tokens=150, output_tokens=30, cached_input_tokens=40, cost_usd=0.0015, llm_calls=[call],
    )  # fmt: skip
    rows, tags = ledger_rows(record)
    assert [r["id"].split(":")[-1] for r in rows] == ["0", "reported"] and tags == []
    assert rows[1]["input_tokens"] == 50 and rows[1]["output_tokens"] == 10
    assert rows[1]["cost_usd"] == pytest.approx(0.0005)
    with Store(db_url) as store:
        store.write_interactions([record])
        store.write_interactions([record])
        assert len(store.ledger_entries(record.id)) == 2
        total = cost_report(store, "traffic_source").rows[0]
        assert (total.key, total.calls, total.reasoning_tokens) == ("eval", 1, 5)
        assert total.spent_usd == pytest.approx(0.0015) and total.input_tokens == 150
        assert cost_report(store, "tier").rows[0].key == "large"
        row = cost_report(store, "user").rows[0]
        assert row.key is None and row.label == "(no user id)"  # no user: the row says so


def test_tag_feature_takes_names_not_data() -> None:
    from shipyard.agents import AgentContext, DefaultFlags

    ctx = AgentContext(llm=None, tools=None, prompts=None, flags=DefaultFlags(), session_id="s")  # type: ignore[arg-type]
    ctx.tag_feature("refunds")
    ctx.tag_feature("refunds")
    ctx.tag_feature("checkout.v2")
    assert ctx.features == ["refunds", "checkout.v2"]
    for bad in ("", "user 42's refund", "a,b", "x" * 65, 7):
        with pytest.raises(ValueError, match="a feature name is 1-64 letters"):
            ctx.tag_feature(bad)  # type: ignore[arg-type]


async def test_reasoning_and_cache_reads_over_http_reach_the_ledger(db_url: str, tmp_path: Path) -> None:
    """A provider that reports cached and reasoning tokens (OpenAI's documented usage body, served
    over HTTP on loopback): the call is priced with reasoning at its own price and the ledger row
    keeps every bucket."""
    from aiohttp import web
    from test_pricing import OPENAI_CHAT

    async def chat(request: web.Request) -> web.Response:
        return web.json_response(OPENAI_CHAT)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    module = write_project(tmp_path, f"http://127.0.0.1:{port}/v1")
    yaml = (tmp_path / "shipyard.yaml").read_text()
    (tmp_path / "shipyard.yaml").write_text(
        yaml.replace(
            json.dumps(PRICES),
            json.dumps({"input": 1.0, "cached_input": 0.1, "output": 4.0, "reasoning": 8.0}),
        )
    )
    store = Store(db_url)
    writer = BatchWriter(store, flush_interval_ms=20)
    rt = Runtime(load_config(tmp_path / "shipyard.yaml"), store=store, writer=writer)
    try:
        out = await rt.interact("desk", "hello", user_id="u1")
        assert await asyncio.to_thread(writer.flush, 60)
        (row,) = store.ledger_entries(out.kept.id)
        assert (
            row["input_tokens"],
            row["cached_input_tokens"],
            row["output_tokens"],
            row["reasoning_tokens"],
        ) == (
            2006,
            1920,
            300,
            192,
        )
        expected = (86 * 1.0 + 1920 * 0.1 + 108 * 4.0 + 192 * 8.0) / 1e6
        assert row["cost_usd"] == pytest.approx(expected) and out.kept.cost_usd == pytest.approx(expected)
        assert cost_report(store, "model").rows[0].reasoning_tokens == 192
        chat = next(sp for sp in out.full.spans if sp.name.startswith("chat "))
        assert chat.attributes["gen_ai.usage.reasoning.output_tokens"] == 192  # OTel GenAI names
        assert chat.attributes["gen_ai.usage.cache_read.input_tokens"] == 1920
    finally:
        await rt.aclose()
        writer.close()
        store.close()
        await runner.cleanup()
        forget(tmp_path, module)


def test_a_report_over_more_keys_than_one_query_can_name(db_url: str) -> None:
    records = [
        InteractionRecord(
            id=new_id(),
            trace_id=new_id(),
            session_id=f"s{i:05d}",
            user_id="u",
            agent="a",
            version="a@1",
            traffic_source="production",
            input="q",
            output="a",
            status="completed",
            latency_ms=1.0,
            cost_usd=0.001 * (i + 1),
            metadata={"ledger": {"savings": {"cache": 0.5}}},
            llm_calls=[LLMCallRecord("m", "openai", 1.0, 10, 1, 0, 0.001 * (i + 1))],
        )
        for i in range(1005)
    ]
    with Store(db_url) as store:
        store.write_interactions(records)
        report = cost_report(store, "session")
    assert len(report.rows) == 1005
    assert report.rows[0].key == "s01004" and all(r.savings == {"cache": 0.5} for r in report.rows)
    assert report.total.saved_usd == pytest.approx(0.5 * 1005)
