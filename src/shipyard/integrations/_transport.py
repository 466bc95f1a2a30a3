"""In-process httpx transports: a framework's OpenAI client sends its chat-completions requests to
`PROXY_BASE_URL`, and the transport answers them through `ctx.llm` of the current interaction,
without a socket. The current interaction is the one whose agent call the request is made from
(`shipyard.agents.current_interaction()`), so concurrent interactions each get their own.

    client = openai.AsyncOpenAI(
        base_url=PROXY_BASE_URL, api_key="shipyard", http_client=async_http_client(), max_retries=0
    )
"""

from __future__ import annotations

from typing import Any

import httpx

from shipyard.agents import current_interaction
from shipyard.integrations._proxy import Reply, answer, answer_sync

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
