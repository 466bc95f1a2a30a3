"""The /k8s endpoints against the contracts of Argo Rollouts' `web` metric provider and Flagger's
webhooks (taken from their repositories: tests/deploy/vendor/SOURCE.md), on a real served app over
HTTP, judging records in the real store."""

from __future__ import annotations

import copy
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from records import interaction
from server_helpers import HTTP, Served, free_port, run_in_thread
from testdb import fresh_database
from waiting import wait_until

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.evals import GATE_RULES
from shipyard.server import create_app, create_key
from shipyard.store import Store

VENDOR = Path(__file__).resolve().parents[1] / "deploy" / "vendor"
TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "argo-rollouts" / "analysis-template.yaml"
FLAGGER_PROCEED = range(200, 203)  # pkg/controller/webhook.go: a status above 202 is a failed hook


def version_of(served: Served, label: str) -> str:
    return next(v.id for v in served.state.rt.versions("support") if v.label == label)


def seed(served: Served, version: str, n: int, *, failed: int = 0, seed_: int = 7) -> None:
    """`n` production interactions of `version`, the first `failed` of them failed; latencies drawn
    from one distribution (the same seed gives both arms the same values)."""
    rng = random.Random(seed_)
    served.state.store.write_interactions(
        [
            interaction(
                version=version,
                session_id=f"{version}-{i}",
                status="failed" if i < failed else "completed",
                latency_ms=rng.uniform(80, 120),
                cost_usd=0.001,
            )
            for i in range(n)
        ]
    )


def argo_measurement(result: dict[str, Any]) -> str:
    """Argo's phase for one measurement of the AnalysisTemplate in deploy/: its jsonPath `{$}` gives
    the whole body as `result`; the conditions are `result.FIELD == "VALUE"` (checked to be so)."""
    metric = yaml.safe_load(TEMPLATE.read_text())["spec"]["metrics"][0]
    assert metric["provider"]["web"]["jsonPath"] == "{$}"

    def holds(condition: str) -> bool:
        m = re.fullmatch(r'result\.(\w+) == "(\w+)"', condition)
        assert m, f"a condition this test cannot evaluate: {condition}"
        return bool(result.get(m[1]) == m[2])

    if holds(metric["failureCondition"]):
        return "Failed"
    if holds(metric["successCondition"]):
        return "Successful"
    return "Inconclusive"  # neither: Argo pauses the rollout (inconclusiveLimit 0)


def flagger_payload(**metadata: str) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(
        json.loads((VENDOR / "flagger" / "webhook-payload.json").read_text())
    )
    payload["metadata"] = metadata
    return payload


def test_argo_web_metric_gives_pass_fail_and_inconclusive(served: Served) -> None:
    stable, canary = version_of(served, "1.0.0"), version_of(served, "1.1.0")
    seed(served, stable, 150)
    seed(served, canary, 150)  # the same outcomes and latencies: a pass
    with served.client() as c:
        query = {
            "agent": "support",
            "canary": "1.1.0",
            "stable": "1.0.0",
            "window": "1h",
            "min_samples": "100",
        }
        r = c.get("/k8s/argo/analysis", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["verdict"] == "pass" and body["analysis_verdict"] == "PASS", body
        assert body["canary"] == {"version": canary, "interactions": 150}
        assert body["stable"]["version"] == stable and body["stable"]["interactions"] == 150
        assert body["score"] == 100.0
        assert {m["name"] for m in body["metrics"]} >= {"task_completion", "latency_p50", "safety_incidents"}
        assert argo_measurement(body) == "Successful"

        # too little data for the asked minimum: neither condition holds, Argo pauses
        r = c.get("/k8s/argo/analysis", params={**query, "min_samples": "1000"})
        assert r.json()["verdict"] == "inconclusive" and r.json()["analysis_verdict"] == "INSUFFICIENT_DATA"
        assert argo_measurement(r.json()) == "Inconclusive"

        # without `stable`: the version that served the most production traffic besides the canary
        r = c.get("/k8s/argo/analysis", params={k: v for k, v in query.items() if k != "stable"})
        assert r.json()["stable"] == {"version": stable, "interactions": 150, "chosen_by": "traffic"}

        # 1.2.0 fails a third of its interactions: a fail, whose reasons name the metric
        bad = version_of(served, "1.2.0")
        seed(served, bad, 150, failed=50)
        r = c.get("/k8s/argo/analysis", params={**query, "canary": bad})
        assert r.status_code == 200
        assert r.json()["verdict"] == "fail", r.json()
        assert any("task_completion" in reason for reason in r.json()["reasons"])
        assert argo_measurement(r.json()) == "Failed"


@pytest.mark.parametrize(
    "params,status,param",
    [
        ({"canary": "1.1.0"}, 400, "query.agent"),
        ({"agent": "support"}, 400, "query.canary"),
        ({"agent": "nobody", "canary": "1.1.0"}, 404, "query.agent"),
        ({"agent": "support", "canary": "9.9.9"}, 404, "canary"),
        ({"agent": "support", "canary": "1.1.0", "window": "soon"}, 422, "query.window"),
        ({"agent": "support", "canary": "1.1.0", "min_samples": "-3"}, 422, "query.min_samples"),
        ({"agent": "support", "canary": "1.1.0", "stable": "1.1.0"}, 422, "stable"),
    ],
)
def test_argo_errors_are_non_2xx_naming_the_parameter(
    served: Served, params: dict[str, str], status: int, param: str
) -> None:
    """A non-2xx is an Error measurement in Argo, never a verdict (webmetric.go)."""
    with served.client() as c:
        r = c.get("/k8s/argo/analysis", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_flagger_hooks_follow_flaggers_status_codes(served: Served) -> None:
    stable, canary, bad = (version_of(served, v) for v in ("1.0.0", "1.1.0", "1.2.0"))
    seed(served, stable, 150)
    seed(served, canary, 150)
    seed(served, bad, 150, failed=50)
    store = served.state.store
    read_key = create_key(store, "read")["key"]
    served.state.keys.refresh()
    common = {"agent": "support", "stable": "1.0.0", "window": "1h", "min_samples": "100", "token": read_key}

    def call(hook: str, **metadata: str) -> httpx.Response:
        with httpx.Client(base_url=served.url, timeout=60) as c:  # no header: Flagger sends none
            return c.post(f"/k8s/flagger/{hook}", json=flagger_payload(**{**common, **metadata}))

    # the analysis hooks: a passing canary proceeds and is not rolled back
    for hook in ("rollout", "confirm-promotion"):
        r = call(hook, canary="1.1.0")
        assert r.status_code in FLAGGER_PROCEED, r.text
        assert r.json()["proceed"] is True and r.json()["analysis"]["analysis_verdict"] == "PASS"
        assert r.json()["canary_resource"]["name"] == "podinfo"
    assert call("rollback", canary="1.1.0").status_code not in FLAGGER_PROCEED

    # a failing canary halts every analysis hook, and the rollback hook says roll back (2xx)
    for hook in ("rollout", "confirm-promotion"):
        r = call(hook, canary="1.2.0")
        assert r.status_code not in FLAGGER_PROCEED and r.json()["proceed"] is False
        assert "failed its analysis" in r.json()["message"]
    r = call("rollback", canary="1.2.0")
    assert r.status_code in FLAGGER_PROCEED and "roll back" in r.json()["message"]

    # too little data: halt (Flagger retries next interval), no rollback
    assert call("rollout", canary="1.1.0", min_samples="1000").status_code not in FLAGGER_PROCEED
    assert call("rollback", canary="1.1.0", min_samples="1000").status_code not in FLAGGER_PROCEED

    # the gate hooks: no production gate run yet -> halt, naming the command that gates it
    for hook in ("confirm-rollout", "pre-rollout"):
        r = call(hook, canary="1.1.0")
        assert r.status_code not in FLAGGER_PROCEED
        assert "shipyard gate production --agent support --version 1.1.0" in r.json()["message"]
    run = store.create_eval_run("support", canary, ["evals/support/broad.yaml"], stage="production")
    store.finish_eval_run(
        run, "finished", {"counts": {}}, {"verdict": "PASS", "reasons": [], "rules": GATE_RULES}
    )
    for hook in ("confirm-rollout", "pre-rollout"):
        r = call(hook, canary="1.1.0")
        assert r.status_code in FLAGGER_PROCEED, r.text
        assert r.json()["gate"]["run_id"] == run


def test_flagger_hooks_need_a_read_key_once_keys_exist(served: Served) -> None:
    invoke_key = create_key(served.state.store, "invoke")["key"]
    served.state.keys.refresh()
    with httpx.Client(base_url=served.url, timeout=60) as c:
        payload = flagger_payload(agent="support", canary="1.1.0")
        assert c.post("/k8s/flagger/rollout", json=payload).status_code == 401
        payload["metadata"]["token"] = invoke_key  # the wrong role
        assert c.post("/k8s/flagger/rollout", json=payload).status_code == 403
        assert c.get("/k8s/argo/analysis", params={"agent": "support", "canary": "1.1.0"}).status_code == 401
        r = c.post("/k8s/flagger/before-rollout", json=payload)
        assert r.status_code == 404 and "confirm-rollout" in r.json()["error"]["message"]
        r = c.post("/k8s/flagger/rollout", json={**payload, "metadata": "x"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "metadata"


@pytest.mark.postgres
def test_any_replica_answers_for_the_fleet_over_the_shared_store(tmp_path: Path) -> None:
    """Two replicas on one PostgreSQL: stable traffic through one, canary traffic through the other;
    both give the same verdict over both arms."""
    with fresh_database("postgresql", tmp_path) as url:
        replicas = []
        for name in ("a", "b"):
            copy_project(tmp_path / name)
            app = create_app(load_config(tmp_path / name / "shipyard.yaml"), store=Store(url))
            port = free_port()
            replicas.append((f"http://127.0.0.1:{port}", run_in_thread(app, port), app))
        try:
            (a, _, _), (b, _, _) = replicas
            ids = []
            # the 120 requests 8 at a time (the replicas answer concurrently as they do in production),
            # each replica's on kept-alive connections
            with (
                httpx.Client(base_url=a, timeout=60) as ca,
                httpx.Client(base_url=b, timeout=60, headers={"X-Shipyard-Version": "1.1"}) as cb,
                ThreadPoolExecutor(8) as pool,
            ):

                def ask(i: int) -> tuple[httpx.Response, httpx.Response]:
                    question = {"input": f"Where is my order {10001 + i % 3}?", "session_id": f"k{i}"}
                    return (
                        ca.post("/v1/agents/support/invoke", json=question),
                        cb.post("/v1/agents/support/invoke", json=question),
                    )

                for ra, rb in pool.map(ask, range(60)):
                    assert ra.status_code == rb.status_code == 200, (ra.text, rb.text)
                    assert ra.json()["version"].startswith("support@1.0.0+")
                    assert rb.json()["version"].startswith("support@1.1.0+")
                    ids += [ra.json()["interaction_id"], rb.json()["interaction_id"]]
            with Store(url) as store:
                wait_until(
                    lambda: all(store.get_interaction(i) for i in ids), "both replicas' records in the store"
                )
            query = {
                "agent": "support",
                "canary": "1.1.0",
                "stable": "1.0.0",
                "window": "1h",
                "min_samples": "50",
            }
            answers = [HTTP.get(f"{u}/k8s/argo/analysis", params=query, timeout=60).json() for u in (a, b)]
            for body in answers:
                assert body["canary"]["interactions"] == body["stable"]["interactions"] == 60, body
            assert answers[0]["analysis_verdict"] == answers[1]["analysis_verdict"]
            assert answers[0]["score"] == answers[1]["score"]
        finally:
            for _, (server, thread), _ in replicas:
                server.should_exit = True
                thread.join(timeout=60)
