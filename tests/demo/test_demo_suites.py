"""The demo's eval suites and gate policy: the suites load, the generator reproduces the committed
files, and the real runner on the scripted model passes version 1.0 on everything while version 1.1
fails exactly its refund cases, for the right reason; the production gate decides accordingly."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig, load_config
from shipyard.demo import copy_project
from shipyard.demo._store import DemoStore
from shipyard.demo._suites import GENERATORS, generate, main, stale_suites, suites_dir, write_suites
from shipyard.evals import (
    EvalRunner,
    EvalRunResult,
    RunSummary,
    Suite,
    decide_gate,
    load_suite,
    summarize_run,
    validate_suite,
)
from shipyard.runtime import Runtime

V10, V11 = "1.0.0", "1.1.0"
SUITE_NAMES = ("smoke", "broad", "safety")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> ShipyardConfig:
    return load_config(copy_project(tmp_path_factory.mktemp("demo")) / "shipyard.yaml")


@pytest.fixture(scope="module")
def suites(cfg: ShipyardConfig) -> dict[str, Suite]:
    return {name: load_suite(suites_dir(cfg.root) / f"{name}.yaml") for name in SUITE_NAMES}


async def _run(cfg: ShipyardConfig, suites: list[Suite], version: str) -> EvalRunResult:
    rt = Runtime(cfg)
    try:
        return await EvalRunner(rt, cfg, concurrency=16).run(
            "support", suites, version=version, progress=False
        )
    finally:
        await rt.aclose()


@pytest.fixture(scope="module")
def runs(cfg: ShipyardConfig, suites: dict[str, Suite]) -> dict[str, EvalRunResult]:
    """Every suite through the real runner, once per version (in-process, scripted model)."""
    return {v: asyncio.run(_run(cfg, list(suites.values()), v)) for v in (V10, V11)}


def failing(run: EvalRunResult) -> dict[str, list[str]]:
    return {f"{r.suite}/{r.case_id}": r.reasons for r in run.results if r.outcome != "PASS"}


# --- the suites ---------------------------------------------------------------------------------------


def test_suites_load_validate_and_have_the_promised_size(
    cfg: ShipyardConfig, suites: dict[str, Suite]
) -> None:
    for suite in suites.values():
        validate_suite(suite, cfg)  # every scorer builds
    assert 25 <= len(suites["smoke"].cases) <= 40
    assert len(suites["broad"].cases) >= 200
    assert len(suites["safety"].cases) >= 50
    assert {c.category for c in suites["smoke"].cases} == {"functional", "tool_usage", "safety"}
    assert {c.category for c in suites["broad"].cases} == {"functional", "tool_usage"}
    assert {c.category for c in suites["safety"].cases} == {"safety"}
    assert all(c.tags for s in suites.values() for c in s.cases)


def test_safety_covers_every_kind_of_attack(suites: dict[str, Suite]) -> None:
    kinds = Counter(c.tags[0] for c in suites["safety"].cases)
    for kind in (
        "injection",
        "jailbreak",
        "prompt-extraction",
        "other-customers-data",
        "pii",
        "refund-fraud",
    ):
        assert kinds[kind] >= 5, kind
    for c in suites["safety"].cases:
        types = [a.type for a in c.assertions]
        assert types[:2] == ["no_system_prompt_leak", "no_pii"]  # the suite defaults


def test_broad_covers_every_order_and_article_with_the_right_refund_expectation(
    suites: dict[str, Suite],
) -> None:
    store = DemoStore.load()
    broad = suites["broad"]
    ids = {c.id for c in broad.cases}
    for oid in store.orders:
        assert {f"status-{oid}", f"return-{oid}", f"refund-{oid}", f"cancel-{oid}"} <= ids
        refund = broad.case(f"refund-{oid}")
        traj = refund.trajectory
        assert traj is not None and traj.mode == "in_order" and traj.calls is not None
        names = [c.name for c in traj.calls]
        if store.eligibility(oid)["eligible"]:
            assert names == ["lookup_order", "check_return_eligibility", "process_refund"]
            assert traj.max_calls == {"process_refund": 1}
            assert "I've refunded" in str(refund.expected)
        else:
            assert names == ["lookup_order", "check_return_eligibility"]
            assert traj.forbidden == ["process_refund"]
            assert f"I can't refund order {oid}" in str(refund.expected)
    for article in store.articles:
        n = article["id"].lower().removeprefix("kb-")
        assert sum(i.startswith(f"kb-{n}-") for i in ids) >= 3
    assert sum(i.startswith("unknown-order-") for i in ids) >= 5
    assert sum(i.startswith("escalate-") for i in ids) >= 10


# --- the generator ---------------------------------------------------------------------------------------


def test_generator_is_reproducible_and_the_committed_files_are_current() -> None:
    first, second = generate(), generate()
    assert first == second and set(first) == set(GENERATORS)
    assert stale_suites() == []  # the packaged broad.yaml / safety.yaml equal what the generator makes
    assert main(["--check"]) == 0


def test_generator_writes_and_checks_a_project_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check", "--project", str(tmp_path)]) == 1
    assert "stale: broad.yaml, safety.yaml" in capsys.readouterr().err
    paths = write_suites(tmp_path)
    assert [p.name for p in paths] == ["broad.yaml", "safety.yaml"]
    assert main(["--check", "--project", str(tmp_path)]) == 0
    broad = tmp_path / "evals" / "support" / "broad.yaml"
    broad.write_text(broad.read_text().replace("status-10001", "status-1"))
    assert stale_suites(tmp_path) == ["broad.yaml"]
    assert main(["--project", str(tmp_path)]) == 0
    assert stale_suites(tmp_path) == []
    assert load_suite(broad).case("status-10001").input == "Where is my order 10001?"


# --- the outcome: 1.0 passes, 1.1 fails its refund cases ------------------------------------------------------


def test_v10_passes_every_case(runs: dict[str, EvalRunResult], suites: dict[str, Suite]) -> None:
    run = runs[V10]
    assert run.complete and run.version.startswith("support@1.0.0+")
    assert failing(run) == {}
    assert run.counts()["PASS"] == sum(len(s.cases) for s in suites.values())


def test_v11_fails_exactly_the_refund_cases_for_the_right_reason(
    runs: dict[str, EvalRunResult], suites: dict[str, Suite]
) -> None:
    refund_tags = {"refund", "refund-fraud"}
    expected = {f"{s.name}/{c.id}" for s in suites.values() for c in s.cases if refund_tags & set(c.tags)}
    failed = failing(runs[V11])
    assert set(failed) == expected
    assert Counter(k.split("/")[0] for k in failed) == {"smoke": 7, "broad": 44, "safety": 15}
    for key, reasons in failed.items():
        suite, case_id = key.split("/")
        trajectory = suites[suite].case(case_id).trajectory
        assert trajectory is not None
        [why] = [r for r in reasons if r.startswith("trajectory:")]
        if "process_refund" in trajectory.forbidden:  # an ineligible order: refunded at all
            assert "called forbidden tool 'process_refund'" in why, key
        else:  # an eligible order: refunded without the eligibility check
            assert "got ['lookup_order', 'process_refund'" in why, key


def test_production_gate_passes_v10_and_fails_v11(
    cfg: ShipyardConfig, runs: dict[str, EvalRunResult], suites: dict[str, Suite]
) -> None:
    policy = cfg.gates.stage("production")
    assert [cfg.resolve(p) for p in policy.suites][:2] == [suites[n].path for n in ("broad", "safety")]
    # the red-team suites the stage also runs are gated in tests/demo/test_demo_safety.py
    rates = {k: v for k, v in policy.min_pass_rate.items() if k != "adversarial"}
    policy = policy.model_copy(update={"min_pass_rate": rates})
    production = {"broad", "safety"}

    def summary(version: str) -> RunSummary:
        run = runs[version]
        kept = [r for r in run.results if r.suite in production]
        only = EvalRunResult(run.run_id, run.agent, run.version, "production", sorted(production), kept)
        return summarize_run(only, policy.case_rule)

    v10, v11 = summary(V10), summary(V11)
    ok = decide_gate(v10, policy, None, stage="production")
    assert ok.verdict == "PASS", ok.reasons
    bad = decide_gate(v11, policy, v10, stage="production")
    assert bad.verdict == "FAIL"
    failed = {c.name for c in bad.checks if not c.passed}
    assert failed == {"pass_rate.tool_usage", "safety", "regression"}
    assert bad.regression is not None
    assert {c.case_id for c in bad.regression.newly_failing} == set(bad.failing_cases)
    assert all(c.split("/")[1].startswith(("refund-", "damaged-refund-")) for c in bad.failing_cases)


def test_pre_merge_gate_uses_smoke(cfg: ShipyardConfig, suites: dict[str, Suite]) -> None:
    policy = cfg.gates.stage("pre-merge")
    assert [cfg.resolve(p) for p in policy.suites] == [suites["smoke"].path]
    assert cfg.gates.stage("post-merge").suites == ["evals/support/broad.yaml"]
