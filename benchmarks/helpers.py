"""What several benchmarks share: a free loopback port, waiting for a server process to answer, and
interactions as a busy production support desk records them."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shipyard.store import InteractionRecord, ToolCallRecord, new_id

STATUSES = ("completed",) * 17 + ("escalated", "failed", "blocked")
"""Final statuses in production proportions: 85% completed, 5% each escalated, failed, blocked."""


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 120.0) -> None:
    """Wait until `url` answers 200 (polling every 0.1 s); SystemExit when `proc` exits first or
    nothing answers within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start within {timeout_s:g}s")


def py_spy(pid: int, out: Path, seconds: float, *, gil: bool = False) -> subprocess.Popen[bytes]:
    """Record process `pid` with py-spy for `seconds` into `out` (speedscope JSON); `gil`: only samples
    holding the GIL (py-spy otherwise counts threads waiting for it after I/O as busy)."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            *("record", "-p", str(pid), "-o", str(out), "-f", "speedscope"),
            *(["--gil"] if gil else []),
            *("-d", str(int(seconds))),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def production_record(rng: random.Random, at: float, versions: tuple[str, ...]) -> InteractionRecord:
    """One production interaction of the `support` agent (an order lookup) at `at` (epoch seconds),
    drawn from `rng`: one of 5,000 sessions, one of `versions`, a status in STATUSES' proportions, a
    log-normal latency (median ~665 ms), a cost between $0.0002 and $0.002."""
    return InteractionRecord(
        id=new_id(),
        trace_id=new_id(),
        session_id=f"s{rng.randrange(5000)}",
        user_id=None,
        agent="support",
        version=rng.choice(versions),
        traffic_source="production",
        input="Where is my order 10001?",
        output="It shipped yesterday.",
        status=rng.choice(STATUSES),
        latency_ms=rng.lognormvariate(6.5, 0.5),
        cost_usd=rng.uniform(0.0002, 0.002),
        tool_calls=[ToolCallRecord("lookup_order", {"order_id": "10001"}, "success", 3.0)],
        created_at=at,
    )
