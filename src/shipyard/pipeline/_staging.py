"""The staging server of post-merge: the candidate's project copied into `.shipyard/ci/staging/<id>/`,
served by `shipyard serve` in a separate process on a free loopback port, with its own store (SQLite
in that folder, kept after the stage) and its own journal; eval cases go to it over HTTP.

`HttpRuntime` is a Runtime whose `invoke` is one HTTP request to the staging server
(`POST /v1/chat/completions`, the history as messages, the version chosen in the body) and one read
of the recorded interaction (`GET /admin/interactions/{id}`): the eval runner scores what the
server did, tool calls and cost included, not what an in-process run would have done."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import httpx

from shipyard.config import ShipyardConfig
from shipyard.errors import ShipyardError
from shipyard.pipeline._git import project_files
from shipyard.runtime import InteractionOptions, Outcome, Runtime
from shipyard.store import InteractionRecord, default_database_url, private_dir

if TYPE_CHECKING:
    from shipyard.store import Store

POLL_S = 0.05  # between readiness probes; the wait ends on the answer, the process exiting or the deadline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_project(cfg: ShipyardConfig, dest: Path) -> Path:
    """Copy the project's files (not `.shipyard/`) into `dest`; returns the copy's shipyard.yaml."""
    root = cfg.root
    for rel in project_files(root):
        if rel.parts and rel.parts[0] == ".shipyard":
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    name = cfg.path.name if cfg.path is not None else "shipyard.yaml"
    config = dest / name
    if not config.is_file():
        raise ShipyardError(f"the staging copy has no {name}", hint=f"is {name} ignored by git?")
    return config


class StagingServer:
    """`shipyard serve` on a copy of the project, for one stage. Use as a context manager.

    Args:
        cfg: the project.
        folder: where the copy, its store and the server log go (kept afterwards).
        startup_timeout_s: how long the server may take to answer /readyz 200."""

    def __init__(self, cfg: ShipyardConfig, folder: Path, startup_timeout_s: float = 120.0) -> None:
        self.cfg = cfg
        self.folder = folder
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.project = folder / "project"
        self.log = folder / "server.log"
        self.database_url = ""
        self.health: dict[str, Any] = {}
        self.ready: dict[str, Any] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StagingServer:
        private_dir(self.folder)
        config = copy_project(self.cfg, self.project)
        self.database_url = default_database_url(self.project)
        env = {**os.environ, "SHIPYARD_DATABASE_URL": self.database_url, "SHIPYARD_LOG_LEVEL": "warning"}
        env.pop("SHIPYARD_CONFIG", None)
        self.port = free_port()
        cmd = [sys.executable, "-m", "shipyard", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--log-level", "warning", "-c", str(config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.project, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])[-600:]

    def _wait_ready(self) -> None:
        """Until /readyz answers 200; fails at once when the process exits."""
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        last = ""
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise ShipyardError(
                        f"the staging server exited with code {code} before it was ready: {self._log_tail()}",
                        hint=f"its log: {self.log}",
                    )
                try:
                    r = client.get("/readyz")
                    if r.status_code == 200:
                        self.ready = r.json()
                        h = client.get("/healthz")
                        self.health = {"status_code": h.status_code, **(h.json() if h.content else {})}
                        return
                    last = f"/readyz {r.status_code}: {r.text[:300]}"
                except httpx.TransportError as e:
                    last = f"{type(e).__name__}"
                if time.monotonic() > deadline:
                    raise ShipyardError(
                        f"the staging server was not ready within {self.startup_timeout_s:g}s ({last})",
                        hint=f"its log: {self.log}; raise pipeline.post-merge.startup_timeout_s",
                    )
                time.sleep(POLL_S)

    def stop(self) -> int | None:
        """SIGTERM, then wait for the process (it drains its journal into its store)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class HttpRuntime(Runtime):
    """A Runtime whose interactions run on a Shipyard server (the staging server) over HTTP.
    Versions, prompts, prices and the judge's models are resolved locally from the same config."""

    def __init__(self, cfg: ShipyardConfig, base_url: str, *, store: Store | None = None) -> None:
        super().__init__(cfg, store=store)
        self.client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(300, connect=10))

    async def warm_up(
        self, agent: str, version: str | None = None, *, content_mask: bool = True
    ) -> dict[str, str]:
        return {}  # the server warmed its versions up before /readyz said ready

    async def interact(self, agent: str, user_input: str, **options: Unpack[InteractionOptions]) -> Outcome:
        """One interaction on the server: `kept` is the record the server stored, `full` the same
        with the answer the client was sent (the server keeps it masked per content_capture)."""
        if options.get("interceptor") is not None:
            raise ShipyardError(
                "a staging run is live: record/replay and fixed tool answers do not apply over HTTP"
            )
        traffic_source = options.get("traffic_source", "production")
        body: dict[str, Any] = {
            "model": agent,
            "messages": [*(options.get("history") or []), {"role": "user", "content": user_input}],
            "metadata": {**(options.get("metadata") or {}), "ci_traffic_source": traffic_source},
        }
        for option, field in (("session_id", "session_id"), ("user_id", "user"), ("version", "version")):
            if options.get(option):
                body[field] = options.get(option)
        r = await self.client.post("/v1/chat/completions", json=body)
        data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        interaction = (data.get("shipyard") or {}).get("interaction_id") or (data.get("error") or {}).get(
            "interaction_id"
        )
        if not interaction:
            message = (data.get("error") or {}).get("message") or r.text[:300]
            raise ShipyardError(f"staging server answered {r.status_code}: {message}")
        found = await self.client.get(f"/admin/interactions/{interaction}")
        if found.status_code != 200:
            raise ShipyardError(
                f"staging server has no record of interaction {interaction} ({found.status_code})"
            )
        kept = InteractionRecord.from_dict(found.json()["interaction"])
        full = InteractionRecord.from_dict(found.json()["interaction"])
        if r.status_code == 200:
            full.output = data["choices"][0]["message"]["content"] or ""
        return Outcome(kept=kept, full=full)

    async def aclose(self) -> None:
        await self.client.aclose()
        await super().aclose()


async def served_versions(base_url: str, agent: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.get("/admin/versions")
        r.raise_for_status()
        entry = r.json()["agents"].get(agent) or {}
        if entry.get("error"):
            raise ShipyardError(f"the staging server could not load agent {agent!r}: {entry['error']}")
        return [str(v["id"]) for v in entry.get("versions", [])]


async def benchmark(
    base_url: str, agent: str, version: str, inputs: list[str], requests: int, concurrency: int
) -> dict[str, Any]:
    """Send `requests` eval inputs (round robin) to the staging server, `concurrency` at a time, and
    measure what a client sees: latency percentiles, throughput, errors, and the recorded cost."""
    import asyncio

    import numpy as np

    latencies: list[float] = []
    costs: list[float] = []
    errors = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(inputs[i % len(inputs)])

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        nonlocal errors
        while True:
            try:
                text = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            r = await client.post(
                f"/v1/agents/{agent}/invoke",
                json={"input": text, "version": version, "session_id": f"ci-bench-{n}-{queue.qsize()}"},
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors += 1
                continue
            rec = await client.get(f"/admin/interactions/{r.json()['interaction_id']}")
            if rec.status_code == 200:
                costs.append(float(rec.json()["interaction"].get("cost_usd") or 0.0))

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        await asyncio.gather(*(worker(client, n) for n in range(concurrency)))
    elapsed = time.perf_counter() - t0
    p50, p95, p99 = (float(x) for x in np.percentile(latencies, [50, 95, 99])) if latencies else (None,) * 3
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": errors,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "throughput_rps": requests / elapsed if elapsed > 0 else None,
        "mean_cost_usd": sum(costs) / len(costs) if costs else None,
    }
