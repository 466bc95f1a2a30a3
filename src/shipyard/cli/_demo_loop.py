"""The loop part of `shipyard demo`: what production shows becomes an eval, and a fix is tried on real
traffic before it takes any.

A customer asks version 1.2 in production "If I send order 10002 back, will I get a refund?" and 1.2
refunds the order at once (its prompt says to refund eligible orders without asking again). The
customer complains through `POST /v1/incidents`; the incident is promoted to a regression case that
replays the tool results recorded at the time (`shipyard incidents promote`); 1.2 fails it; 1.3 (a
prompt that answers a question about a refund instead of acting on it) passes it and the production
gate (the regression suite is part of it); and `shipyard shadow` replays 1.2's production traffic
against 1.3, where the fixed case is the one difference above the noise.

The server runs in this process (the app `shipyard serve` runs) on a free loopback port; the
commands run as a user types them. The demo uses nothing a user's project cannot."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

COMPLAINT_INPUT = "If I send order 10002 back, will I get a refund?"
COMPLAINT = (
    "I only asked IF I would get a refund, and you refunded my card straight away. I wanted to keep it!"
)
CHANNEL = "loop-demo"
TRAFFIC = [  # production traffic on 1.2 that day (the complaint's interaction among it)
    "Where is my order 10001?",
    "I want to return order 10004",
    "Please refund order 10003",
    COMPLAINT_INPUT,
    "How long do refunds take?",
    "Can I still cancel order 10005?",
    "Has order 10006 shipped yet?",
    "What is your return policy?",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """The project's server (`create_app`, as `shipyard serve` runs it) in a thread, on loopback."""

    def __init__(self, cfg: Any, log: Path) -> None:
        import uvicorn

        from shipyard.server import create_app
        from shipyard.server._connections import uvicorn_config

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")  # its JSON event lines, as `shipyard serve` writes them
        app = create_app(cfg, log_stream=self.log)
        self.server = uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=self.port))
        self.server.config.log_level = "warning"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 60  # a stuck start-up, not a timing
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.log.close()  # the next command sets the CLI's own event log up again


def run_loop_demo(config: Path, console: Console, shipyard: Any) -> dict[str, int]:
    """Run the loop phase; returns the exit code of each step (0 ok, 1 a check failed as expected).

    Args:
        config: the demo project's shipyard.yaml.
        console: where to print.
        shipyard: runs a shipyard command as typed (`cli.demo._shipyard`), returning its exit code."""
    import httpx

    from shipyard.config import load_config

    cfg = load_config(config)
    suite = "evals/support/regression.yaml"
    codes: dict[str, int] = {}
    console.print(Rule("Production on 1.2: a customer's question, answered with a refund", style="dim"))
    with (
        _Server(cfg, config.parent / "server-loop.log") as srv,
        httpx.Client(base_url=srv.url, timeout=60) as http,
    ):
        complaint_id = ""
        # sessions of this run only: the demo's orders keep each session's refunds for the process's
        # life, so a second run in one process (a test suite) must not meet the first run's refunds
        run = secrets.token_hex(3)
        for i, text in enumerate(TRAFFIC):
            r = http.post(
                "/v1/agents/support/invoke",
                json={
                    "input": text,
                    "session_id": f"loop-{run}-{i}",
                    "user_id": f"shopper-{i}",
                    "version": "1.2.0",
                    "metadata": {"channel": CHANNEL},
                },
            )
            r.raise_for_status()
            body = r.json()
            if text == COMPLAINT_INPUT:
                complaint_id = body["interaction_id"]
                console.print(f'  [bold]customer:[/] "{text}"', highlight=False)
                console.print(f"  [bold]1.2:[/] {body['output']}", highlight=False, soft_wrap=True)
        console.print(
            f"  [dim]{len(TRAFFIC)} interactions served by 1.2 on {srv.url} (its log: server-loop.log)[/]"
        )
        console.print(
            f'[bold cyan]$ curl -X POST {srv.url}/v1/incidents[/] -d \'{{"interaction_id": ..., "comment": ...}}\''
        )
        r = http.post(
            "/v1/incidents",
            json={"interaction_id": complaint_id, "comment": COMPLAINT, "by": "shopper-3"},
        )
        r.raise_for_status()
        incident = r.json()
        console.print(
            f"  incident {incident['incident_id']} ({incident['state']}), from interaction "
            f"{incident['interaction_id'][:12]}, trace {incident['trace_id']}",
            highlight=False,
        )
    (config.parent / suite).unlink(missing_ok=True)  # a second demo run writes the case afresh
    codes["promote"] = shipyard(
        "incidents",
        "promote",
        incident["incident_id"],
        "--suite",
        suite,
        "--must-not-call",
        "process_refund",
        "--contains",
        "89.00",
        "--by",
        "support-lead",
        "-c",
        str(config),
    )
    console.print(Rule("The regression case: 1.2 fails it, 1.3 fixes it and passes the gate", style="dim"))
    codes["eval 1.2"] = shipyard(
        "eval", "run", "--agent", "support", "--suite", suite, "--version", "1.2.0", "-c", str(config)
    )
    codes["gate 1.3"] = shipyard(
        "gate", "production", "--agent", "support", "--version", "1.3.0", "-c", str(config)
    )
    console.print(Rule("Shadow replay: 1.2's production traffic against 1.3", style="dim"))
    codes["shadow"] = shipyard(
        "shadow",
        "--agent",
        "support",
        "--candidate",
        "1.3.0",
        "--since",
        "1h",
        "--filter",
        "version=1.2.0",
        "--filter",
        f"meta.channel={CHANNEL}",
        "-c",
        str(config),
    )
    return codes
