"""Helpers of the server tests: free ports, a uvicorn server in a thread, the served app."""

from __future__ import annotations

import io
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from shipyard.config import ShipyardConfig
from shipyard.server import ServerState, uvicorn_config

HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
"""For one-off requests instead of `httpx.get(...)`: a new connection per request as those make, without
the SSL context each `httpx.get` builds (some 30 ms of CPU per call, a lot in a polling loop)."""


_SSL = httpx.create_ssl_context()
"""One SSL context for every `Served.client()`: building one is most of what a new client costs (the
served URLs are plain http, so it is never used to verify anything)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    state: ServerState
    logs: io.StringIO
    cfg: ShipyardConfig

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, verify=_SSL)


def run_in_thread(app: Any, port: int, host: str = "127.0.0.1") -> tuple[uvicorn.Server, threading.Thread]:
    # the settings `shipyard serve` uses (timeouts, connection limit), from the app's `server:` section
    server = uvicorn.Server(uvicorn_config(app, app.state.shipyard.cfg.server, host=host, port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # an event to wait for, not a timing: CI may be slow
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread
