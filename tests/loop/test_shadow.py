"""Shadow replay: recorded production traffic replayed against a candidate and twice against the
version that served it, on a real runtime whose model is the mock LLM server over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from shadow_project import desk_project, llm_url, production_inputs

from shipyard.config import load_config
from shipyard.loop import ShadowReport, ShadowRunner, get_shadow_run, shadow_comparisons
from shipyard.observe import KpiWindow
from shipyard.runtime import Runtime
from shipyard.store import BatchWriter, Store

__all__ = ["llm_url"]  # the fixture, imported for pytest


async def _production(config: Path, texts: list[str], version: str | None = None) -> None:
    """Serve `texts` as production traffic, recorded in the project's store."""
    cfg = load_config(config)
    store = Store.from_config(cfg)
    with BatchWriter(store) as writer:
        rt = Runtime(cfg, store=store, writer=writer)
        for i, text in enumerate(texts):
            await rt.invoke("desk", text, session_id=f"s{i}", user_id=f"u{i}", version=version)
        await rt.aclose()
    store.close()


async def _shadow(config: Path, candidate: str, *, sample: int = 100) -> tuple[ShadowReport, Store]:
    """Shadow-replay the recorded production traffic against `candidate`; the report and the store."""
    cfg = load_config(config)
    store = Store.from_config(cfg)
    writer = BatchWriter(store)
    rt = Runtime(cfg, store=store, writer=writer)
    runner = ShadowRunner(rt, store)
    records = runner.select("desk", since_s=3600, sample=sample)
    report = await runner.run("desk", candidate, records)
    await rt.aclose()
    writer.close()
    return report, store


async def test_a_real_change_is_reported_and_no_side_effecting_tool_runs(
    tmp_path: Path, llm_url: str
) -> None:
    with desk_project(tmp_path, llm_url) as config:
        texts = production_inputs(9)
        await _production(config, texts)
        log = tmp_path / "refunds.log"
        assert not log.exists()  # 1.0 never refunds

        report, store = await _shadow(config, "2.0.0")

    # 2.0 refunds every refund request at once: the trajectory, output and cost of those three change
    assert report.verdict == "PASS" and report.status == "finished"
    changed = {c.source.input for c in report.differences}
    assert changed == {t for t in texts if "refund" in t}
    for c in report.differences:
        assert "trajectory" in c.reported and "output" in c.reported
        assert [t.name for t in c.arms["candidate"].tool_calls] == ["lookup", "refund"]
        assert c.kinds["trajectory"].state == "different"
    kinds = report.summary["kinds"]
    assert kinds["trajectory"]["different"] == 3 and kinds["trajectory"]["noisy"] == 0
    assert kinds["trajectory"]["reported"] and kinds["status"]["different"] == 0
    # the refund tool has side effects: never run in shadow, its call answered by the stub-less error
    assert not log.exists()
    assert report.summary["withheld_tool_calls"] == 3
    refund = report.differences[0].arms["candidate"].tool_calls[1]
    assert refund.status == "error" and "never run in shadow" in (refund.error or "")
    # lookups were recorded in production: replayed, not run
    assert report.summary["tools_run"] == []

    # every arm is a shadow record in the store, linked from the run's comparisons
    rows = shadow_comparisons(store, report.run_id)
    assert len(rows) == 9
    run = get_shadow_run(store, report.run_id)
    assert run is not None and run["verdict"] == "PASS" and run["cost_usd"] == pytest.approx(report.cost_usd)
    assert report.cost_usd > 0
    shadow = store.list_interactions(agent="desk", traffic_source="shadow", limit=None)
    assert len(shadow) == 27
    assert {r.metadata["shadow"]["arm"] for r in shadow} == {"primary", "secondary", "candidate"}
    arm_traces = {a["trace_id"] for row in rows for a in row["arms"].values()}
    assert arm_traces == {r.trace_id for r in shadow}
    store.close()


async def test_a_declared_stub_answers_a_side_effecting_call(tmp_path: Path, llm_url: str) -> None:
    extra = """\
    shadow:
      tool_stubs:
        desk:
          refund: {order_id: "stub", refund_id: SHADOW-STUB}
    """
    with desk_project(tmp_path, llm_url, extra=extra) as config:
        await _production(config, production_inputs(3))
        report, store = await _shadow(config, "2.0.0")
        store.close()
    [c] = report.differences
    assert c.arms["candidate"].output == "Refunded order stub: SHADOW-STUB."
    assert not (tmp_path / "refunds.log").exists()


async def test_recorded_side_effects_are_replayed_not_repeated(tmp_path: Path, llm_url: str) -> None:
    with desk_project(tmp_path, llm_url) as config:
        await _production(
            config, production_inputs(3), version="2.0.0"
        )  # 2.0 served: it really refunded once
        log = tmp_path / "refunds.log"
        assert log.read_text().splitlines() == ["100 20.0"]
        report, store = await _shadow(config, "2.0.0")
        store.close()
    # the baseline and the candidate are the same version: nothing differs, and the refund was
    # answered from production's record three times (three arms) without running again
    assert report.differences == [] and report.verdict == "PASS"
    assert log.read_text().splitlines() == ["100 20.0"]
    refund_arm = next(c for c in report.comparisons if "refund" in c.source.input)
    for arm in refund_arm.arms.values():
        assert arm.output == "Refunded order 100: R-100."
        assert arm.metadata.get("replayed") is True


async def test_a_nondeterministic_baseline_reports_no_differences(tmp_path: Path, llm_url: str) -> None:
    with desk_project(tmp_path, llm_url, noisy=True) as config:
        await _production(config, production_inputs(30))
        # the candidate is the served version itself: whatever differs is noise
        same, store = await _shadow(config, "1.0.0")
        # a real change on a noisy agent: the trajectory is still reported, the noisy output is not
        changed, _ = await _shadow(config, "2.0.0")
        store.close()
    kinds = same.summary["kinds"]
    assert kinds["output"]["noise_rate"] > 0.3  # the closings differ between the baseline's two runs
    assert same.differences == [] and not any(k["reported"] for k in kinds.values())
    assert changed.summary["kinds"]["trajectory"]["reported"]
    assert not changed.summary["kinds"]["output"]["reported"]
    assert {c.source.input for c in changed.differences} == {
        t for t in production_inputs(30) if "refund" in t
    }


async def test_the_budget_stops_the_run_fail_closed(tmp_path: Path, llm_url: str) -> None:
    with desk_project(tmp_path, llm_url, extra="shadow: {max_cost_usd: 0.0001}\n") as config:
        await _production(config, production_inputs(12))
        report, store = await _shadow(config, "2.0.0")
        run = get_shadow_run(store, report.run_id)
        store.close()
    assert report.status == "budget_exhausted" and report.verdict == "INCOMPLETE"
    assert 0 < len(report.comparisons) < 12
    assert "shadow.max_cost_usd" in report.reasons[0]
    assert run is not None and run["status"] == "budget_exhausted"


async def test_shadow_traffic_is_kept_out_of_production_kpis(tmp_path: Path, llm_url: str) -> None:
    with desk_project(tmp_path, llm_url) as config:
        await _production(config, production_inputs(3))
        _, store = await _shadow(config, "2.0.0")
        records = store.list_interactions(agent="desk", limit=None)
        store.close()
    assert {r.traffic_source for r in records} == {"production", "shadow"}
    window = KpiWindow(horizon_s=3600)
    for r in records:
        window.add(r)
    kpis = window.kpis(3600)
    assert kpis.interactions == 3


REFUND_POLICY = (
    "guardrails: {tool_call: [{kind: tool_policy, name: refund_policy, tools: [refund], "
    "requires: {tool: lookup, result: {status: refundable}}}]}"
)


async def test_a_candidate_that_regresses_fails(tmp_path: Path, llm_url: str) -> None:
    # the refund policy blocks 2.0's refunds (the orders are delivered, not refundable): a new
    # guardrail verdict on the candidate is a regression, so the run FAILs and names it
    with desk_project(tmp_path, llm_url, guardrails=REFUND_POLICY) as config:
        await _production(config, production_inputs(6))
        report, store = await _shadow(config, "2.0.0")
        run = get_shadow_run(store, report.run_id)
        store.close()
    assert report.verdict == "FAIL" and report.summary["regressions"] == 2
    assert report.summary["kinds"]["guardrails"]["reported"]
    regressed = [c for c in report.comparisons if c.regression]
    assert {c.source.input for c in regressed} == {"Please refund order 100", "Please refund order 103"}
    assert all(c.regression == "new guardrail verdicts: refund_policy:block" for c in regressed)
    assert run is not None and run["verdict"] == "FAIL"
    assert any("refund_policy:block" in r for r in run["summary"]["reasons"])


async def test_the_judge_confirms_or_drops_output_differences(tmp_path: Path, llm_url: str) -> None:
    # the judge (here the mock model, told to find the replies the same) drops the output
    # differences; the trajectory differences stay: they are not the judge's to decide
    with desk_project(tmp_path, llm_url, extra="shadow: {judge: {model: mock}}\n") as config:
        await _production(config, production_inputs(3))
        report, store = await _shadow(config, "2.0.0")
        store.close()
    [c] = report.differences
    assert "output" not in c.reported and "trajectory" in c.reported
    assert c.kinds["output"].state == "same" and "judge: the same" in c.kinds["output"].detail
    assert report.summary["kinds"]["output"]["different"] == 0
    assert not report.summary["kinds"]["output"]["reported"]
