"""`GET /admin/kpis?points=200` on a busy server, and what it does to `/healthz` meanwhile.

A server process (the demo project on uvicorn, the settings `shipyard serve` uses) starts with
`--samples` production interactions in its in-memory KPI window, spread over the last 15 minutes.
This process then times the KPI request alone, and `/healthz` first on an idle server and then while
one client keeps asking for the KPIs back to back. Before the KPI work left the event loop,
`/healthz` waited behind each KPI request.

    .venv/bin/python benchmarks/bench_kpis.py [--samples 20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from helpers import free_port, wait_ready

KPIS = "/admin/kpis?points=200&window=15m"


def serve(root: Path, port: int, samples: int) -> None:
    """The server process: the demo project with `samples` interactions in its KPI window."""
    import uvicorn

    from helpers import production_record
    from shipyard.config import load_config
    from shipyard.demo import copy_project
    from shipyard.server import create_app, uvicorn_config

    copy_project(root)
    cfg = load_config(root / "shipyard.yaml")
    app = create_app(cfg, log_stream=open(root / "events.log", "w"))  # noqa: SIM115
    window = app.state.shipyard.window
    rng = random.Random(1)
    now = time.time()
    versions = ("support@1.0.0+aaaaaaa", "support@1.2.0+ccccccc")
    for i in range(samples):
        window.add(production_record(rng, now - 900 + i * 900 / samples, versions))
    uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=port)).run()


def timings(client: httpx.Client, path: str, seconds: float) -> list[float]:
    """Latencies of `path` asked back to back for `seconds`."""
    out: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        r = client.get(path)
        out.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code} {r.text[:200]}")
    return out


def probe(url: str, seconds: float, every_s: float = 0.01) -> list[float]:
    """Latencies of `/healthz` asked every `every_s` whether or not the last answer came (a load
    balancer's view: each probe samples a moment, so the p50 is the server at a random moment)."""

    async def run() -> list[float]:
        out: list[float] = []
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:

            async def one() -> None:
                t0 = time.perf_counter()
                (await c.get("/healthz")).raise_for_status()
                out.append(time.perf_counter() - t0)

            tasks = []
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                tasks.append(asyncio.create_task(one()))
                await asyncio.sleep(every_s)
            await asyncio.gather(*tasks)
        return out

    return asyncio.run(run())


def report(label: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)

    def ms(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    print(f"  {label:<52} p50 {ms(0.5):8.1f} ms  p99 {ms(0.99):8.1f} ms  ({len(ordered)} requests)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20_000, help="interactions in the KPI window")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run the server in this process
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve), args.port, args.samples)
        return
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", tmp, "--port", str(port), "--samples", str(args.samples)]
        proc = subprocess.Popen(cmd)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/healthz", proc, "the server")
            with httpx.Client(base_url=url, timeout=60) as c:
                print(f"KPI window: {args.samples} interactions over the last 15 minutes")
                report(f"GET {KPIS}, alone", timings(c, KPIS, args.seconds))
                report("GET /healthz every 10 ms, idle server", probe(url, args.seconds / 2))
                stop = threading.Event()
                during_kpis: list[float] = []

                def hammer() -> None:
                    with httpx.Client(base_url=url, timeout=60) as k:
                        while not stop.is_set():
                            t0 = time.perf_counter()
                            k.get(KPIS).raise_for_status()
                            during_kpis.append(time.perf_counter() - t0)

                worker = threading.Thread(target=hammer)
                worker.start()
                busy = probe(url, args.seconds)
                stop.set()
                worker.join()
                report("GET /healthz every 10 ms, KPIs asked back to back", busy)
                report("GET /admin/kpis meanwhile", during_kpis)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
