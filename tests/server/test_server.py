"""The gateway, feedback, health, metrics and admin routes against the demo agent on a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from server_helpers import Served
from waiting import wait_until

from shipyard.runtime import Runtime

FAILING_MODELS = """\
models:
  dead: {provider: openai, base_url: "http://127.0.0.1:9/v1", max_retries: 0, connect_timeout_s: 0.5}
  sleepy: {provider: scripted, rules: rules/support.yaml, latency_ms: 3000}
"""
FAILING_AGENTS = """\
agents:
  broken:
    entry: shipyard.demo.agent:support
    prompts: prompts/support/v1.0
    prompt_variables: {company_name: Brightside Goods}
    model: {name: dead}
  slow:
    entry: shipyard.demo.agent:support
    prompts: prompts/support/v1.0
    prompt_variables: {company_name: Brightside Goods}
    timeout_s: 0.3
    model: {name: sleepy}
"""


def test_invoke_answers_and_journals_before_responding(served: Served) -> None:
    with served.client() as c:
        r = c.post(
            "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "session_id": "s1"}
        )
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "completed" and "10001" in body["output"]
    assert body["session_id"] == "s1" and body["version"].startswith("support@1.0.0+")
    assert r.headers["x-trace-id"] == body["trace_id"]
    # the record is in the journal file already, whatever the background mover did since
    journal = served.state.journal
    assert journal.stored + journal.pending >= 1
    wait_until(lambda: served.state.store.get_interaction(body["interaction_id"]), "the record in the store")
    stored = served.state.store.get_interaction(body["interaction_id"], spans=True)
    assert stored.trace_id == body["trace_id"] and stored.spans


def test_chat_completions_plain_and_streaming(served: Served) -> None:
    req = {
        "model": "support",
        "messages": [
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "How long do refunds take?"},
        ],
    }
    with served.client() as c:
        plain = c.post("/v1/chat/completions", json=req)
        assert plain.status_code == 200
        data = plain.json()
        text = data["choices"][0]["message"]["content"]
        assert data["object"] == "chat.completion" and "refund" in text.lower()
        assert data["usage"]["total_tokens"] > 0
        with c.stream("POST", "/v1/chat/completions", json={**req, "stream": True}) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
            events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    streamed = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
    assert streamed == text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/agents/support/invoke", b'{"input": ', 400, "body"),
        ("/v1/agents/support/invoke", b"[1, 2]", 422, "body"),
        ("/v1/agents/support/invoke", b"", 400, "body"),
        ("/v1/agents/support/invoke", b'{"input": 5}', 422, "input"),
        ("/v1/agents/support/invoke", b'{"text": "hi"}', 422, "input"),
        ("/v1/agents/support/invoke", b'{"input": "hi", "metadata": "x"}', 422, "metadata"),
        ("/v1/agents/support/invoke", b'{"input": "hi", "version": "9.9.9"}', 404, "version"),
        ("/v1/agents/nobody/invoke", b'{"input": "hi"}', 404, "agent"),
        (
            "/v1/chat/completions",
            b'{"model": "nobody", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model",
        ),
        ("/v1/chat/completions", b'{"model": "support", "messages": "hi"}', 422, "messages"),
        (
            "/v1/chat/completions",
            b'{"model": "support", "messages": [{"role": "assistant", "content": "x"}]}',
            422,
            "messages",
        ),
        (
            "/v1/chat/completions",
            b'{"model": "support", "messages": [{"role": "user", "content": 3}]}',
            422,
            "messages[0].content",
        ),
        ("/v1/feedback", b'{"thumbs": 1}', 422, "interaction_id"),
        ("/v1/feedback", b'{"interaction_id": "x", "thumbs": 7}', 422, "thumbs"),
        ("/v1/feedback", b'{"interaction_id": "x", "score": "good"}', 422, "score"),
        ("/v1/feedback", b'{"interaction_id": "nope", "thumbs": 1}', 404, "interaction_id"),
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(
    served: Served, path: str, body: bytes, status: int, param: str
) -> None:
    with served.client() as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["code"] == status and err["message"]


def test_body_over_the_limit_is_413(serve_project: Callable[..., Served]) -> None:
    s = serve_project(lambda text: text + "\nserver: {max_body_bytes: 2000}\n")
    with s.client() as c:
        r = c.post("/v1/agents/support/invoke", json={"input": "x" * 5000})
        assert r.status_code == 413 and r.json()["error"]["param"] == "body"

        def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while the body streams in
            for _ in range(10):
                yield b"x" * 500

        json_type = {"content-type": "application/json"}  # a body of any other type is a 415 first
        r = c.post("/v1/agents/support/invoke", content=chunks(), headers=json_type)
        assert r.status_code == 413


def _with_failing_agents(text: str) -> str:
    return text.replace("models:\n", FAILING_MODELS, 1).replace("agents:\n", FAILING_AGENTS, 1)


def test_failing_and_slow_models_give_502_and_504_and_keep_the_record(
    serve_project: Callable[..., Served],
) -> None:
    s = serve_project(_with_failing_agents)
    with s.client() as c:
        bad = c.post("/v1/agents/broken/invoke", json={"input": "Where is my order 10001?"})
        slow = c.post("/v1/agents/slow/invoke", json={"input": "Where is my order 10001?"})
        chat = c.post(
            "/v1/chat/completions", json={"model": "broken", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert bad.status_code == 502, bad.text
    assert slow.status_code == 504, slow.text
    assert chat.status_code == 502 and chat.json()["error"]["interaction_id"]
    ids = []
    for r in (bad, slow):
        err = r.json()["error"]
        assert err["status"] == "failed" and err["message"]
        ids.append(err["interaction_id"])
    wait_until(lambda: all(s.state.store.get_interaction(i) for i in ids), "the failed records in the store")
    assert all(s.state.store.get_interaction(i).status == "failed" for i in ids)


def test_feedback_reaches_store_metrics_and_log(served: Served) -> None:
    with served.client() as c:
        r = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"}).json()
        fb = c.post(
            "/v1/feedback", json={"trace_id": r["trace_id"], "thumbs": "down", "score": 2, "comment": "slow"}
        )
        assert fb.status_code == 200, fb.text
        assert fb.json()["feedback"]["thumbs"] == -1
        metrics = c.get("/metrics").text
    assert 'shipyard_feedback_total{agent="support",thumbs="down"' in metrics
    assert "shipyard_feedback_score_count" in metrics
    events = [orjson.loads(line) for line in served.logs.getvalue().splitlines()]
    fb_events = [e for e in events if e["event"] == "feedback"]
    assert fb_events and fb_events[0]["comment"] == "[redacted: 4 chars]"


def test_health_ready_metrics_and_admin(served: Served) -> None:
    with served.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["agents"] == {"support": "ok"}
        out = c.post(
            "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "session_id": "sx"}
        )
        rid = out.json()["interaction_id"]
        metrics = c.get("/metrics").text
        assert 'shipyard_interactions_total{agent="support",status="completed"' in metrics
        assert 'gen_ai_client_token_usage_bucket{agent="support",gen_ai_operation_name="chat"' in metrics
        assert "gen_ai_client_operation_duration_seconds_count" in metrics
        assert 'shipyard_tool_calls_total{agent="support",status="success",tool="lookup_order"' in metrics
        wait_until(
            lambda: c.get("/admin/traces", params={"session_id": "sx"}).json()["traces"], "the trace listed"
        )
        trace = c.get(f"/admin/traces/{out.json()['trace_id']}").json()
        assert trace["spans"] and any("lookup_order" in line for line in trace["tree"])
        one = c.get(f"/admin/interactions/{rid}").json()
        assert one["interaction"]["id"] == rid
        assert c.get("/admin/interactions", params={"limit": 0}).status_code == 422
        assert c.get("/admin/interactions", params={"since": "soon"}).json()["error"]["param"] == "since"
        alerts = c.get("/admin/alerts").json()
        assert alerts["status"] in ("HEALTHY", "DEGRADED", "DOWN")
        assert {r["name"] for r in alerts["rules"]} >= {"task_completion", "latency_p95", "safety_incidents"}
        kpis = c.get("/admin/kpis", params={"window": "1h"}).json()
        assert kpis["current"]["interactions"] >= 1 and kpis["versions"][0]["agent"] == "support"
        versions = c.get("/admin/versions").json()["agents"]["support"]["versions"]
        assert versions[0]["current"] and len(versions) == 4  # 1.0, 1.1, the fixed 1.2 and 1.3
        assert c.get("/admin/traces/nope").status_code == 404


def test_api_keys_roles(served: Served) -> None:
    from shipyard.server import create_key

    admin = create_key(served.state.store, "admin")["key"]
    invoker = create_key(served.state.store, "invoke")["key"]
    reader = create_key(served.state.store, "read")["key"]
    served.state.keys.refresh()
    with served.client() as anon:
        assert anon.post("/v1/agents/support/invoke", json={"input": "hi"}).status_code == 401
        assert anon.get("/healthz").status_code == 200
    with served.client("shp_00000000_wrong") as bad:
        r = bad.get("/admin/alerts")
        assert r.status_code == 401 and r.json()["error"]["param"] == "authorization"
    with served.client(invoker) as c:
        assert (
            c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"}).status_code == 200
        )
        assert c.get("/admin/alerts").status_code == 403
        assert c.get("/metrics").status_code == 403
    with served.client(reader) as c:
        assert c.get("/admin/alerts").status_code == 200
        assert c.get("/metrics").status_code == 200
        assert c.get("/admin/keys").status_code == 403
        assert c.post("/v1/agents/support/invoke", json={"input": "hi"}).status_code == 403
    with served.client(admin) as c:
        keys = c.get("/admin/keys").json()["keys"]
        assert len(keys) == 3 and all("hash" not in k for k in keys)
        made = c.post("/admin/keys", json={"role": "invoke", "name": "web"})
        assert made.status_code == 201 and made.json()["key"].startswith("shp_")
        assert c.post("/admin/keys", json={"role": "root"}).json()["error"]["param"] == "role"
        assert c.delete(f"/admin/keys/{made.json()['prefix']}").json()["revoked_at"]
    with served.client(made.json()["key"]) as c:
        assert c.post("/v1/agents/support/invoke", json={"input": "hi"}).status_code == 401


def test_the_server_runs_the_pipeline_the_config_builds(served: Served) -> None:
    pipeline = served.state.rt.pipeline
    assert pipeline.frozen and pipeline.names == Runtime(served.cfg).pipeline.names  # it adds no step
    # the demo project configures input and output guardrails (its tool checks run inside ctx.tools)
    # and the exact cache: no do-nothing slots
    assert pipeline.names == [
        "assign_version",
        "start_trace",
        "input_guardrails",
        "budget_check",
        "cache_lookup",
        "run_agent",
        "output_guardrails",
        "cache_store",
        "record",
    ]
