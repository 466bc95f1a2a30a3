"""A tiny loopback HTTP server that answers from a script, for exact fault sequences; the model
clients' events, as they are reported."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from llm_helpers import ScriptServer, Step

from shipyard.llm import LLMEvent, add_listener, reset_breakers


@pytest.fixture
async def script_server() -> AsyncIterator[ScriptServer]:
    """Answers each request with the next scripted Step (the last one repeats)."""
    state = ScriptServer(url="", steps=[Step()])

    async def chat(request: web.Request) -> web.Response:
        state.requests.append({"headers": dict(request.headers), "json": await request.json()})
        i = min(len(state.requests) - 1, len(state.steps) - 1)
        step = state.steps[i]
        if step.hang_s:
            await asyncio.sleep(step.hang_s)
        return web.Response(
            status=step.status, body=step.body, headers=step.headers, content_type="application/json"
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/v1"
    yield state
    await runner.cleanup()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(autouse=True)
def _fresh_breakers() -> None:
    reset_breakers()


@pytest.fixture
def events() -> Iterator[list[LLMEvent]]:
    """Every event the model clients report while the test runs (retries, give-ups, fallbacks,
    breaker changes), oldest first."""
    seen: list[LLMEvent] = []
    remove = add_listener(seen.append)
    yield seen
    remove()
