"""Budgets through a real Runtime and a mock LLM server over HTTP: the graceful stop, errors and
cancels that leak nothing, idempotent reservations, lapsed holds, Redis down under both policies,
the SQLite-persisted counters of one machine, and reconciliation that never inflates a counter."""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from budget_project import write_project
from testdb import at_newest_schema

from shipyard.config import BudgetLimit, BudgetsConfig, load_config
from shipyard.cost import MemoryBackend, Subject, make_budgets
from shipyard.cost._budget_redis import RedisBackend
from shipyard.cost._budgets import NANO, counters_for, estimate_input_tokens
from shipyard.llm._mockserver import MockLLMServer
from shipyard.runtime import Runtime
from shipyard.store import Store

GRACEFUL = "I have reached my processing limit for this session. Let me summarize what I have found so far."
REDIS_DB = 13


def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


@pytest.fixture
def llm() -> Iterator[MockLLMServer]:
    server = MockLLMServer({"default": "Here is a short answer about your order and its delivery."})
    server.start()
    yield server
    server.stop()


def _runtime(tmp_path: Path, llm_url: str, budgets: str, **kw: object) -> Runtime:
    write_project(tmp_path, llm_url, budgets, **kw)  # type: ignore[arg-type]
    cfg = load_config(tmp_path / "shipyard.yaml")
    store = Store(at_newest_schema(f"sqlite:///{tmp_path / 'store.db'}"), root=tmp_path)
    return Runtime(cfg, store=store)


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def test_a_session_budget_ends_with_the_graceful_answer(tmp_path: Path, llm: MockLLMServer) -> None:
    rt = _runtime(
        tmp_path,
        llm.url,
        """\
        budgets:
          max_reservation_usd: 0.5
          limits:
            - {name: per-session, scope: session, window: session, usd: 2.0}
        """,
    )
    assert "budget_check" in rt.pipeline.names
    statuses = []
    for _ in range(40):
        out = await rt.invoke("budgeted", "steps=3 where is my order", session_id="s-1")
        statuses.append(out.status)
        if out.status == "budget_exceeded":
            break
    assert statuses[0] == "completed" and statuses[-1] == "budget_exceeded"
    assert out.output == GRACEFUL
    assert out.metadata["budget"]["budget"] == "per-session"
    # spend is what the calls really cost and never more than the cap plus one call's reservation cap
    budget = rt.budgets
    assert budget is not None
    (c,) = budget.counters(Subject("x", "s-1", "budgeted"))
    spent, reserved = (await budget.backend.levels([c], time.time()))[0]
    assert reserved == 0
    assert 0 < spent / NANO <= 2.0 + 0.5
    assert llm.app is not None
    before = llm.app.requests
    # once the budget is spent in full, the interaction is refused up front (the agent does not run)
    await budget.backend.raise_spent(c, c.limit)
    up_front = await rt.invoke("budgeted", "steps=1 hello", session_id="s-1")
    assert up_front.status == "budget_exceeded" and up_front.output == GRACEFUL
    assert not up_front.llm_calls and llm.app.requests == before
    # another session has its own budget
    other = await rt.invoke("budgeted", "steps=1 hello", session_id="s-2")
    assert other.status == "completed"
    assert other.metadata["left_usd"] is not None and other.metadata["left_usd"] < 2.0
    await rt.aclose()


@pytest.mark.parametrize("where", ["memory", "redis"])
async def test_an_interaction_budget_counts_one_interaction_and_is_let_go_of_when_it_ends(
    tmp_path: Path, llm: MockLLMServer, where: str
) -> None:
    prefix = _prefix()
    redis = (
        f"  backend: redis\n  redis_url: {redis_url()}\n  key_prefix: {prefix}\n" if where == "redis" else ""
    )
    rt = _runtime(
        tmp_path,
        llm.url,
        "budgets:\n"
        + redis
        + "  max_reservation_tokens: 200\n"
        + "  limits:\n"
        + "    - {name: per-interaction, scope: global, window: interaction, tokens: 1500}\n"
        + "    - {name: per-session, scope: session, window: session, usd: 100.0}\n",
    )
    budget = rt.budgets
    assert budget is not None
    backend = budget.backend
    assert isinstance(backend, MemoryBackend if where == "memory" else RedisBackend)
    # a long interaction hits its own budget; the next one starts afresh
    long = await rt.invoke("budgeted", "steps=40 where is my order", session_id="s-long")
    assert long.status == "budget_exceeded" and long.metadata["budget"]["budget"] == "per-interaction"
    assert 1 <= len(long.llm_calls) < 40
    fresh = await rt.invoke("budgeted", "steps=1 hello", session_id="s-long")
    assert fresh.status == "completed"
    # many interactions: none of their own counters stays behind (each would stay a day), the
    # session counters do
    for n in range(30):
        out = await rt.invoke("budgeted", "steps=2 hello", session_id=f"s-{n}")
        assert out.status == "completed"
    if isinstance(backend, MemoryBackend):
        assert backend._fleeting == {}
        assert len(backend._slots) == 31
        await rt.aclose()
        return
    await rt.aclose()  # sends what is still queued (the last settles and ends)
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url())
    try:
        keys = sorted([k.decode() async for k in client.scan_iter(match="{" + prefix + "}*")])
        counters = [k for k in keys if ":b:" in k and not k.endswith((":r", ":a"))]
        assert len(counters) == 31 and all(":b:per-session:" in k for k in counters)
        assert not [k for k in keys if ":b:per-interaction:" in k]
        # each model call's request id is remembered for an hour, not a day
        requests = [k for k in keys if ":req:" in k]
        assert len(requests) == len(long.llm_calls) + 1 + 30 * 2
        ttls = [await client.pttl(k) for k in requests]
        assert all(0 < ttl <= 3_600_000 for ttl in ttls), ttls
    finally:
        await client.aclose()
        await _cleanup("{" + prefix + "}")


async def test_the_graceful_answer_is_configurable_and_max_tokens_is_lowered(
    tmp_path: Path, llm: MockLLMServer
) -> None:
    rt = _runtime(
        tmp_path,
        llm.url,
        """\
        budgets:
          max_reservation_tokens: 300
          graceful_answer: "Budget spent, sorry."
          limits:
            - {name: tiny, scope: user, window: day, tokens: 1}
            - {name: agent-day, scope: agent, window: day, tokens: 100000}
        """,
    )
    out = await rt.invoke("budgeted", "steps=1 hi", user_id=f"u-{uuid.uuid4().hex}")
    assert out.status == "budget_exceeded" and out.output == "Budget spent, sorry."
    ok = await rt.invoke("budgeted", "steps=1 hi")  # no user: a user budget does not apply
    assert ok.status == "completed"
    # the call asked for no max_tokens: it was given what the 300-token per-call cap leaves
    assert llm.app is not None
    sent = llm.app.recent[-1]
    assert sent["max_tokens"] == 300 - estimate_input_tokens(
        [{"role": "user", "content": "steps=1 hi"}], None
    )
    # eval traffic is not counted unless a budget lists it
    evals = await rt.invoke("budgeted", "steps=1 hi", user_id="u-eval", traffic_source="eval")
    assert evals.status == "completed"
    await rt.aclose()


async def test_a_failed_call_releases_its_reservation(tmp_path: Path) -> None:
    with MockLLMServer({"default": "x"}, error_rate=1.0) as url:
        rt = _runtime(
            tmp_path,
            url,
            """\
            budgets:
              limits:
                - {name: user-day, scope: user, window: day, usd: 5.0}
            """,
        )
        user = f"u-{uuid.uuid4().hex}"
        out = await rt.invoke("budgeted", "steps=1 hi", user_id=user)
        assert out.status == "failed"
        assert rt.budgets is not None
        (c,) = rt.budgets.counters(Subject("x", "s", "budgeted", user_id=user))
        assert await rt.budgets.backend.levels([c], time.time()) == [(0, 0)]
        await rt.aclose()


async def test_a_cancelled_call_keeps_its_input_cost(tmp_path: Path) -> None:
    server = MockLLMServer({"default": "x"}, latency_ms=60_000)
    url = server.start()
    try:
        rt = _runtime(
            tmp_path,
            url,
            """\
            budgets:
              limits:
                - {name: user-day, scope: user, window: day, usd: 5.0}
            """,
        )
        user = f"u-{uuid.uuid4().hex}"
        question = "steps=1 a question of some length"
        task = asyncio.create_task(rt.invoke("budgeted", question, user_id=user))
        assert server.app is not None
        while server.app.active == 0:  # the request reached the model
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rt.budgets is not None
        (c,) = rt.budgets.counters(Subject("x", "s", "budgeted", user_id=user))
        levels = None
        for _ in range(1000):  # the release runs on its own task
            levels = (await rt.budgets.backend.levels([c], time.time()))[0]
            if levels[1] == 0:
                break
            await asyncio.sleep(0.01)
        assert levels is not None
        spent, reserved = levels
        assert reserved == 0
        # the prompt's (estimated) tokens at the input price ($1000 per million), not the answer's
        prompt = [{"role": "user", "content": question}]
        assert spent == math.ceil(estimate_input_tokens(prompt, None) * 1000 / 1e6 * NANO)
        await rt.aclose()
    finally:
        server.stop()


# the backends themselves --------------------------------------------------------------------------
def _limits(*specs: dict[str, object]) -> list[BudgetLimit]:
    return [BudgetLimit.model_validate(s) for s in specs]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[object, str]]:
    prefix = "{" + _prefix() + "}"
    if request.param == "memory":
        yield MemoryBackend(), prefix
        return
    b = RedisBackend(redis_url(), prefix)
    yield b, prefix
    asyncio.run(_cleanup(prefix))


async def _cleanup(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url())
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_reserve_is_idempotent_all_or_nothing_and_lapses(backend: tuple[object, str]) -> None:
    b, prefix = backend
    limits = _limits(
        {"name": "user-day", "scope": "user", "window": "day", "tokens": 1000},
        {"name": "global-day", "scope": "global", "window": "day", "tokens": 150},
    )
    s = Subject("i-1", "s-1", "a", user_id="u-1")
    now = 1_800_000_000.0
    counters = counters_for(limits, s, prefix, now)
    # the same request id twice holds once
    got = await b.reserve("r-1", counters, [100, 100], 60, now)  # type: ignore[attr-defined]
    assert got.ok
    again = await b.reserve("r-1", counters, [100, 100], 60, now)  # type: ignore[attr-defined]
    assert again.ok
    assert await b.levels(counters, now) == [(0, 100), (0, 100)]  # type: ignore[attr-defined]
    # all or nothing: the global counter has no room for 100 more, so the user counter is not held either
    refused = await b.reserve("r-2", counters, [100, 100], 60, now)  # type: ignore[attr-defined]
    assert not refused.ok and refused.blocked == 1 and not refused.exhausted  # room once r-1 settles
    assert await b.levels(counters, now) == [(0, 100), (0, 100)]  # type: ignore[attr-defined]
    # settle counts once, however often it is retried
    assert await b.settle("r-1", counters, [40, 40], now)  # type: ignore[attr-defined]
    assert not await b.settle("r-1", counters, [40, 40], now)  # type: ignore[attr-defined]
    assert await b.levels(counters, now) == [(40, 0), (40, 0)]  # type: ignore[attr-defined]
    # exhausted: even with nothing held, 120 more does not fit 150
    full = await b.reserve("r-3", counters, [120, 120], 60, now)  # type: ignore[attr-defined]
    assert not full.ok and full.exhausted
    # a hold not settled lapses: a crashed replica leaks nothing
    assert (await b.reserve("r-4", counters, [100, 100], 60, now)).ok  # type: ignore[attr-defined]
    assert await b.levels(counters, now + 30) == [(40, 100), (40, 100)]  # type: ignore[attr-defined]
    assert await b.levels(counters, now + 61) == [(40, 0), (40, 0)]  # type: ignore[attr-defined]
    # a settle after its hold lapsed still counts what was spent, once
    assert await b.settle("r-4", counters, [10, 10], now + 62)  # type: ignore[attr-defined]
    assert await b.levels(counters, now + 62) == [(50, 0), (50, 0)]  # type: ignore[attr-defined]
    # reconciliation raises, never adds: the same floor twice changes nothing
    await b.raise_spent(counters[0], 70)  # type: ignore[attr-defined]
    await b.raise_spent(counters[0], 70)  # type: ignore[attr-defined]
    await b.raise_spent(counters[0], 20)  # type: ignore[attr-defined]
    assert (await b.levels(counters, now + 62))[0] == (70, 0)  # type: ignore[attr-defined]


@pytest.mark.redis
@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
async def test_redis_down(tmp_path: Path, llm: MockLLMServer, policy: str) -> None:
    rt = _runtime(
        tmp_path,
        llm.url,
        f"""\
        budgets:
          backend: redis
          redis_url: redis://127.0.0.1:9/0
          limits:
            - {{name: user-day, scope: user, window: day, usd: 5.0, on_unavailable: {policy}}}
        """,
    )
    os.environ.pop("SHIPYARD_REDIS_URL", None)
    assert llm.app is not None
    before = llm.app.requests
    out = await rt.invoke("budgeted", "steps=1 hi", user_id="u-1")
    if policy == "fail_closed":
        assert out.status == "failed"
        assert out.metadata["error_kind"] == "budget_unavailable"
        assert "fail_closed" in (out.error or "")
        assert llm.app.requests == before  # refused before any model call
    else:
        assert out.status == "completed"
        assert llm.app.requests == before + 1
    await rt.aclose()


async def test_one_machine_counters_survive_a_restart_in_sqlite(tmp_path: Path, llm: MockLLMServer) -> None:
    budgets = """\
        budgets:
          limits:
            - {name: user-day, scope: user, window: day, usd: 50.0}
        """
    rt = _runtime(tmp_path, llm.url, budgets)
    user = f"u-{uuid.uuid4().hex}"
    for _ in range(3):
        assert (await rt.invoke("budgeted", "steps=2 hi", user_id=user)).status == "completed"
    assert rt.budgets is not None and isinstance(rt.budgets.backend, MemoryBackend)
    (c,) = rt.budgets.counters(Subject("x", "s", "budgeted", user_id=user))
    spent_before = (await rt.budgets.backend.levels([c], time.time()))[0][0]
    assert spent_before > 0
    await rt.aclose()  # writes the counters to the store
    # a new process: a backend loaded from the same SQLite file has the day's spend
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", root=tmp_path)
    fresh = MemoryBackend(store)
    assert (await fresh.levels([c], time.time()))[0] == (spent_before, 0)
    # saving a smaller value never lowers what is stored (no double counting, no loss)
    store.save_budget_counters([(c.key, 1, time.time() + 3600)])
    assert store.load_budget_counters_for([c.key]) == {c.key: spent_before}


@pytest.mark.redis
async def test_reconcile_reseeds_a_lost_redis_counter_from_the_ledger_without_inflation(
    tmp_path: Path, llm: MockLLMServer
) -> None:
    from shipyard.store import BatchWriter

    prefix = _prefix()
    write_project(
        tmp_path,
        llm.url,
        f"""\
        budgets:
          backend: redis
          redis_url: {redis_url()}
          key_prefix: {prefix}
          limits:
            - {{name: user-day, scope: user, window: day, usd: 50.0}}
        """,
    )
    cfg = load_config(tmp_path / "shipyard.yaml")
    store = Store(at_newest_schema(f"sqlite:///{tmp_path / 'store.db'}"), root=tmp_path)
    writer = BatchWriter(store)

    rt = Runtime(cfg, store=store, writer=writer)
    user = f"u-{uuid.uuid4().hex}"
    try:
        for _ in range(3):
            assert (await rt.invoke("budgeted", "steps=2 hi", user_id=user)).status == "completed"
        writer.flush()
        recorded = store.ledger_totals(None, filters={"user": user})[0]["spent_usd"]
        assert recorded > 0
        assert rt.budgets is not None
        (c,) = rt.budgets.counters(Subject("x", "s", "budgeted", user_id=user))
        now = time.time()
        spent = (await rt.budgets.backend.levels([c], now))[0][0]
        assert abs(spent / NANO - recorded) < 1e-6
        # Redis loses the counter (a restart without persistence)
        await _cleanup("{" + prefix + "}")
        assert (await rt.budgets.backend.levels([c], now))[0] == (0, 0)
        # reconciliation reseeds it from the ledger; twice is the same as once
        assert await rt.budgets.reconcile() == 1
        await rt.budgets.reconcile()
        reseeded = (await rt.budgets.backend.levels([c], now))[0][0]
        assert abs(reseeded / NANO - recorded) < 2e-9
    finally:
        await rt.aclose()
        writer.close()
        await _cleanup("{" + prefix + "}")


def test_config_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="exactly one of usd or tokens"):
        BudgetLimit.model_validate({"name": "x", "scope": "user", "usd": 1, "tokens": 5})
    with pytest.raises(ValueError, match="feature: <tag>"):
        BudgetLimit.model_validate({"name": "x", "scope": "feature", "usd": 1})
    with pytest.raises(ValueError, match="unique"):
        BudgetsConfig.model_validate(
            {"limits": [{"name": "x", "scope": "user", "usd": 1}, {"name": "x", "scope": "agent", "usd": 1}]}
        )
    assert not BudgetsConfig().on
    assert make_budgets(BudgetsConfig(enabled=True)).limits == []


def test_serve_refuses_in_process_counters_with_several_workers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    write_project(
        tmp_path,
        "http://127.0.0.1:9/v1",
        """\
        budgets:
          limits:
            - {name: user-day, scope: user, window: day, usd: 5.0}
        """,
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
    )
    result = CliRunner().invoke(app, ["serve", "--workers", "2", "-c", str(tmp_path / "shipyard.yaml")])
    assert result.exit_code == 2
    assert "budgets.backend memory" in result.output and "backend: redis" in result.output


async def test_api_key_and_feature_budgets_count_only_their_traffic(
    tmp_path: Path, llm: MockLLMServer
) -> None:
    rt = _runtime(
        tmp_path,
        llm.url,
        """\
        budgets:
          limits:
            - {name: key-day, scope: api_key, window: day, tokens: 1}
            - {name: research, scope: feature, feature: research, window: month, tokens: 1}
        """,
    )
    key = f"shp_{uuid.uuid4().hex[:8]}"
    assert (await rt.invoke("budgeted", "steps=1 hi", api_key=key)).status == "budget_exceeded"
    assert (await rt.invoke("budgeted", "steps=1 hi")).status == "completed"  # no key: not counted
    # a feature the agent tags counts from its next model call on
    tagged = await rt.invoke("budgeted", "steps=1 feature=research hi")
    assert tagged.status == "budget_exceeded" and tagged.metadata["budget"]["budget"] == "research"
    assert (await rt.invoke("budgeted", "steps=1 hi")).status == "completed"
    await rt.aclose()


@pytest.mark.redis
async def test_a_redis_that_lost_the_scripts_gets_them_again() -> None:
    """The scripts go out as EVALSHA; after a Redis restart or SCRIPT FLUSH the first call loads
    them again and still counts once."""
    import redis.asyncio as aioredis

    prefix = "{" + _prefix() + "}"
    b = RedisBackend(redis_url(), prefix)
    limits = _limits({"name": "user-day", "scope": "user", "window": "day", "tokens": 1000})
    now = 1_800_000_000.0
    counters = counters_for(limits, Subject("i-1", "s-1", "a", user_id="u-1"), prefix, now)
    try:
        assert (await b.reserve("r-1", counters, [100], 60, now)).ok
        admin = aioredis.Redis.from_url(redis_url())
        await admin.script_flush()
        await admin.aclose()
        assert await b.settle("r-1", counters, [40], now)
        assert await b.levels(counters, now) == [(40, 0)]
    finally:
        await b.client.aclose()
        await _cleanup(prefix)


@pytest.mark.redis
async def test_in_redis_a_model_call_is_one_script_call_and_a_spent_budget_is_refused_up_front(
    tmp_path: Path, llm: MockLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_REDIS_URL", raising=False)
    prefix = _prefix()
    rt = _runtime(
        tmp_path,
        llm.url,
        f"""\
        budgets:
          backend: redis
          redis_url: {redis_url()}
          key_prefix: {prefix}
          max_reservation_usd: 0.5
          limits:
            - {{name: per-session, scope: session, window: session, usd: 2.0}}
            - {{name: user-day, scope: user, window: day, usd: 50.0}}
        """,
    )
    other = None
    try:
        assert rt.budgets is not None
        backend = rt.budgets.backend
        assert isinstance(backend, RedisBackend)
        backend.settle_delay_s = 3600  # a settle waits for a reserve (or a read) to ride with
        user = f"u-{uuid.uuid4().hex}"
        before = backend.script_calls
        out = await rt.invoke("budgeted", "steps=3 where is my order", session_id="s-1", user_id=user)
        assert out.status == "completed" and len(out.llm_calls) == 3
        assert (
            backend.script_calls - before == 3
        )  # one per model call: each settle rode with the next reserve
        # the last call's settle is still queued; this process's next step (a read) carries it
        counters = rt.budgets.counters(Subject("x", "s-1", "budgeted", user_id=user))
        levels = await backend.levels(counters, time.time())
        assert backend.script_calls - before == 4
        spent = sum(math.ceil(c.cost_usd * NANO) for c in out.llm_calls)
        assert spent > 0 and levels == [(spent, 0), (spent, 0)]
        # ctx.budget saw the levels the reserves answered (and its own settles)
        assert out.metadata["left_usd"] == pytest.approx(2.0 - spent / NANO)

        # the session's budget is spent: this process knows it, so the check refuses without a round
        # trip and the agent does not run
        session = counters[0]
        await backend.raise_spent(session, session.limit)
        calls, requests = backend.script_calls, llm.app.requests if llm.app else 0
        refused = await rt.invoke("budgeted", "steps=1 hi", session_id="s-1", user_id=user)
        assert refused.status == "budget_exceeded" and refused.output == GRACEFUL
        assert refused.metadata["budget"]["budget"] == "per-session" and not refused.llm_calls
        assert backend.script_calls == calls and llm.app is not None and llm.app.requests == requests

        # a replica that has not seen it: its first model call's reserve refuses, before the model is called
        other = Runtime(
            load_config(tmp_path / "shipyard.yaml"), store=Store(f"sqlite:///{tmp_path / 'o.db'}")
        )
        assert other.budgets is not None and isinstance(other.budgets.backend, RedisBackend)
        elsewhere = await other.invoke("budgeted", "steps=1 hi", session_id="s-1", user_id=user)
        assert elsewhere.status == "budget_exceeded" and elsewhere.output == GRACEFUL
        assert elsewhere.metadata["budget"]["spent"] >= 2.0
        assert other.budgets.backend.script_calls == 1 and llm.app.requests == requests
    finally:
        await rt.aclose()
        if other is not None:
            await other.aclose()
        await _cleanup("{" + prefix + "}")


@pytest.mark.redis
async def test_in_redis_concurrent_steps_share_a_script_call_and_a_read_sees_queued_settles() -> None:
    prefix = "{" + _prefix() + "}"
    b = RedisBackend(redis_url(), prefix)
    limits = _limits({"name": "user-day", "scope": "user", "window": "day", "tokens": 1000})
    now = 1_800_000_000.0
    counters = counters_for(limits, Subject("i-1", "s-1", "a", user_id="u-1"), prefix, now)
    try:
        got = await asyncio.gather(*(b.reserve(f"r-{i}", counters, [10], 60, now) for i in range(20)))
        assert all(g.ok for g in got)
        assert b.script_calls <= 2  # queued while one call was on its way: they went out together
        for i in range(20):
            b.settle_soon(f"r-{i}", counters, [4], now)
        assert await b.levels(counters, now) == [(80, 0)]  # the read went after the settles queued before it
        # all or nothing still holds inside a batch: the 11th of these reserves has no room
        got = await asyncio.gather(*(b.reserve(f"q-{i}", counters, [90], 60, now) for i in range(11)))
        assert [g.ok for g in got] == [True] * 10 + [False] and got[-1].blocked == 0
        assert await b.levels(counters, now) == [(80, 900)]
    finally:
        await b.aclose()
        await _cleanup(prefix)


async def test_with_redis_unreachable_waiting_steps_fail_and_a_queued_settle_is_given_up() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from shipyard.cost._budget_redis import SETTLE_TRIES

    prefix = "{" + _prefix() + "}"
    b = RedisBackend("redis://127.0.0.1:9/0", prefix, settle_delay_s=0.01)
    limits = _limits({"name": "user-day", "scope": "user", "window": "day", "tokens": 1000})
    now = time.time()
    counters = counters_for(limits, Subject("i-1", "s-1", "a", user_id="u-1"), prefix, now)
    with pytest.raises(RedisConnectionError):
        await b.reserve("r-1", counters, [10], 60, now)
    b.settle_soon("r-1", counters, [4], now)
    give_up = time.monotonic() + 60  # a hang guard, not a timing
    while b.script_calls < 1 + SETTLE_TRIES and time.monotonic() < give_up:
        await asyncio.sleep(0.01)
    assert b.script_calls == 1 + SETTLE_TRIES  # the reserve, then the settle's tries
    await b.aclose()  # nothing is left to send: the settle was given up (its hold would lapse)
    assert b.script_calls == 1 + SETTLE_TRIES
