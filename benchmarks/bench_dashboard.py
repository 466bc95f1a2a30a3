"""What one dashboard refresh costs the server: the overview, timeseries and versions documents over a
busy in-memory KPI window, and the first (uncached) read of older history from a SQLite store.

    .venv/bin/python benchmarks/bench_dashboard.py [--window-samples 100000] [--store-rows 20000]

The page fetches overview + timeseries + versions + traces every 5 s per open tab; older history is read
from the store once per 15 s and then served from memory.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from helpers import production_record
from shipyard.observe import KpiWindow
from shipyard.server._dashboard import DashboardData
from shipyard.store import Store

VERSIONS = ("support@1.0.0+aaaaaaa", "support@1.1.0+bbbbbbb")


def timed(label: str, fn: Any, repeat: int = 5) -> None:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    print(f"  {label:<44} {best * 1000:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--window-samples", type=int, default=100_000, help="interactions in the last 24 h (memory)"
    )
    ap.add_argument("--store-rows", type=int, default=20_000, help="interactions before the server started")
    args = ap.parse_args()
    rng = random.Random(1)
    now = time.time()

    window = KpiWindow()
    for i in range(args.window_samples):
        window.add(production_record(rng, now - 86400 + i * 86400 / args.window_samples, VERSIONS))
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        rows = [
            production_record(rng, now - 2 * 86400 + i * 86400 / args.store_rows, VERSIONS)
            for i in range(args.store_rows)
        ]
        for start in range(0, len(rows), 1000):
            store.write_interactions(rows[start : start + 1000])
        alerts = SimpleNamespace(states=lambda: [])
        state = SimpleNamespace(store=store, window=window, alerts=alerts, started_at=now - 86400 - 1)
        data = DashboardData(state)

        print(f"in-memory window: {len(window)} interactions over 24 h")
        for w in (900.0, 3600.0, 86400.0):
            timed(f"overview window={w:.0f}s (+24h cards)", lambda w=w: data.overview(w, now=now))
            timed(f"timeseries window={w:.0f}s", lambda w=w: data.timeseries(w, now=now))
            timed(f"versions window={w:.0f}s", lambda w=w: data.versions(w, now=now))
        print(f"store history: {args.store_rows} interactions in the 24 h before the server started")
        fresh = SimpleNamespace(store=store, window=KpiWindow(), alerts=alerts, started_at=now)
        timed("overview 15m, cold (one store read)", lambda: DashboardData(fresh).overview(900.0, now=now), 3)
        warm = DashboardData(fresh)
        warm.overview(900.0, now=now)
        timed("overview 15m, warm (history cached)", lambda: warm.overview(900.0, now=now))
        store.close()


if __name__ == "__main__":
    main()
