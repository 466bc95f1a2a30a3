"""What a KPI question costs as the server's window grows: the same at 10k and at 1M interactions.

First (in this process), for windows of `--sizes` production interactions spread over the last 24 hours,
the time of one alert check (a 15-minute rule), of `GET /admin/kpis?points=200`'s numbers and of a
dashboard overview (from memory), printed as a ratio to the same question on the smallest window
(issue 16's target: about 1x at any size) and beside what the exact computation over the samples
(`KpiFrame`, built fresh, the old way) costs on the same data; also what each add costs and the
window's memory.

With `--server`: a server process (the demo project on uvicorn, the settings `shipyard serve` uses)
starts with `--samples` interactions in its window over the last 15 minutes; this process times the
KPI request alone, and `/healthz` on an idle server and while one client asks for the KPIs back to back.

    .venv/bin/python benchmarks/bench_kpis.py [--sizes 10000,100000,1000000] [--server --samples 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

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


def best_ms(fn: Any, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def scaling(sizes: list[int]) -> None:
    """The in-process table: cost per question at each window size, as a ratio to the smallest."""
    from types import SimpleNamespace

    from helpers import production_record
    from shipyard.observe import KpiFrame, KpiWindow, Sample
    from shipyard.server._dashboard import DashboardData, kpis_document
    from shipyard.store import Store

    versions = ("support@1.0.0+aaaaaaa", "support@1.2.0+ccccccc")
    now = time.time()
    rows: list[dict[str, float]] = []
    tmp = tempfile.TemporaryDirectory()
    store = Store(f"sqlite:///{Path(tmp.name) / 'empty.db'}")  # the overview's older day: nothing there
    for n in sizes:
        rng = random.Random(1)
        window = KpiWindow()
        samples: list[Sample] = []
        add_s = 0.0
        for i in range(n):
            record = production_record(rng, now - 86400 + i * 86400 / n, versions)
            t = time.perf_counter()
            window.add(record)
            add_s += time.perf_counter() - t
            if n <= 200_000:
                samples.append(Sample.of(record))
        state = SimpleNamespace(
            window=window, store=store, started_at=now - 86400 - 1, alerts=SimpleNamespace(states=list)
        )
        data = DashboardData(state)
        row = {
            "n": n,
            "add_us": add_s / n * 1e6,
            "alert_ms": best_ms(lambda w=window: w.kpis(900, now=now)),
            "kpis_ms": best_ms(lambda w=window: kpis_document(w, 900, now, points=200)),
            "overview_ms": best_ms(lambda d=data: d.overview(900, now=now)),
            "mb": window.bytes / 2**20,
            "exact_ms": best_ms(lambda s=samples: KpiFrame(s).kpis(900, now - 900, now), 3)
            if samples
            else math.nan,
        }
        rows.append(row)
        del window, samples, data, state
    store.close()
    tmp.cleanup()
    base = rows[0]
    print(f"KPI questions on a window of N interactions over 24 h (ratio: to N={base['n']:,}; target ~1x)")
    print(
        f"  {'N':>10}  {'add':>8}  {'alert check':>18}  {'/admin/kpis (200 pts)':>22}  {'overview':>18}"
        f"  {'memory':>8}  {'exact, old way':>14}"
    )
    for r in rows:
        exact = "n/a" if math.isnan(r["exact_ms"]) else f"{r['exact_ms']:9.1f} ms"
        print(
            f"  {r['n']:>10,}  {r['add_us']:5.1f} us"
            f"  {r['alert_ms']:7.2f} ms {r['alert_ms'] / base['alert_ms']:5.2f}x"
            f"  {r['kpis_ms']:10.1f} ms {r['kpis_ms'] / base['kpis_ms']:6.2f}x"
            f"  {r['overview_ms']:7.1f} ms {r['overview_ms'] / base['overview_ms']:5.2f}x"
            f"  {r['mb']:5.1f} MB  {exact:>14}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000", help="window sizes for the scaling table")
    ap.add_argument("--server", action="store_true", help="also run the server / healthz measurement")
    ap.add_argument("--samples", type=int, default=20_000, help="interactions in the server's KPI window")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each server measurement")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run the server in this process
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve), args.port, args.samples)
        return
    scaling([int(x) for x in args.sizes.split(",")])
    if not args.server:
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
