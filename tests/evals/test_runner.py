"""The runner against a real runtime: a small agent on a scripted model, a real SQLite store."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from order_shop import RULES, shop_project

from shipyard.config import ShipyardConfig, load_config
from shipyard.errors import NotFoundError, ShipyardError
from shipyard.evals import AdaptiveLimiter, EvalRunner, Suite, decide, load_suite
from shipyard.evals._types import ScoreResult
from shipyard.llm import MockLLMServer
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord, Store

JUDGE = """\
default: '{{"pass": true, "score": 1, "reason": "fine"}}'
rules:
  - when: {user: 'garbage'}
    reply: 'no verdict here'
"""

SUITE = """\
name: smoke
cases:
  - id: order
    input: "where is order 42?"
    expected: "Order 42 is shipped."
    trajectory: {mode: exact, calls: [{name: lookup, args: {order_id: "42"}}]}
    assert: [{type: cost, max_usd: 1.0}, {type: llm_judge, value: "answers the question"}]
  - id: wrong
    input: "where is order 7?"
    expected: "delivered"
  - id: crash
    input: "crash please"
    expected: "anything"
  - id: slow
    input: "slow please"
    timeout_s: 0.2
    expected: "anything"
  - id: judge-garbage
    input: "hello"
    assert: [{type: llm_judge, value: "garbage rubric"}]
  - id: chat
    category: regression
    conversation:
      - {user: "hello", expected: "Hello"}
      - {user: "and order 9?"}
    expected: "Order 9 is shipped"
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Callable[..., ShipyardConfig]]:
    """The order desk (tests/support/order_shop.py) and a scripted judge; returns a loader."""
    (tmp_path / "judge.yaml").write_text(JUDGE)
    with shop_project(tmp_path, "evalshop") as module:

        def make(model: str = "scripted", extra_models: str = "") -> ShipyardConfig:
            (tmp_path / "shipyard.yaml").write_text(
                textwrap.dedent("""\
                models:
                  scripted: {provider: scripted, rules: rules.yaml, prices: {input: 1.0, output: 2.0}}
                  judge: {provider: scripted, rules: judge.yaml, prices: {input: 0.5, output: 0.5}}
                """)
                + extra_models
                + textwrap.dedent(f"""\
                agents:
                  shop:
                    entry: {module}:shop
                    timeout_s: 60  # generous: only the "slow" case (its own 0.2 s) is meant to time out
                    model: {{name: {model}}}
                """)
            )
            return load_config(tmp_path / "shipyard.yaml")

        yield make


def suite_file(tmp_path: Path, text: str = SUITE, name: str = "smoke.yaml") -> Suite:
    p = tmp_path / name
    p.write_text(text)
    return load_suite(p)


async def test_run_scores_every_case_and_isolates_failures(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    cfg = project()
    rt = Runtime(cfg)
    seen: list[InteractionRecord] = []
    rt.sinks.append(seen.append)
    result = await EvalRunner(rt, cfg, concurrency=4).run("shop", [suite_file(tmp_path)], progress=False)
    await rt.aclose()
    by_id = {r.case_id: r for r in result.results}
    assert [r.case_id for r in result.results] == ["order", "wrong", "crash", "slow", "judge-garbage", "chat"]
    assert {k: r.outcome for k, r in by_id.items()} == {
        "order": "PASS",
        "wrong": "FAIL",
        "crash": "ERROR",
        "slow": "ERROR",
        "judge-garbage": "ERROR",
        "chat": "PASS",
    }
    order = by_id["order"]
    assert order.output == "Order 42 is shipped." and order.status == "completed"
    assert order.tool_calls == [
        {"name": "lookup", "arguments": {"order_id": "42"}, "status": "success", "turn": 0}
    ]
    assert order.cost_usd > 0 and order.judge_cost_usd > 0 and order.judge_input_tokens > 0
    assert order.input_tokens > 0 and order.interaction_id and order.trace_id and order.suite == "smoke"
    assert [s.scorer for s in order.scores] == ["expected (contains)", "cost", "llm_judge", "trajectory"]
    assert "delivered" in by_id["wrong"].reasons[0]
    assert "RuntimeError: agent bug" in (by_id["crash"].error or "")
    assert "did not finish within 0.2s" in (by_id["slow"].error or "")
    assert "no majority verdict" in (by_id["judge-garbage"].error or "")
    chat = by_id["chat"]
    assert chat.category == "regression" and chat.output == "Order 9 is shipped."
    assert [s.scorer for s in chat.scores] == ["expected (contains)", "turn 1 expected (contains)"]
    assert all(s.passed for s in chat.scores)
    assert result.counts() == {"PASS": 2, "FAIL": 1, "ERROR": 3}
    assert result.complete and result.version.startswith("shop@") and result.mode == "live"
    assert {r.traffic_source for r in seen} == {"eval"}
    assert all(r.metadata["eval_run"] == result.run_id for r in seen)
    chat_records = [r for r in seen if r.metadata["eval_case"] == "chat"]
    assert len(chat_records) == 2 and len({r.session_id for r in chat_records}) == 1


async def test_repeats_and_store(project: Callable[..., ShipyardConfig], tmp_path: Path) -> None:
    cfg = project()
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    rt = Runtime(cfg, store=store)
    suite = suite_file(
        tmp_path,
        "name: s\ncases:\n  - {id: a, input: 'order 1', expected: shipped, repeat: 2}\n"
        "  - {id: b, input: hello, expected: Hello}\n",
    )
    result = await EvalRunner(rt, cfg, concurrency=3).run("shop", [suite], stage="pre-merge", progress=False)
    assert [(r.case_id, r.repeat) for r in result.results] == [("a", 0), ("a", 1), ("b", 0)]
    result3 = await EvalRunner(rt, cfg, repeat=3).run("shop", [suite], progress=False)
    assert [(r.case_id, r.repeat) for r in result3.results] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 0),
        ("b", 1),
        ("b", 2),
    ]
    await rt.aclose()
    run = store.get_eval_run(result.run_id)
    assert run is not None and run["status"] == "finished" and run["stage"] == "pre-merge"
    assert run["suites"] == ["s"] and run["summary"]["counts"] == {"PASS": 3, "FAIL": 0, "ERROR": 0}
    rows = store.eval_results(result.run_id)
    assert sorted((r["case_id"], r["repeat"], r["outcome"]) for r in rows) == [
        ("a", 0, "PASS"),
        ("a", 1, "PASS"),
        ("b", 0, "PASS"),
    ]


async def test_budget_stops_scheduling_cleanly(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    cfg = project()
    rt = Runtime(cfg)
    cases = "".join(f"  - {{id: c{i}, input: 'order {i}', expected: shipped}}\n" for i in range(10))
    suite = suite_file(tmp_path, "name: many\ncases:\n" + cases)
    single = suite_file(
        tmp_path, "name: one\ncases:\n  - {id: c0, input: 'order 0', expected: shipped}\n", "one.yaml"
    )
    one = (await EvalRunner(rt, cfg).run("shop", [single], progress=False)).results[0]
    per_case = one.cost_usd
    assert per_case > 0
    result = await EvalRunner(rt, cfg, concurrency=1, budget_usd=per_case * 2.5).run(
        "shop", [suite], progress=False
    )
    await rt.aclose()
    assert result.budget_exhausted and not result.complete
    assert len(result.results) == 3 and all(r.outcome == "PASS" for r in result.results)
    assert result.skipped == [f"many/c{i}#0" for i in range(3, 10)]


async def test_record_then_replay_is_identical_and_free(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    cfg = project()
    suite = suite_file(tmp_path)
    rt = Runtime(cfg)
    recorded = await EvalRunner(rt, cfg, mode="record", repeat=2).run("shop", [suite], progress=False)
    files = list((tmp_path / ".shipyard" / "replay" / "shop").iterdir())
    assert [f.name for f in files] == ["smoke.jsonl"]
    replayed = await EvalRunner(rt, cfg, mode="replay", repeat=2).run("shop", [suite], progress=False)

    def facts(res: list) -> list:
        return [
            (r.case_id, r.repeat, r.outcome, r.output, r.tool_calls, [s.passed for s in r.scores])
            for r in res
        ]

    assert facts(replayed.results) == facts(recorded.results)
    ok = [r for r in replayed.results if r.outcome != "ERROR" or r.case_id == "judge-garbage"]
    assert ok and all(r.replayed and r.cost_usd == 0 and r.judge_cost_usd == 0 for r in ok)
    order = next(r for r in replayed.results if r.case_id == "order")
    assert next(s for s in order.scores if s.scorer == "cost").details["cost_usd"] > 0  # priced from tokens

    # a request the recording does not have is an ERROR that says what to do
    changed = suite_file(tmp_path, SUITE.replace("where is order 42?", "where is order 43?"))
    miss = await EvalRunner(rt, cfg, mode="replay").run("shop", [changed], progress=False)
    order = next(r for r in miss.results if r.case_id == "order")
    assert order.outcome == "ERROR" and "record again with --record" in (order.error or "")
    await rt.aclose()
    with pytest.raises(NotFoundError, match="no recording at"):
        await EvalRunner(rt, cfg, mode="replay").run(
            "shop", [suite_file(tmp_path, name="other.yaml", text=SUITE.replace("smoke", "other"))]
        )


async def test_interrupt_keeps_results(project: Callable[..., ShipyardConfig], tmp_path: Path) -> None:
    cfg = project()
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    rt = Runtime(cfg, store=store)
    two_done = asyncio.Event()
    seen: list[InteractionRecord] = []

    def sink(rec: InteractionRecord) -> None:
        seen.append(rec)
        if len(seen) >= 2:
            two_done.set()

    rt.sinks.append(sink)
    cases = "".join(f"  - {{id: c{i}, input: 'order {i}', expected: shipped}}\n" for i in range(50))
    suite = suite_file(tmp_path, "name: long\ncases:\n" + cases)
    task = asyncio.create_task(EvalRunner(rt, cfg, concurrency=1).run("shop", [suite], progress=False))
    await two_done.wait()
    task.cancel()
    result = await task
    await rt.aclose()
    assert result.interrupted and not result.complete
    assert 1 <= len(result.results) < 50 and len(result.results) + len(result.skipped) == 50
    assert all(r.outcome == "PASS" for r in result.results)
    run = store.get_eval_run(result.run_id)
    assert run is not None and run["status"] == "interrupted"
    assert len(store.eval_results(result.run_id)) == len(result.results)


async def test_bad_suite_or_version_stops_before_running(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    cfg = project()
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    rt = Runtime(cfg, store=store)
    bad = suite_file(
        tmp_path,
        "name: s\ncases:\n  - id: a\n    input: x\n    assert:\n"
        "      - {type: llm_judge, value: polite, model: nope}\n",
    )
    with pytest.raises(ShipyardError) as err:
        await EvalRunner(rt, cfg).run("shop", [bad], progress=False)
    assert "judge model 'nope' is not defined" in str(err.value) and "line 6" in str(err.value)
    with pytest.raises(NotFoundError):
        await EvalRunner(rt, cfg).run("shop", [bad], version="9.9.9", progress=False)
    with pytest.raises(NotFoundError):
        await EvalRunner(rt, cfg).run("nobody", [bad], progress=False)
    assert store.list_eval_runs() == []
    with pytest.raises(ShipyardError, match="concurrency must be at least 1"):
        EvalRunner(rt, cfg, concurrency=0)
    await rt.aclose()


def test_decide_never_passes_an_error() -> None:
    ok = ScoreResult("a", True, 1.0)
    bad = ScoreResult("b", False, 0.0)
    undecided = ScoreResult("j", None, error="unreadable")
    assert decide([ok], None) == ("PASS", None)
    assert decide([ok, bad], None) == ("FAIL", None)
    assert decide([ok, undecided], None)[0] == "ERROR"
    assert decide([ok, ScoreResult("w", None, weight=0)], None)[0] == "ERROR"
    assert decide([ok, ScoreResult("info", False, weight=0)], None) == ("PASS", None)
    assert decide([ok, ScoreResult("half", False, 0.5)], 0.7) == ("PASS", None)
    assert decide([ok, ScoreResult("half", False, 0.2)], 0.7) == ("FAIL", None)


async def test_adaptive_limiter_halves_once_per_congestion_and_grows_back() -> None:
    lim = AdaptiveLimiter(8)
    for _ in range(3):
        await lim.acquire()
    await lim.release(throttled=True)
    assert lim.limit == 4 and lim.halvings == 1
    await lim.release(throttled=True)  # in flight when it halved: the same congestion, no second cut
    await lim.release(throttled=False)
    assert lim.limit == 4 and lim.halvings == 1
    await lim.acquire()
    await lim.release(throttled=True)  # started after the cut: a new congestion
    assert lim.limit == 2 and lim.halvings == 2
    await lim.acquire()
    await lim.release(throttled=True)
    assert lim.limit == 1 and lim.lowest == 1
    await lim.acquire()
    blocked = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    assert not blocked.done()  # limit 1, one in flight
    await lim.release(throttled=False)
    await blocked
    assert lim.limit == 2 and lim.in_flight == 1  # after a cut: one more per round (1 success at 1)
    await lim.release(throttled=False)
    assert lim.limit == 2  # 1 of the 2 successes this round needs
    await lim.acquire()
    await lim.release(throttled=False)
    assert lim.limit == 3


async def test_adaptive_limiter_starts_low_and_doubles_each_round_until_a_429() -> None:
    lim = AdaptiveLimiter(64, start=8)
    assert lim.limit == 8
    for _ in range(8):
        await lim.acquire()
    for _ in range(8):
        await lim.release(throttled=False)
    assert lim.limit == 16  # one per success before any 429: a round doubles it
    for _ in range(100):
        await lim.acquire()
        await lim.release(throttled=False)
    assert lim.limit == lim.highest == 64  # never above the maximum
    await lim.acquire()
    await lim.release(throttled=True)
    assert lim.limit == 32
    for _ in range(31):
        await lim.acquire()
        await lim.release(throttled=False)
    assert lim.limit == 32  # after a 429, one per round of 32 successes
    await lim.acquire()
    await lim.release(throttled=False)
    assert lim.limit == 33


async def test_adaptive_limiter_steps_down_when_repeats_queue_and_grows_while_latency_holds() -> None:
    lim = AdaptiveLimiter(64, start=8)
    for _ in range(8):
        await lim.acquire()
        await lim.release(throttled=False, ms_per_turn=20.0)  # a provider that keeps up: grows
    assert lim.limit == 16
    for _ in range(6):  # 8x the fastest per turn: the run's own queueing (a CPU-bound agent)
        await lim.acquire()
        await lim.release(throttled=False, ms_per_turn=160.0)
    assert lim.limit == 10
    await lim.acquire()
    await lim.release(throttled=False, ms_per_turn=39.0)  # within 2x of the fastest: not congestion
    assert lim.limit == 10  # after a step down it grows one per round, like after a 429
    for _ in range(9):
        await lim.acquire()
        await lim.release(throttled=False, ms_per_turn=25.0)
    assert lim.limit == 11
    for _ in range(40):
        await lim.acquire()
        await lim.release(throttled=False, ms_per_turn=500.0)
    assert lim.limit == 1  # never below the minimum
    assert lim.halvings == 0  # latency steps are not 429 halvings


def _order_suite(tmp_path: Path, n: int) -> Suite:
    return suite_file(
        tmp_path,
        "name: s\ncases:\n"
        + "".join(f"  - {{id: c{i}, input: 'where is order {i}?', expected: shipped}}\n" for i in range(n)),
    )


def _mock_model(url: str) -> str:
    return textwrap.indent(f"mock: {{provider: openai, base_url: '{url}', max_retries: 0}}\n", "  ")


async def test_default_concurrency_grows_past_eight_while_the_provider_keeps_up(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    with MockLLMServer(yaml.safe_load(RULES), latency_ms=20) as url:
        cfg = project(model="mock", extra_models=_mock_model(url))
        rt = Runtime(cfg)
        runner = EvalRunner(rt, cfg)  # no concurrency given: adaptive
        result = await runner.run("shop", [_order_suite(tmp_path, 40)], progress=False)
        await rt.aclose()
    assert [r.outcome for r in result.results] == ["PASS"] * 40
    assert runner.limiter is not None
    assert runner.limiter.highest > 8 and runner.limiter.halvings == 0


async def test_default_concurrency_backs_off_on_a_provider_at_capacity(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    """A provider that answers 4 requests at once and 429s beyond (Retry-After 0.1 s): the runner halves
    its limit; the model client's retries of the 429s get the cases through."""
    server = MockLLMServer(yaml.safe_load(RULES), latency_ms=50, max_concurrent=4, retry_after_s=0.1)
    with server as url:
        cfg = project(model="mock", extra_models=_mock_model(url))
        rt = Runtime(cfg)
        runner = EvalRunner(rt, cfg)
        result = await runner.run("shop", [_order_suite(tmp_path, 24)], progress=False)
        await rt.aclose()
    assert server.app is not None and server.app.throttled > 0 and server.app.peak <= 4
    assert runner.limiter is not None and runner.limiter.halvings >= 1 and runner.limiter.lowest <= 4
    assert sum(r.outcome == "PASS" for r in result.results) >= 20


async def test_rate_limited_model_shrinks_concurrency(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    with MockLLMServer(yaml.safe_load(RULES), rate_limit_rate=1.0, retry_after_s=0) as url:
        cfg = project(
            model="mock",
            extra_models=textwrap.indent(
                f"mock: {{provider: openai, base_url: '{url}', max_retries: 0}}\n", "  "
            ),
        )
        rt = Runtime(cfg)
        suite = suite_file(
            tmp_path,
            "name: s\ncases:\n"
            + "".join(f"  - {{id: c{i}, input: 'order {i}', expected: shipped}}\n" for i in range(6)),
        )
        runner = EvalRunner(rt, cfg, concurrency=8)
        result = await runner.run("shop", [suite], progress=False)
        await rt.aclose()
    assert all(r.outcome == "ERROR" for r in result.results)
    assert "429" in (result.results[0].error or "") or "rate" in (result.results[0].error or "")
    assert runner.limiter is not None and runner.limiter.lowest < 8


async def test_a_record_run_with_the_model_down_keeps_the_last_good_recording(
    project: Callable[..., ShipyardConfig], tmp_path: Path
) -> None:
    """`--record` while the model does not answer: the runs are ERRORs, and the recording of the last
    run that was answered stays (a replay still works), instead of one that replays as errors."""
    cfg = project()
    suite = suite_file(tmp_path)
    rt = Runtime(cfg)
    good = await EvalRunner(rt, cfg, mode="record").run("shop", [suite], progress=False)
    recording = tmp_path / ".shipyard" / "replay" / "shop" / "smoke.jsonl"
    before = recording.read_bytes()
    assert before and not any(r.error and "replay" in r.error for r in good.results)
    await rt.aclose()

    # the same suite on a model that does not answer (nothing listens on the discard port)
    down = project("down", "  down: {provider: openai, base_url: 'http://127.0.0.1:9/v1', max_retries: 0}\n")
    rt = Runtime(down)
    failed = await EvalRunner(rt, down, mode="record").run("shop", [suite], progress=False)
    await rt.aclose()
    assert failed.results and all(r.outcome == "ERROR" for r in failed.results if r.case_id == "order")
    assert recording.read_bytes() == before  # the good recording, byte for byte
    assert [p.name for p in recording.parent.iterdir()] == ["smoke.jsonl"]  # no temp file left

    rt = Runtime(cfg)
    replayed = await EvalRunner(rt, cfg, mode="replay").run("shop", [suite], progress=False)
    await rt.aclose()
    order = next(r for r in replayed.results if r.case_id == "order")
    assert order.outcome == "PASS" and order.replayed
