"""How the server treats connections: the uvicorn settings every server uses, and the HTTP protocol
that gives each request a deadline for its head and one for its body.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and answers 503 beyond
`limit_concurrency`, but it waits for ever on a connection that sends nothing, half a request line
or headers, or a body slower than a trickle; each holds a socket and memory. `GuardedHttpProtocol`
closes such a connection: a request's line and headers must arrive within `server.header_timeout_s`
of the connection opening (or of the first byte of the next request on a kept-alive connection), and
its body within `server.body_timeout_s` after the headers. A late body is answered 408 when no answer
has started yet. What `limit_concurrency` (`server.max_connections`) counts: every open connection,
idle or half-sent ones included, and every request in progress; it is checked when a request's
headers are complete (the answer is uvicorn's plain-text 503 with `connection: close`), so
connections that never get that far are the header deadline's to close.

`uvicorn_config` builds the `uvicorn.Config` of an app from `server:`; `shipyard serve` and the
tests' servers both use it, so tests run with the settings production runs with.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shipyard.config import ServerConfig
from shipyard.server._http import error_response


def _request_timeout(body_timeout_s: float) -> bytes:
    """The whole 408 answer, written to the socket as it is (no ASGI cycle is left to send it)."""
    body = bytes(
        error_response(
            408,
            f"the request body did not arrive within {body_timeout_s:g} s (server.body_timeout_s); "
            "send it at once",
            type="request_timeout",
            param="body",
        ).body
    )
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's head and one for its body.

    Args:
        header_timeout_s: from the connection opening (or the first byte of a later request on it)
            until the end of the request's headers; then the connection is closed.
        body_timeout_s: from the end of the headers until the end of the body; then 408 (when no
            answer has started) and the connection is closed.
        *args, **kwargs: what uvicorn gives every protocol (config, server_state, app_state, _loop).
    """

    def __init__(self, *args: Any, header_timeout_s: float, body_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, late: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self.header_timeout_s, self._head_late)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _head_late(self) -> None:
        self._deadline = None
        self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            # the app (if it reads the body) sees the client gone; whatever it answers is dropped
            self.transport.write(_request_timeout(self.body_timeout_s))
        self.transport.close()


def uvicorn_options(server: ServerConfig, *, host: str, port: int) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.Config` / `uvicorn.run` for a server with these settings."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": functools.partial(  # a partial, not a subclass per setting: it pickles for --workers
            GuardedHttpProtocol,
            header_timeout_s=server.header_timeout_s,
            body_timeout_s=server.body_timeout_s,
        ),
        "ws": "none",
        "timeout_keep_alive": server.keep_alive_s,
        # uvicorn answers 503 once open connections (this one included) or running requests reach
        # the limit; one more than max_connections serves exactly max_connections
        "limit_concurrency": server.max_connections + 1,
        "access_log": False,
        "log_level": "warning",
        "lifespan": "on",
        "timeout_graceful_shutdown": server.drain.timeout_s,  # requests in flight at SIGTERM
    }


def uvicorn_config(app: Any, server: ServerConfig, *, host: str, port: int) -> uvicorn.Config:
    """The `uvicorn.Config` serving `app` with the settings of `server:`."""
    return uvicorn.Config(app, **uvicorn_options(server, host=host, port=port))
