"""KPIs over windows, alert rules and their states, transitions to the log and to webhooks."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from observe_helpers import make_record

from shipyard.config import AlertRule, builtin_alert_rules, default_alert_rules, load_config
from shipyard.errors import ConfigError
from shipyard.observe import (
    AlertEngine,
    EventCounter,
    KpiWindow,
    LoopSupervisor,
    compute_kpis,
    configure_logging,
    judge,
    samples_from_records,
    source_from_samples,
)
from shipyard.store import InteractionRecord

NOW = 1_000_000.0


def test_kpis_of_a_window() -> None:
    records = [
        make_record(latency_ms=100.0 * (i + 1), at=NOW - 10, session="a" if i < 10 else "b", cost=0.01)
        for i in range(20)
    ]
    records += [
        make_record(status="escalated", at=NOW - 10, tools=("error",)),
        make_record(status="failed", at=NOW - 10, feedback={"thumbs": -1}),
        make_record(at=NOW - 10, feedback={"score": 4.0, "thumbs": 1}),
        make_record(source="eval", status="failed", at=NOW - 10),
    ]
    k = compute_kpis(samples_from_records(records), 900)
    assert k.interactions == 23  # the eval record is not production traffic
    assert k.completion_rate == pytest.approx(21 / 23)
    assert k.escalation_rate == pytest.approx(1 / 23) and k.errors == 1
    assert k.p95_latency_s == pytest.approx(1.9)  # nearest rank over 23 latencies
    assert k.tool_error_rate == pytest.approx(1 / 23)
    assert k.satisfaction == pytest.approx((1.0 + 4.0) / 2) and k.ratings == 2
    assert k.cost_per_interaction == pytest.approx((20 * 0.01 + 3 * 0.002) / 23)
    assert k.sessions == 2 + 3
    empty = compute_kpis([], 900)
    assert empty.completion_rate is None and empty.p95_latency_s is None and empty.safety_incidents == 0


def test_window_keeps_recent_production_samples_and_feedback() -> None:
    w = KpiWindow(horizon_s=3600)
    old = make_record(at=NOW - 7200)
    w.add(old)
    w.add(make_record(at=NOW - 100, status="failed"))
    w.add(make_record(at=NOW - 1000))
    w.add(make_record(at=NOW - 10, source="shadow"))
    w.prune(NOW)
    assert len(w) == 2
    assert w.kpis(300, now=NOW).interactions == 1
    assert w.kpis(300, now=NOW, offset_s=300).interactions == 0
    assert w.kpis(900, now=NOW, offset_s=300).interactions == 1  # [NOW-1200, NOW-300)
    fresh = make_record(at=NOW - 5)
    w.add(fresh)
    w.add_feedback(fresh.id, {"thumbs": 1})
    assert w.kpis(60, now=NOW).satisfaction == 5.0


def test_judge_thresholds_comparators_and_no_data() -> None:
    rule = AlertRule(name="p95", metric="p95_latency_s", warn=4, alert=5, min_samples=3)
    slow = [make_record(latency_ms=6000, at=NOW - 1) for _ in range(3)]
    medium = [make_record(latency_ms=4500, at=NOW - 1) for _ in range(3)]
    assert judge(rule, compute_kpis(samples_from_records(slow), 900))[:2] == ("alert", 6.0)
    assert judge(rule, compute_kpis(samples_from_records(medium), 900))[0] == "warn"
    assert judge(rule, compute_kpis(samples_from_records(slow[:2]), 900))[0] == "no_data"
    strict = rule.model_copy(update={"no_data": "alert"})
    assert judge(strict, compute_kpis([], 900))[0] == "alert"
    completion = AlertRule(name="c", metric="completion_rate", alert=0.85, min_samples=1)
    assert completion.op == "<"
    failing = [make_record(status="failed", at=NOW - 1), make_record(at=NOW - 1)]
    assert judge(completion, compute_kpis(samples_from_records(failing), 900))[0] == "alert"


def test_default_rules_are_the_sane_production_ones() -> None:
    by_metric = {r.metric: r for r in default_alert_rules() + builtin_alert_rules()}
    assert by_metric["completion_rate"].alert == 0.85 and by_metric["completion_rate"].op == "<"
    assert by_metric["p95_latency_s"].alert == 5.0
    assert by_metric["cost_per_interaction"].alert == 0.10
    assert by_metric["escalation_rate"].alert == 0.20
    assert by_metric["tool_error_rate"].alert == 0.05
    assert by_metric["satisfaction"].alert == 4.0 and by_metric["satisfaction"].op == "<"


def test_the_built_in_safety_rule_fires_on_a_burst_not_on_every_block() -> None:
    """One blocked injection attempt is a guardrail doing its job; more than 3 incidents in 15
    minutes warn (DEGRADED), more than 10 alert (DOWN). Blocks, and guardrails that blocked or
    escalated inside a completed interaction, all count."""
    [safety] = [r for r in builtin_alert_rules() if r.metric == "safety_incidents"]
    assert (safety.name, safety.window_s, safety.op, safety.warn, safety.alert) == (
        "safety_incidents",
        900,
        ">",
        3,
        10,
    )

    def state(records: list[InteractionRecord]) -> tuple[str, float | None]:
        engine = AlertEngine([safety], source_from_samples(samples_from_records(records)))
        engine.evaluate(NOW)
        [st] = engine.states()
        return st.state, st.value

    def incidents(n: int, *, ago: float = 1.0) -> list[InteractionRecord]:
        tool_refused = [{"name": "refunds", "verdict": "block", "stage": "tool_call"}]
        return [
            make_record(status="blocked", at=NOW - ago - i)
            if i % 2
            else make_record(
                at=NOW - ago - i, guardrails=tool_refused if i % 4 else [{"verdict": "escalate"}]
            )
            for i in range(n)
        ]

    calm = [make_record(at=NOW - 1 - i) for i in range(50)]
    assert state(calm) == ("ok", 0.0)
    assert state(calm + incidents(1)) == ("ok", 1.0)  # counted, and no one is woken
    assert state(calm + incidents(3)) == ("ok", 3.0)
    assert state(calm + incidents(4)) == ("warn", 4.0)
    assert state(calm + incidents(10)) == ("warn", 10.0)
    assert state(calm + incidents(11)) == ("alert", 11.0)
    # a burst that is over (older than the 15-minute window) no longer fires
    assert state(calm + incidents(11, ago=901)) == ("ok", 0.0)
    # the engine's overall status: a burst turns the service DOWN, a single block does not
    engine = AlertEngine([safety], source_from_samples(samples_from_records(incidents(11))))
    engine.evaluate(NOW)
    assert engine.status() == "DOWN"


async def test_engine_transitions_go_to_the_log_and_to_webhooks() -> None:
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    out = io.StringIO()
    configure_logging(stream=out)
    records = [make_record(status="failed", at=NOW - 1) for _ in range(3)]
    rules = [AlertRule(name="completion", metric="completion_rate", warn=0.9, alert=0.5, min_samples=3)]
    engine = AlertEngine(
        rules,
        source_from_samples(samples_from_records(records)),
        project="demo",
        webhooks=[f"http://127.0.0.1:{port}/hook", f"http://127.0.0.1:{port}/broken"],
    )
    try:
        transitions = engine.evaluate(NOW)
        assert [(t.previous, t.state) for t in transitions] == [("no_data", "alert")]
        assert engine.evaluate(NOW + 1) == []  # no change, no transition
        assert engine.status() == "DOWN"
        assert engine.states()[0].since == NOW
        engine.deliver(transitions)
        await engine.aclose()
    finally:
        await runner.cleanup()
    assert received == [{"project": "demo", **transitions[0].to_dict()}]
    logged = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert any(e["event"] == "alert" and e["state"] == "alert" and e["level"] == "warning" for e in logged)
    assert any(e["event"] == "alert_webhook_failed" and "HTTP 500" in e["error"] for e in logged)


async def test_engine_run_loop_survives_a_bad_source() -> None:
    out = io.StringIO()
    configure_logging(stream=out)

    def source(rule: AlertRule, now: float):  # type: ignore[no-untyped-def]
        raise RuntimeError("store gone")

    engine = AlertEngine(list(default_alert_rules()), source)
    loops = LoopSupervisor()
    task = asyncio.create_task(engine.run(0.01, loops=loops))
    for _ in range(12_000):  # waits for the second failed pass (the bound only stops a hung test)
        if loops.consecutive_failures("alert_evaluation") >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert loops.consecutive_failures("alert_evaluation") >= 2  # it went on after the first failure
    failed = [
        e for e in map(orjson.loads, out.getvalue().splitlines()) if e["event"] == "background_loop_failed"
    ]
    assert failed and failed[0]["loop"] == "alert_evaluation" and "store gone" in failed[0]["traceback"]


def test_alerts_config_section(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "alerts:\n  interval_s: 5\n  webhooks: [http://127.0.0.1:9/hook]\n  rules:\n"
        "    - {name: lat, metric: p95_latency_s, window: 10m, alert: 3}\n"
    )
    cfg = load_config(path)
    rule, *builtin = cfg.alerts.effective_rules()
    assert rule.window_s == 600 and rule.op == ">" and cfg.alerts.interval_s == 5
    assert builtin == list(builtin_alert_rules())  # the dead-letter alert is always in force
    assert {"safety_incidents", "dead_letters"} <= {r.name for r in builtin}  # so are safety incidents
    path.write_text("alerts:\n  rules: []\n")
    assert load_config(path).alerts.effective_rules() == []
    path.write_text("project: x\n")
    rules = load_config(path).alerts.effective_rules()
    assert rules == [*default_alert_rules(), *builtin_alert_rules()]
    path.write_text("alerts:\n  rules:\n    - {name: dl, metric: dead_letters, window: 1d, warn: 0}\n")
    own, *others = load_config(path).alerts.effective_rules()  # a rule of one's own replaces the built-in one
    assert own.name == "dl" and own.op == ">" and "dead_letters" not in [r.name for r in others]
    # a project that wants to hear of every single block says so, and its rule replaces the built-in one
    path.write_text(
        "alerts:\n  rules:\n    - {name: any_block, metric: safety_incidents, window: 1h, alert: 0, min_samples: 0}\n"
    )
    own, *others = load_config(path).alerts.effective_rules()
    assert own.name == "any_block" and "safety_incidents" not in [r.metric for r in others]
    one = samples_from_records([make_record(status="blocked", at=NOW - 1)])
    assert judge(own, compute_kpis(one, own.window_s))[0] == "alert"
    for bad, words in [
        ("    - {name: a, metric: happiness, alert: 1}\n", ["line 3", "unknown metric 'happiness'"]),
        ("    - {name: a, metric: p95_latency_s, window: soon, alert: 1}\n", ["window must look like"]),
        ("    - {name: a, metric: p95_latency_s}\n", ["needs a warn or an alert threshold"]),
        ("    - {name: a, metric: p95_latency_s, alert: 1, no_data: maybe}\n", ["no_data"]),
    ]:
        path.write_text("alerts:\n  rules:\n" + bad)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        for w in words:
            assert w in str(err.value)
    path.write_text("alerts:\n  webhooks: [ftp://x]\n")
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_config(path)


async def test_an_event_rule_alerts_at_once_and_clears_after_its_window() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    rule = next(r for r in builtin_alert_rules() if r.metric == "dead_letters")
    events = EventCounter([NOW - 7200])  # an old dead letter: outside the rule's hour
    engine = AlertEngine([rule], source_from_samples([]), counters={"dead_letters": events})
    assert [(x.previous, x.state, x.value) for x in engine.evaluate(NOW)] == [("no_data", "ok", 0.0)]
    judged = engine.record_event("dead_letters")  # on the event loop: judged and delivered now
    assert judged is not None
    (t,) = await judged
    assert (t.previous, t.state, t.value) == ("ok", "alert", 1.0) and engine.status() == "DOWN"
    assert any(
        e["event"] == "alert" and e["rule"] == "dead_letters"
        for e in map(orjson.loads, out.getvalue().splitlines())
    )
    events.add(NOW - 100)  # an event out of order is sorted in
    assert events.count(NOW - 200, NOW) == 1
    later = engine.evaluate(t.at + rule.window_s + 1)
    assert [(x.previous, x.state) for x in later] == [("alert", "ok")]
    blind = AlertEngine([rule], source_from_samples([]))  # no counter: no data, never an error
    blind.evaluate(NOW)
    assert blind.states()[0].state == "no_data"


def test_an_event_counter_sorts_late_events_in_and_keeps_the_newest() -> None:
    events = EventCounter(limit=3)
    for at in (30.0, 10.0, 20.0):  # read back newest first, as a restart reads dead letters
        events.add(at)
    assert events.count(0, 100) == 3 and events.count(15, 25) == 1
    events.add(5.0)  # older than every time kept, with no room: the first to go
    assert events.count(0, 100) == 3 and events.count(0, 10) == 0
    events.add(25.0)  # late but not the oldest, with no room: the oldest (10) goes
    assert events.count(0, 15) == 0 and events.count(20, 31) == 3
