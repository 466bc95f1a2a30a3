"""In-process httpx transports: a framework's OpenAI client sends its chat-completions requests to
`PROXY_BASE_URL`, and the transport answers them through `ctx.llm` of the current interaction,
without a socket. The current interaction is the one whose agent call the request is made from
(`shipyard.agents.current_interaction()`), so concurrent interactions each get their own.

    client = openai.AsyncOpenAI(
        base_url=PROXY_BASE_URL, api_key="shipyard", http_client=async_http_client(), max_retries=0
    )
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from shipyard.agents import current_interaction
from shipyard.integrations._proxy import JSON_HEADERS, Reply, answer, answer_sync
from shipyard.llm import ChatResponse, completion_body

PROXY_BASE_URL = "http://shipyard.invalid/v1"
"""The base URL to give a framework's OpenAI client with the proxy transport (`.invalid` never
resolves: without the transport, nothing can be sent anywhere)."""


def _response(reply: Reply, request: httpx.Request) -> httpx.Response:
    # a ByteStream and an explicit length: a sixth of the CPU of `content=` (benchmarks/bench_frameworks.py)
    headers = [*reply.headers, ("content-length", str(len(reply.body)))]
    return httpx.Response(reply.status, headers=headers, stream=httpx.ByteStream(reply.body), request=request)


class ProxyTransport(httpx.AsyncBaseTransport):
    """Answers `POST .../chat/completions` (JSON or `stream: true`) and `GET .../models` through
    `ctx.llm` of the current interaction; outside an interaction, an HTTP 400 error, never a call.
    A model failure is the HTTP status a provider would give, with `x-should-retry: false`."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        reply = await answer(request.method, request.url.path, body, current_interaction())
        return _response(reply, request)


class SyncProxyTransport(httpx.BaseTransport):
    """`ProxyTransport` for a framework that calls synchronously from a worker thread: the model
    call runs on the interaction's event loop and the thread waits for it. On the loop's own
    thread it answers HTTP 500 (a blocking call there would stall every interaction)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        reply = answer_sync(request.method, request.url.path, body, current_interaction())
        return _response(reply, request)


def proxy_transport() -> ProxyTransport:
    """An async httpx transport that answers OpenAI chat-completions requests through `ctx.llm`."""
    return ProxyTransport()


def sync_proxy_transport() -> SyncProxyTransport:
    """A sync httpx transport that answers OpenAI chat-completions requests through `ctx.llm`."""
    return SyncProxyTransport()


def async_http_client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` wired to the proxy transport, for `openai.AsyncOpenAI(http_client=...)`
    (give the OpenAI client `base_url=PROXY_BASE_URL` and `max_retries=0`: Shipyard retries).

    Args:
        kwargs: more `httpx.AsyncClient` arguments (not `transport`)."""
    return httpx.AsyncClient(transport=ProxyTransport(), base_url=PROXY_BASE_URL, **kwargs)


def http_client(**kwargs: Any) -> httpx.Client:
    """An `httpx.Client` wired to the sync proxy transport, for `openai.OpenAI(http_client=...)`
    called from a worker thread.

    Args:
        kwargs: more `httpx.Client` arguments (not `transport`)."""
    return httpx.Client(transport=SyncProxyTransport(), base_url=PROXY_BASE_URL, **kwargs)


def openai_client(transport: httpx.AsyncBaseTransport | None = None) -> Any:
    """A new `openai.AsyncOpenAI` on `transport` (default: the proxy's), with `max_retries=0`
    (`openai` is imported here, on first use: it is not a dependency of Shipyard).

    Args:
        transport: where its requests go, e.g. `canned_transport(...)` for a warm-up run."""
    import openai

    http = httpx.AsyncClient(transport=transport or ProxyTransport(), base_url=PROXY_BASE_URL)
    # the ignore: openai 3 also takes httpx 0.x clients
    return openai.AsyncOpenAI(base_url=PROXY_BASE_URL, api_key="shipyard", http_client=http, max_retries=0)  # type: ignore[arg-type]


_openai_client: Any = None


def proxy_openai_client() -> Any:
    """The process's `openai.AsyncOpenAI` on the proxy transport, made on first use. One serves
    every interaction on every event loop: the transport holds no per-interaction or per-loop
    state (each request is answered through the interaction it is made from)."""
    global _openai_client
    if _openai_client is None:
        _openai_client = openai_client()
    return _openai_client


def canned_transport(reply: Callable[[httpx.Request], ChatResponse]) -> httpx.MockTransport:
    """An httpx transport (sync and async) that answers every request in process with the
    `chat.completion` of `reply(request)`, calling no model: what a framework's warm-up run talks to.

    Args:
        reply: the answer to a request (it may look at the request, e.g. for a tool result)."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = completion_body(reply(request), "warm-up", created=0)
        return httpx.Response(200, headers=JSON_HEADERS, content=body, request=request)

    return httpx.MockTransport(handle)
