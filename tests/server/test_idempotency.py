"""Idempotency-Key on POST /v1/agents/{agent}/invoke: a retry returns the stored answer and the
agent's tools run once, on SQLite and PostgreSQL, for sequential, concurrent and cross-replica
retries."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import idem_agent
import pytest
from server_helpers import HTTP, Served, free_port, run_in_thread
from waiting import wait_until

from shipyard.demo._tools import STORE as DEMO_STORE
from shipyard.server import _http, create_app, create_key
from shipyard.server._idempotency import _KEEPERS, fingerprint_of, keys_of
from shipyard.store import Store, new_id

REFUND = "Please refund order 10002, it arrived broken"


def with_payer(wait_s: float = 120) -> Callable[[str], str]:
    """shipyard.yaml edit: add the gated `payer` agent and set how long retries wait."""

    def edit(text: str) -> str:
        text = text.replace("agents:\n", "agents:\n" + idem_agent.AGENT_YAML, 1)
        return text + f"\nserver:\n  idempotency: {{wait_s: {wait_s}}}\n"

    return edit


@pytest.fixture
def payer() -> Iterator[None]:
    idem_agent.reset()
    yield
    idem_agent.GATE.set()  # never leave a run waiting


def invoke(url: str, body: dict[str, Any], key: str | None = None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    return HTTP.post(
        f"{url}/v1/agents/{body.pop('agent', 'support')}/invoke", json=body, headers=headers, timeout=120
    )


def in_thread(fn: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """Start `fn` in a thread; the returned function joins it and gives its response."""
    out: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()

    def join() -> httpx.Response:
        thread.join(timeout=120)
        assert out, "the request did not finish"
        return out[0]

    return join


def test_a_retry_gets_the_stored_answer_and_refunds_once(
    serve_project: Callable[..., Served], store: Store
) -> None:
    served = serve_project(store=store)
    session = f"idem-refund-{new_id()}"  # the demo's refund ledger lives as long as the process
    body = {"input": REFUND, "session_id": session}
    first = invoke(served.url, dict(body), "refund-10002-a")
    assert first.status_code == 200 and "refunded" in first.json()["output"].lower(), first.text
    again = invoke(served.url, {"session_id": session, "input": REFUND}, "refund-10002-a")  # keys reordered
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Interaction-Id"] == first.headers["X-Interaction-Id"]
    assert len(DEMO_STORE.refunds(session)) == 1  # the refund tool ran once
    wait_until(lambda: store.count_interactions() >= 1, "the interaction to reach the store")
    (stored,) = store.list_interactions(session_id=session)
    assert [t.name for t in stored.tool_calls].count("process_refund") == 1
    # without the header a retry runs the agent again (what the key is for)
    plain = invoke(served.url, dict(body))
    assert plain.status_code == 200 and plain.json()["interaction_id"] != first.json()["interaction_id"]
    assert len(store.list_interactions(session_id=session)) + served.state.journal.pending >= 2


def test_keys_are_checked_scoped_and_bound_to_one_body(
    serve_project: Callable[..., Served], store: Store
) -> None:
    served = serve_project(store=store)
    url = served.url
    for bad in ["", "x" * 256, "has space", "naïve".encode(), "a\tb", "k;drop"]:
        r = HTTP.post(
            f"{url}/v1/agents/support/invoke",
            json={"input": "hi"},
            headers={"Idempotency-Key": bad},
            timeout=60,
        )
        assert r.status_code == 400 and r.json()["error"]["param"] == "Idempotency-Key", (bad, r.text)
    ok = "0f8fad5b-d9cb-469f-a165-70867728950e"
    first = invoke(url, {"input": "Where is my order 10001?"}, ok)
    assert first.status_code == 200
    other = invoke(url, {"input": "Where is my order 10003?"}, ok)
    assert other.status_code == 422 and other.json()["error"]["type"] == "idempotency_error"
    assert (
        invoke(url, {"input": "Where is my order 10001?"}, ok, **{"X-Shipyard-Version": "1.1.0"}).status_code
        == 422
    )
    # a request refused before it ran gives its key back: the corrected retry runs
    refused = invoke(url, {"input": 5}, "fix-and-retry")
    assert refused.status_code in (400, 422)
    fixed = invoke(url, {"input": "Where is my order 10001?"}, "fix-and-retry")
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers


def test_keys_belong_to_one_caller(serve_project: Callable[..., Served], store: Store, payer: None) -> None:
    served = serve_project(with_payer(), store=store)
    alice, bob = (create_key(store, "invoke")["key"] for _ in range(2))
    served.state.keys.refresh()
    idem_agent.GATE.set()
    body = {"agent": "payer", "input": "F-6"}
    a = invoke(served.url, dict(body), "shared-key", Authorization=f"Bearer {alice}")
    b = invoke(served.url, dict(body), "shared-key", Authorization=f"Bearer {bob}")
    assert a.status_code == b.status_code == 200
    assert a.json()["interaction_id"] != b.json()["interaction_id"]  # two callers, two requests
    again = invoke(served.url, dict(body), "shared-key", Authorization=f"Bearer {alice}")
    assert again.content == a.content and again.headers["Idempotent-Replayed"] == "true"
    assert idem_agent.CHARGES == ["F-6", "F-6"]
    assert invoke(served.url, dict(body), "shared-key").status_code == 401  # the key check comes first


def test_requests_without_the_header_never_touch_the_keys(served: Served) -> None:
    for _ in range(3):
        assert invoke(served.url, {"input": "Where is my order 10001?"}).status_code == 200
    assert served.state not in _KEEPERS  # no claim, no store call on their path


def test_a_keyed_request_parses_and_checks_its_body_once(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[dict[str, Any]] = []
    check_json = _http.check_json
    monkeypatch.setattr(_http, "check_json", lambda data: checked.append(data) or check_json(data))
    body = {"input": "Where is my order 10001?", "metadata": {"channel": "web"}}
    first = invoke(served.url, dict(body), "parse-once")
    assert first.status_code == 200, first.text
    assert checked == [body]  # the key's check and the handler share one parsed body
    again = invoke(served.url, dict(body), "parse-once")
    assert again.headers["Idempotent-Replayed"] == "true" and checked == [body, body]


def test_two_concurrent_retries_run_the_tools_once(
    serve_project: Callable[..., Served], store: Store, payer: None
) -> None:
    served = serve_project(with_payer(), store=store)
    first = in_thread(lambda: invoke(served.url, {"agent": "payer", "input": "A-1"}, "pay-A-1"))
    assert idem_agent.ENTERED.wait(60), "the first request did not start"
    second = in_thread(lambda: invoke(served.url, {"agent": "payer", "input": "A-1"}, "pay-A-1"))
    wait_until(lambda: keys_of(served.state).waiting >= 1, "the retry to wait for the first request")
    idem_agent.GATE.set()
    a, b = first(), second()
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.content == b.content and b.headers["Idempotent-Replayed"] == "true"
    assert idem_agent.CHARGES == ["A-1"]
    assert invoke(served.url, {"agent": "payer", "input": "A-1"}, "pay-A-1").content == a.content
    assert idem_agent.CHARGES == ["A-1"]


def test_a_retry_that_may_not_wait_gets_409_then_the_answer(
    serve_project: Callable[..., Served], store: Store, payer: None
) -> None:
    served = serve_project(with_payer(wait_s=0), store=store)
    first = in_thread(lambda: invoke(served.url, {"agent": "payer", "input": "B-2"}, "pay-B-2"))
    assert idem_agent.ENTERED.wait(60)
    busy = invoke(served.url, {"agent": "payer", "input": "B-2"}, "pay-B-2")
    assert busy.status_code == 409 and busy.json()["error"]["type"] == "idempotency_key_in_use"
    assert busy.headers["Retry-After"] == "1"
    idem_agent.GATE.set()
    answer = first()
    assert invoke(served.url, {"agent": "payer", "input": "B-2"}, "pay-B-2").content == answer.content
    assert idem_agent.CHARGES == ["B-2"]


def test_replicas_sharing_the_store_run_the_tools_once(
    demo_project: Callable[..., Any], db_url: str, payer: None
) -> None:
    cfg = demo_project(with_payer())
    stores = [Store(db_url), Store(db_url)]
    running = []
    urls = []
    try:
        for s in stores:  # two replicas: their own app, journal and connection pool; one database
            app = create_app(cfg, store=s, log_stream=io.StringIO())
            port = free_port()
            running.append(run_in_thread(app, port))
            urls.append(f"http://127.0.0.1:{port}")
        first = in_thread(lambda: invoke(urls[0], {"agent": "payer", "input": "C-3"}, "pay-C-3"))
        assert idem_agent.ENTERED.wait(60)
        second = in_thread(lambda: invoke(urls[1], {"agent": "payer", "input": "C-3"}, "pay-C-3"))
        app2_state = running[1][0].config.app.state.shipyard
        wait_until(lambda: app2_state in _KEEPERS and keys_of(app2_state).waiting >= 1, "replica 2 to wait")
        idem_agent.GATE.set()
        a, b = first(), second()
        assert a.status_code == 200 and a.content == b.content and b.headers["Idempotent-Replayed"] == "true"
        assert idem_agent.CHARGES == ["C-3"]
    finally:
        idem_agent.GATE.set()
        for server, thread in running:
            server.should_exit = True
            thread.join(timeout=60)
        for s in stores:
            s.close()


def test_a_key_whose_first_request_died_is_never_run_again(
    serve_project: Callable[..., Served], store: Store, payer: None
) -> None:
    served = serve_project(with_payer(), store=store)
    body = {"input": "D-4"}
    # a replica claimed the key, then died: its lease ran out
    store.claim_idempotency_key(
        "anonymous/payer", "pay-D-4", fingerprint_of(body), "dead", lease_s=-1, ttl_s=3600
    )
    gone = invoke(served.url, {"agent": "payer", **body}, "pay-D-4")
    assert gone.status_code == 409 and gone.json()["error"]["type"] == "idempotency_key_abandoned", gone.text
    assert idem_agent.CHARGES == []


def test_an_unreachable_store_is_503_and_nothing_runs(
    serve_project: Callable[..., Served], store: Store, payer: None
) -> None:
    served = serve_project(with_payer(), store=store)
    invoke(served.url, {"input": "Where is my order 10001?"}, "warm-up")  # makes the keeper
    keeper = keys_of(served.state)
    down = Store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", migrate=False)
    keeper.store = down
    try:
        r = invoke(served.url, {"agent": "payer", "input": "E-5"}, "pay-E-5")
    finally:
        keeper.store = store
        down.close()
    assert (
        r.status_code == 503
        and r.headers["Retry-After"] == "1"
        and r.json()["error"]["param"] == "Idempotency-Key"
    )
    assert idem_agent.CHARGES == []
