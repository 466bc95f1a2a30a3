"""The model proxy over loopback HTTP, for frameworks that only take a base URL (LiteLLM inside
Google ADK): one small server per process on 127.0.0.1 (uvicorn in a daemon thread, started on
first use, port chosen by the OS), whose URLs are per interaction:

    url = base_url_for(ctx)      # http://127.0.0.1:PORT/i/<token>/v1, valid until the interaction ends

The server runs on its own event loop; each request's model call is handed to the event loop of
the interaction the URL belongs to (`Interaction.run`), so it is traced into that interaction.
Requests and answers are the in-process transport's (`_proxy.answer`)."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shipyard.agents import AgentContext, Interaction, current_interaction
from shipyard.errors import ShipyardError
from shipyard.integrations._proxy import answer, error

START_TIMEOUT_S = 30.0


class LoopbackProxy:
    """The loopback endpoint: an ASGI app served by uvicorn in a daemon thread, and the table of
    live interactions by token (an unguessable token names each; it is forgotten when the
    interaction ends, and its URL then answers HTTP 400)."""

    def __init__(self) -> None:
        import uvicorn

        self.pid = os.getpid()
        self._lock = threading.RLock()  # on_end runs at once for an interaction that already ended
        self._by_token: dict[str, Interaction] = {}
        self._tokens: dict[int, str] = {}  # id(interaction) -> its token
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        self.port: int = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self, lifespan="off", access_log=False, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"shipyard-model-proxy:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ShipyardError(
                    f"Shipyard's loopback model proxy did not start on 127.0.0.1:{self.port}",
                    hint="see the log above for uvicorn's error",
                )
            time.sleep(0.005)

    def url_for(self, interaction: Interaction) -> str:
        """The interaction's base URL, registering it (once) until it ends."""
        with self._lock:
            token = self._tokens.get(id(interaction))
            if token is None:
                token = secrets.token_urlsafe(24)
                self._tokens[id(interaction)] = token
                self._by_token[token] = interaction
                interaction.on_end(lambda: self._forget(interaction, token))
        return f"http://127.0.0.1:{self.port}/i/{token}/v1"

    def _forget(self, interaction: Interaction, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)
            self._tokens.pop(id(interaction), None)

    @property
    def live(self) -> int:
        """How many interactions have a URL now."""
        return len(self._by_token)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        _, i, token, rest = [*request.url.path.split("/", 3), "", "", ""][:4]
        if i != "i" or not token:
            reply = error(
                404,
                "Shipyard's model proxy answers under /i/<token>/v1/ only",
                "invalid_request_error",
                "not_found",
            )
        elif (interaction := self._by_token.get(token)) is None:
            reply = error(
                400,
                "this model proxy URL belongs to a Shipyard interaction that has ended (or never "
                "existed); a URL from base_url_for() is only valid while its agent call runs",
                "invalid_request_error",
                "no_interaction",
            )
        else:
            reply = await answer(request.method, "/" + rest, await request.body(), interaction)
        await Response(reply.body, reply.status, headers=dict(reply.headers))(scope, receive, send)

    def stop(self) -> None:
        """Stop serving (tests; the process's own server lives as long as the process)."""
        self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()


_proxy: LoopbackProxy | None = None
_start_lock = threading.Lock()


def loopback_proxy() -> LoopbackProxy:
    """The process's loopback proxy, started on first use (again in a forked child)."""
    global _proxy
    with _start_lock:
        if _proxy is None or _proxy.pid != os.getpid():
            _proxy = LoopbackProxy()
        return _proxy


def base_url_for(ctx: AgentContext | None = None) -> str:
    """The OpenAI base URL (`http://127.0.0.1:PORT/i/<token>/v1`) whose chat-completions calls go
    through `ctx.llm` of the running interaction, for a framework that only takes a URL; valid
    until the interaction ends. Starts the loopback server on first use (the first call waits,
    briefly, for it to listen).

    A blocking (sync) request to this URL made on the interaction's event-loop thread cannot be
    answered: the answer needs that loop. Make sync calls from a worker thread (`asyncio.to_thread`)
    or use the framework's async client; the in-process transport detects the mistake and answers
    HTTP 500, the loopback endpoint cannot see which thread called it.

    Args:
        ctx: the running interaction's context (default: the current one). Must be called while
            the runtime runs the agent (from the agent, or code it calls)."""
    interaction = current_interaction()
    if interaction is None or interaction.ended or (ctx is not None and interaction.ctx is not ctx):
        raise ShipyardError(
            "base_url_for() was called outside the agent call it is for",
            hint="call it from the agent function (or code it calls) while Shipyard runs it; the URL "
            "is only valid until that interaction ends",
        )
    return loopback_proxy().url_for(interaction)
