"""Kill `shipyard serve` with SIGKILL under load: every interaction whose response arrived must be in
the store after the next start (the journal holds what the background writer had not moved yet)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from server_helpers import HTTP, free_port

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.store import Store


def start_server(project: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    shipyard = Path(sys.executable).with_name("shipyard")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(shipyard), "serve", "--port", str(port), "--config", str(project / "shipyard.yaml")],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            if HTTP.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"shipyard serve did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


async def load(
    url: str, n: int, concurrency: int, kill_after: int, proc: subprocess.Popen[bytes]
) -> list[str]:
    """Send n requests; SIGKILL the server once `kill_after` responses arrived; return the ids received."""
    received: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client(c: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            try:
                r = await c.post(
                    "/v1/agents/support/invoke",
                    json={"input": f"Where is my order {10001 + i % 3}?", "session_id": f"k{i}"},
                )
            except httpx.HTTPError:
                continue  # the server is gone: this response never arrived
            if r.status_code == 200:
                received.append(r.json()["interaction_id"])
                if len(received) == kill_after:
                    os.kill(proc.pid, signal.SIGKILL)

    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        await asyncio.gather(*(client(c) for _ in range(concurrency)))
    return received


def test_sigkill_under_load_loses_no_answered_interaction(tmp_path: Path) -> None:
    copy_project(tmp_path)
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(tmp_path, port, log)
    try:
        received = asyncio.run(load(f"http://127.0.0.1:{port}", 400, 32, 150, proc))
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert len(received) >= 150
        journals = list((tmp_path / ".shipyard" / "journal").glob("*.journal"))
        assert journals, "the killed server left its journal behind"
        proc = start_server(tmp_path, port, log)  # recovery runs before the server is ready
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with Store.from_config(load_config(tmp_path / "shipyard.yaml")) as store:
        missing = [i for i in received if store.get_interaction(i) is None]
    assert not missing, f"{len(missing)} of {len(received)} answered interactions were lost"
    assert "journal_recovered" in log.read_text()
