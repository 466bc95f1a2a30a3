"""Server hygiene under load and abuse, on a real uvicorn server with real sockets: heavy KPI queries
never hold up health checks, connections that send too slowly are closed, a client that goes away
is not an internal error, a real internal error is one structured log line, 405 names what is
allowed, and clients cannot mint Prometheus label values."""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import httpx
import orjson
import pytest
import yaml
from server_helpers import Served
from waiting import wait_until

from shipyard.observe import Metrics
from shipyard.store import InteractionRecord, ToolCallRecord, new_id

WAIT_S = 60.0  # how long a test waits for an event it expects (never asserted as a duration)


def settings(**sections: dict[str, Any]) -> Callable[[str], str]:
    """An `edit` for `serve_project` that merges these sections into the demo's shipyard.yaml."""

    def edit(text: str) -> str:
        data = yaml.safe_load(text)
        for name, values in sections.items():
            data[name] = {**(data.get(name) or {}), **values}
        return yaml.safe_dump(data, sort_keys=False)

    return edit


NO_ALERTS = {"rules": []}  # nothing but the request under test reads the KPI window


def connect(served: Served) -> socket.socket:
    host, port = served.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return sock


def head(served: Served, method: str, path: str, **headers: str) -> bytes:
    """A request line and headers (no final blank line), as a client would start to send them."""
    host = served.url.removeprefix("http://")
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
    ]
    return "\r\n".join(lines).encode() + b"\r\n"


def partial_invoke(served: Served, promised: int, body: bytes) -> bytes:
    """A POST to the support agent's invoke route that promises `promised` body bytes and carries
    only `body` of them."""
    return (
        head(
            served,
            "POST",
            "/v1/agents/support/invoke",
            content_type="application/json",
            content_length=str(promised),
        )
        + b"\r\n"
        + body
    )


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _events(served: Served) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in served.logs.getvalue().splitlines() if line.startswith("{")]


def wait_for_log(served: Served, *events: str) -> list[dict[str, Any]]:
    """The event lines logged so far, once one of `events` is among them."""
    wait_until(lambda: any(e["event"] in events for e in _events(served)), f"one of {events} logged")
    return _events(served)


class Records(logging.Handler):
    """What uvicorn logs while a test runs (it prints tracebacks bare on stderr through this logger)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def uvicorn_log() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# the KPI query and the event loop ----------------------------------------------------------------
class GatedLock:
    """The KPI window's lock, but whoever takes it first waits at a gate, after saying so.

    Whatever thread computes the KPIs takes the window's lock; holding it there makes "the KPI request
    is in flight" a state the test controls instead of a race with the clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waiting = threading.Event()
        self._open = threading.Event()

    def open(self) -> None:
        self._open.set()

    def __enter__(self) -> GatedLock:
        if not self._open.is_set():
            self.waiting.set()
            self._open.wait(2 * WAIT_S)
        self._lock.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()


def production_record(rng: random.Random, at: float) -> InteractionRecord:
    return InteractionRecord(
        id=new_id(),
        trace_id=new_id(),
        session_id=f"s{rng.randrange(2000)}",
        user_id=None,
        agent="support",
        version=rng.choice(("support@1.0.0+aaaaaaa", "support@1.2.0+ccccccc")),
        traffic_source="production",
        input="Where is my order 10001?",
        output="It shipped.",
        status=rng.choice(("completed",) * 8 + ("escalated", "failed")),
        latency_ms=rng.uniform(100, 3000),
        cost_usd=0.001,
        tool_calls=[ToolCallRecord("lookup_order", {"order_id": "10001"}, "success", 3.0)],
        created_at=at,
    )


def test_healthz_answers_while_a_heavy_kpi_query_is_in_flight(serve_project: Callable[..., Served]) -> None:
    served = serve_project(settings(alerts=NO_ALERTS))
    rng = random.Random(7)
    now = time.time()
    window = served.state.window
    for i in range(20_000):
        window.add(production_record(rng, now - 890 + i * 880 / 20_000))
    gate = GatedLock()
    window._agg._lock = gate  # type: ignore[assignment]  # the KPI computation now stops at the gate
    answer: dict[str, Any] = {}
    kpis_done = threading.Event()

    def ask_kpis() -> None:
        with served.client() as c:
            answer["response"] = c.get(
                "/admin/kpis", params={"points": 200, "window": "15m"}, timeout=2 * WAIT_S
            )
        kpis_done.set()

    asker = threading.Thread(target=ask_kpis)
    asker.start()
    try:
        assert gate.waiting.wait(WAIT_S), "the KPI request never reached the window"
        with served.client() as c:  # the KPI request is computing (held at the gate) right now
            health = c.get("/healthz", timeout=WAIT_S)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert not kpis_done.is_set()  # health answered while the KPI query was still in flight
    finally:
        gate.open()
        asker.join(2 * WAIT_S)
    r = answer["response"]
    assert r.status_code == 200
    body = r.json()
    assert body["current"]["interactions"] == 20_000
    assert len(body["series"]) == 200 and sum(p["interactions"] for p in body["series"]) == 20_000
    assert sorted(v["version"] for v in body["versions"]) == [
        "support@1.0.0+aaaaaaa",
        "support@1.2.0+ccccccc",
    ]
    assert sum(v["current"]["interactions"] for v in body["versions"]) == 20_000
    assert body["last_24h"]["interactions"] == 20_000


# connections that never finish -------------------------------------------------------------------
def test_a_connection_that_stops_mid_header_is_closed(serve_project: Callable[..., Served]) -> None:
    # long enough that the kept-alive connection's first request is always in time on a busy machine
    served = serve_project(settings(server={"header_timeout_s": 3}))
    with connect(served) as silent, connect(served) as partial, connect(served) as kept:
        partial.sendall(head(served, "GET", "/healthz")[:-10])  # half a header line, then nothing
        # a kept-alive connection: a whole request first, then half of the next one
        kept.sendall(head(served, "GET", "/healthz") + b"\r\n")
        first = http.client.HTTPResponse(kept)
        first.begin()
        assert first.status == 200 and orjson.loads(first.read()) == {"status": "ok"}
        kept.sendall(b"GET /heal")
        # each is closed by the server: recv returns b"" (EOF); a socket timeout would fail the test
        assert read_until_closed(silent) == b""
        assert read_until_closed(partial) == b""
        assert read_until_closed(kept) == b""
    with served.client() as c:  # the server itself is fine
        assert c.get("/healthz").status_code == 200


def test_a_body_that_stops_arriving_is_answered_408_and_closed(serve_project: Callable[..., Served]) -> None:
    served = serve_project(settings(server={"body_timeout_s": 0.2}))
    with connect(served) as sock:
        sock.sendall(partial_invoke(served, 100, b'{"input": '))  # 10 of the 100 bytes promised
        answer = read_until_closed(sock)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    error = orjson.loads(rest.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == 408 and "server.body_timeout_s" in error["message"]
    lines = wait_for_log(served, "client_disconnected", "internal_error")
    assert [e["path"] for e in lines if e["event"] == "client_disconnected"] == ["/v1/agents/support/invoke"]
    assert not [e for e in lines if e["event"] == "internal_error"]


def test_requests_beyond_the_connection_limit_get_503(serve_project: Callable[..., Served]) -> None:
    served = serve_project(settings(server={"max_connections": 2, "keep_alive_s": 300}))
    first, second, third = (httpx.Client(base_url=served.url, timeout=WAIT_S) for _ in range(3))
    try:
        assert first.get("/healthz").status_code == 200  # each client keeps its connection open
        assert second.get("/healthz").status_code == 200
        assert third.get("/healthz").status_code == 503  # a third open connection is one too many
    finally:
        for c in (first, second, third):
            c.close()

    def served_again() -> bool:  # once the server has seen them close, a new connection is served
        with httpx.Client(base_url=served.url, timeout=WAIT_S) as again:
            status = again.get("/healthz").status_code
        assert status in (200, 503)
        return status == 200

    wait_until(served_again, "a new connection served once the others closed")


# errors ------------------------------------------------------------------------------------------
def test_a_client_that_disconnects_mid_request_is_not_an_internal_error(
    served: Served, uvicorn_log: Records
) -> None:
    with connect(served) as sock:
        sock.sendall(partial_invoke(served, 1000, b'{"input": "Where is my order'))
        sock.shutdown(socket.SHUT_RDWR)
    lines = wait_for_log(served, "client_disconnected", "internal_error")
    assert not [e for e in lines if e["event"] == "internal_error"]
    gone = [e for e in lines if e["event"] == "client_disconnected"]
    assert gone[0]["method"] == "POST" and gone[0]["level"] == "info"
    assert not [r for r in uvicorn_log.records if r.levelno >= logging.WARNING]


def test_an_internal_error_is_one_structured_log_line(served: Served, uvicorn_log: Records) -> None:
    store = served.state.store
    with store.engine.begin() as conn:  # the store breaks under the server: a real unexpected error
        conn.exec_driver_sql("ALTER TABLE interactions RENAME TO interactions_away")
    try:
        with served.client() as c:
            r = c.get("/admin/interactions")
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE interactions_away RENAME TO interactions")
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "internal_error" and "Traceback" not in r.text
    lines = wait_for_log(served, "internal_error")
    (line,) = [e for e in lines if e["event"] == "internal_error"]
    assert line["level"] == "error" and line["path"] == "/admin/interactions"
    assert "OperationalError" in line["error"] and "interactions" in line["error"]
    assert line["traceback"].startswith("Traceback (most recent call last)")
    assert "OperationalError" in line["traceback"]
    # nothing else printed it: uvicorn logged no traceback of its own
    assert not [r for r in uvicorn_log.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/healthz", "GET, HEAD"),
        ("PUT", "/admin/keys", "GET, HEAD, POST"),  # two routes share the path
        ("GET", "/v1/chat/completions", "POST"),
    ],
)
def test_405_names_the_allowed_methods(served: Served, method: str, path: str, allowed: str) -> None:
    with served.client() as c:
        r = c.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    assert r.json()["error"]["message"].endswith(f"allowed: {allowed}")


# what grows with traffic --------------------------------------------------------------------------
def test_tool_names_a_model_made_up_do_not_become_metric_labels() -> None:
    metrics = Metrics()
    for i in range(500):  # a model talked into calling 500 tools that do not exist
        made_up = ToolCallRecord(f"tool_{i}", {}, "not_found", 0.1, error=f"no tool named 'tool_{i}'")
        real = ToolCallRecord("lookup_order", {"order_id": "10001"}, "success", 3.0)
        record = production_record(random.Random(i), time.time())
        record.tool_calls = [made_up, real]
        metrics.observe_interaction(record)
    text = metrics.render().decode()
    series = [line for line in text.splitlines() if line.startswith("shipyard_tool_calls_total{")]
    tools = sorted({line.split('tool="')[1].split('"')[0] for line in series})
    assert tools == ["(unknown)", "lookup_order"]
    unknown = [line for line in series if 'tool="(unknown)"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in unknown) == 500
