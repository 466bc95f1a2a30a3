"""Helpers the rollout tests share (a hand-moved clock, stored gate runs, records, a real server)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from cli_runner import invoke_cli

from shipyard.config import ShipyardConfig
from shipyard.evals import GATE_RULES
from shipyard.server import create_app
from shipyard.store import Store


class Clock:
    """A clock the test moves by hand (the controller's notion of now)."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def gate_run(store: Store, version: str, verdict: str, **decision: Any) -> str:
    """Store a finished production gate run of `version` with this verdict, decided under the
    current gate rules (`rules=1` stands for a decision made before they failed closed)."""
    run_id = store.create_eval_run("support", version, ["evals/support/broad.yaml"], stage="production")
    decided = {"verdict": verdict, "reasons": [], "rules": GATE_RULES, **decision}
    store.finish_eval_run(run_id, "finished", {"counts": {}}, decided)
    return run_id


def write_arm(
    store: Store,
    version: str,
    source: str,
    n: int,
    at: float,
    *,
    seed: int = 0,
    blocked: int = 0,
    failed: int = 0,
    sessions: int | None = None,
) -> None:
    """Store `n` realistic interactions of one arm at time `at` (latency and cost drawn alike for
    every arm); the first `blocked` are safety incidents, the next `failed` failures."""
    import random

    from shipyard.store import InteractionRecord, ToolCallRecord, new_id

    rng = random.Random(seed)
    records = []
    for i in range(n):
        status = "blocked" if i < blocked else ("failed" if i < blocked + failed else "completed")
        guard = [{"name": "refund_policy", "verdict": "block"}] if status == "blocked" else []
        records.append(
            InteractionRecord(
                id=new_id(),
                trace_id=new_id(),
                session_id=f"{source}-{seed}-{i % (sessions or n)}",
                user_id=None,
                agent="support",
                version=version,
                traffic_source=source,
                input="Where is my order 10001?",
                output="It shipped.",
                status=status,
                latency_ms=rng.gauss(900, 120),
                cost_usd=max(0.0, rng.gauss(0.0004, 0.00005)),
                tool_calls=[ToolCallRecord("lookup_order", {"order_id": "10001"}, "success", 3.0)],
                guardrails=guard,
                created_at=at + i * 1e-3,
            )
        )
    store.write_interactions(records)


def fill(
    store: Store,
    ids: dict[str, str],
    clock: Clock,
    weight: int,
    total: int = 1000,
    candidate: str = "1.2",
    **canary: Any,
) -> None:
    """Traffic at the configured split for the current step (1.0 stable, `candidate` canary), a second
    after now."""
    n_canary = total * weight // 100
    write_arm(store, ids["1.0"], "production", total - n_canary, clock.t + 1, seed=1)
    write_arm(store, ids[candidate], "canary", n_canary, clock.t + 1, seed=2, **canary)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(cfg: ShipyardConfig, store: Store) -> Iterator[tuple[str, Any]]:
    """Run a real server on loopback over `cfg` and `store` while in the block: (its base URL, its
    ServerState, whose `log_stream` holds the server's event lines)."""
    app = create_app(cfg, store=store, log_stream=io.StringIO())
    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.shipyard
    finally:  # a failed test stops its server too, before its database goes
        srv.should_exit = True
        thread.join(timeout=60)


Sy = Callable[..., tuple[int, str]]
"""Runs `shipyard ARGS --config ...` in process: (exit code, output with rich's line wraps undone)."""


def cli(config: Path | str) -> Sy:
    """A `Sy` on the project `config`; a command that crashes (anything but a clean exit) fails the test."""

    def run(*args: str) -> tuple[int, str]:
        result = invoke_cli(*args, "--config", str(config))
        return result.exit_code, " ".join(result.output.split())

    return run
