"""A soak: `--n` interactions (default 200,000) through `shipyard serve`, printing the server's RSS, the
store's size and the journal's size every `--every` seconds; all three should be flat once warm and
within retention.

The demo project on its scripted model (in process, so the soak measures Shipyard, not a model server),
with the store's retention set (`store.retention: {max_size_mb: --max-size-mb, every: 15s}`); logs,
traces, metrics, the KPI window and the journal are all on, as in production. `--concurrency` keep-alive
clients (aiohttp, in this process) post "Where is my order N?" with a new session every 5 messages.
Store size is the SQLite file and its WAL (free pages are reused, so the file stops growing once
retention deletes as much as arrives); journal size is every file under .shipyard/journal/.

    .venv/bin/python benchmarks/bench_soak.py [--n 200000] [--concurrency 32] [--max-size-mb 64]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

from helpers import free_port, wait_ready
from shipyard.demo import copy_project


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def size_mb(paths: list[Path]) -> float:
    total = 0
    for p in paths:
        if p.is_dir():
            total += sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        elif p.exists():
            total += p.stat().st_size
    return total / 2**20


def slope(xs: list[int], ys: list[float]) -> float:
    """The least-squares slope of ys over xs (0 with fewer than two distinct xs)."""
    n = len(xs)
    mx, my = sum(xs) / max(n, 1), sum(ys) / max(n, 1)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def store_composition(db: Path) -> str:
    """Rows and MB on disk (the table with its indexes, from SQLite's dbstat) of the tables that grow
    with traffic: what retention bounds (interactions, spans) and what it keeps (the cost ledger)."""
    if not db.exists() or db.suffix not in (".db", ".sqlite"):
        return "n/a"
    conn = sqlite3.connect(db)
    try:
        pages: dict[str, int] = dict(
            conn.execute("SELECT tbl_name, 0 FROM sqlite_schema WHERE type = 'table'")
        )
        try:
            owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema"))
            for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                table = owner.get(name, name)
                pages[table] = pages.get(table, 0) + int(size)
        except sqlite3.Error:  # a SQLite built without dbstat: rows only
            pass
        parts = []
        for table in ("interactions", "spans", "ledger", "ledger_features"):
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            parts.append(f"{table} {rows:,} ({pages.get(table, 0) / 2**20:.1f} MB)")
        return ", ".join(parts)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="interactions to send")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between reports")
    parser.add_argument("--max-size-mb", type=float, default=64.0, help="store.retention.max_size_mb")
    args = parser.parse_args()
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "demo")
        cfg_path = root / "shipyard.yaml"
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["store"] = {
            **(cfg.get("store") or {}),
            "retention": {"max_size_mb": args.max_size_mb, "every": "15s"},
        }
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        port = free_port()
        logs = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115  (open for the server's lifetime)
        server = subprocess.Popen(
            [shipyard, "serve", "--port", str(port), "--config", str(cfg_path)],
            cwd=root,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        shipyard_dir = root / ".shipyard"
        store_files = [shipyard_dir / "shipyard.db", shipyard_dir / "shipyard.db-wal"]
        rows: list[tuple[float, int, float, float, float]] = []
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", server, "shipyard serve")
            if not store_files[0].exists():
                store_files = [
                    p for p in shipyard_dir.iterdir() if p.name.endswith((".db", ".db-wal", ".sqlite"))
                ]
            t0 = time.monotonic()
            counter = {"sent": 0}

            async def report() -> None:
                last, last_t = 0, t0
                print(
                    f"{'time':>6} {'sent':>9} {'req/s':>7} {'RSS MB':>8} {'store MB':>9} {'journal MB':>11}"
                )
                while True:
                    await asyncio.sleep(args.every)
                    now = time.monotonic()
                    sent = counter["sent"]
                    row = (
                        now - t0,
                        sent,
                        rss_mb(server.pid),
                        size_mb(store_files),
                        size_mb([shipyard_dir / "journal"]),
                    )
                    rows.append(row)
                    print(
                        f"{row[0]:6.0f} {sent:9d} {(sent - last) / (now - last_t):7.0f} {row[2]:8.1f} "
                        f"{row[3]:9.1f} {row[4]:11.1f}",
                        flush=True,
                    )
                    last, last_t = sent, now

            url = f"http://127.0.0.1:{port}/v1/agents/support/invoke"

            async def run() -> int:
                task = asyncio.create_task(report())
                failed = 0
                conn = aiohttp.TCPConnector(limit=args.concurrency)
                async with aiohttp.ClientSession(connector=conn) as session:

                    async def client(c: int) -> None:
                        nonlocal failed
                        i = 0
                        while counter["sent"] < args.n:
                            counter["sent"] += 1
                            body = {
                                "input": f"Where is my order {10001 + (c + i) % 3}?",
                                "session_id": f"c{c}-{i // 5}",
                            }
                            async with session.post(url, json=body) as resp:
                                await resp.read()
                                if resp.status != 200:
                                    failed += 1
                            i += 1

                    await asyncio.gather(*(client(c) for c in range(args.concurrency)))
                task.cancel()
                return failed

            failed = asyncio.run(run())
            elapsed = time.monotonic() - t0
            final = (rss_mb(server.pid), size_mb(store_files), size_mb([shipyard_dir / "journal"]))
        finally:
            server.terminate()
            server.wait(timeout=60)
            logs.close()
        pruned = sum(1 for line in open(Path(tmp) / "server.log", "rb") if b'"store_pruned"' in line)  # noqa: SIM115
        composition = store_composition(store_files[0])
    print(
        f"soak: {args.n} interactions in {elapsed:.0f}s ({args.n / elapsed:.0f}/s), {failed} failed, "
        f"{args.concurrency} clients, retention max_size_mb={args.max_size_mb:g} ({pruned} prune passes deleted rows)"
    )
    warm = [r for r in rows if r[1] >= args.n * 0.25] or rows
    if warm:
        for i, name in ((2, "RSS MB"), (3, "store MB"), (4, "journal MB")):
            values = [r[i] for r in warm]
            print(
                f"  {name:<11} once warm (from 25% of the run): min {min(values):7.1f}  max {max(values):7.1f}  "
                f"last {values[-1]:7.1f}   (ratio max/min {max(values) / max(min(values), 1e-9):.2f}; "
                f"trend {slope([r[1] for r in warm], values) * 10_000:+.1f} MB per 10,000 interactions)"
            )
    print(f"  at the end: RSS {final[0]:.1f} MB, store {final[1]:.1f} MB, journal {final[2]:.1f} MB")
    print(f"  what the store holds at the end (rows, MB on disk with indexes): {composition}")


if __name__ == "__main__":
    main()
