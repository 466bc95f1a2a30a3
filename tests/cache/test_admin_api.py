"""/admin/cache on a running server: what is cached, and invalidation by version, kind and tool."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from shipyard.server import create_app


@pytest.fixture
def serve() -> Iterator[Any]:
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(cfg: Any) -> httpx.Client:
        app = create_app(cfg, log_stream=io.StringIO())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        give_up = time.monotonic() + 120  # waits for an event; the limit only stops a hang
        while not server.started:
            assert thread.is_alive() and time.monotonic() < give_up, "the server did not start"
            time.sleep(0.02)
        running.append((server, thread))
        return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=60)


def test_invalidate_by_version_kind_and_tool(desk: Any, serve: Any) -> None:
    make, module = desk
    c = serve(make("exact: {ttl_s: 60}\nsemantic: {ttl_s: 60}\ntools:\n  lookup: {ttl_s: 60}\n"))
    status = c.get("/admin/cache").json()
    assert status["backend"] == "memory" and status["exact"] == {"ttl_s": 60.0}
    assert status["semantic"]["embedding"].startswith("builtin:") and status["tools"] == {
        "lookup": {"ttl_s": 60.0}
    }

    def ask(text: str) -> dict[str, Any]:
        r = c.post("/v1/agents/desk/invoke", json={"input": text})
        assert r.status_code == 200, r.text
        return dict(r.json())

    ask("hello")
    assert module().CALLS["agent"] == 1
    ask("hello")
    assert module().CALLS["agent"] == 1  # an exact hit
    r = c.post("/admin/cache/invalidate", json={"agent": "desk", "version": "1.0.0", "kind": "exact"})
    assert r.status_code == 200 and r.json()["deleted"] == 1
    assert r.json()["version"].startswith("desk@1.0.0+")  # the label named its version id
    assert ask("hello") and module().CALLS["agent"] == 1  # the semantic cache still has it
    r = c.post("/admin/cache/invalidate", json={"agent": "desk", "version": "1.0.0"})
    assert r.json()["deleted"] == 1  # the semantic entry (the exact one is gone already)
    ask("hello")
    assert module().CALLS["agent"] == 2
    ask("status of order 8")
    r = c.post("/admin/cache/invalidate", json={"tool": "lookup"})
    assert r.json()["deleted"] == 1
    r = c.post("/admin/cache/invalidate", json={})
    assert r.status_code == 200 and r.json()["deleted"] >= 2  # everything else
    ask("hello")
    assert module().CALLS["agent"] == 4  # "status of order 8" ran it once too
    bad = c.post("/admin/cache/invalidate", json={"kind": "everything"})
    assert bad.status_code == 422 and "unknown cache kind" in bad.json()["error"]["message"]
    assert c.post("/admin/cache/invalidate", json={"agent": "nobody"}).status_code == 404


def test_no_cache_configured_is_a_404_that_says_what_to_do(desk: Any, serve: Any) -> None:
    make, _ = desk
    c = serve(make())
    r = c.get("/admin/cache")
    assert r.status_code == 404 and "cache:" in r.json()["error"]["message"]
