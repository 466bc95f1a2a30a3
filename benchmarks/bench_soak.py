"""A soak: `--n` interactions (default 200,000) through `shipyard serve`, printing the server's RSS, the
store's size and the journal's size every `--every` seconds; all three should be flat once warm and
within retention.

The demo project on its scripted model (in process, so the soak measures Shipyard, not a model server),
with the store's retention set (`store.retention: {max_size_mb: --max-size-mb, every: 15s,
ledger_max_age: --ledger-max-age}`); logs,
traces, metrics, the KPI window and the journal are all on, as in production. `--concurrency` keep-alive
clients (aiohttp, in this process) post "Where is my order N?" with a new session every 5 messages.
Store size is the SQLite file and its WAL (free pages are reused, so the file stops growing once
retention deletes as much as arrives); "records" is what `max_size_mb` bounds: the pages of the
interactions and spans with their indexes (SQLite's dbstat); "ledger" is the cost ledger with its
feature tags and indexes, kept by `--ledger-max-age` (at least 32 days: budgets with a month window
are reconciled from it), so within a soak it grows with traffic by design. Journal size is every file
under .shipyard/journal/; "otlp file" is the demo's `server.otlp_file` (kept traces as OTLP JSON Lines).

`--tracemalloc N` traces the server's allocations (N frames) from 20% of the run on and prints those
that grew most between a snapshot at 40% of the run and one at the end: where RSS growth comes from
(slow: on a loaded machine the server ran 20x slower). `--census` is cheap: it counts the server's
gc-tracked objects and the entries of its big containers at 30% of the run and at the end, and prints
what grew (container growth names the cache: an index of one entry per interaction, per session, ...).
`--smaps` adds to every report where the server's memory is: anonymous and file-backed resident
memory (smaps_rollup), glibc's main heap (`[heap]`) and the unnamed anonymous mappings (pymalloc's
arenas, glibc's thread arenas and big blocks), and from a sampler thread in the server: pymalloc's
blocks in use, glibc's malloc figures (mallinfo2: arena bytes, mmapped bytes, in use, free), SQLite's
own memory (sqlite3_memory_used: page caches, statements) and the thread count; and the log events of
the interval (prunes, alerts, ...), so a step in RSS can be put next to what happened then.

Where RSS is final: a capped index (newest in, oldest out) is a dict whose deleted entries still use
up its table, and CPython then resizes it to a table sized for 3x what it holds. A dict capped at C
grows its table one last time at the first 2^i/3 inserts at or above C, not when it fills: 21,846 for
C = 20,000, but 174,763 for C = 100,000. The KPI window's feedback index (100,000 interactions) does
so at 174,763 production interactions: RSS steps up ~6 MB there (the index 8.7 -> 14.4 MB) and is
flat after; a run that ends before has not seen the server's final size.

    .venv/bin/python benchmarks/bench_soak.py [--n 200000] [--concurrency 32] [--max-size-mb 64] [--smaps]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
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

WARM_AFTER = 100_000
"""Interactions after which the server's data stops growing: the KPI window's index of the interactions
feedback can still re-rate (87,381) is full. The summary's "once warm" starts there (at most half-way
through the run, at least a quarter of the way)."""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def smaps_mb(pid: int) -> dict[str, float]:
    """The server's resident memory by kind, in MB: "anon" and "file" (smaps_rollup: anonymous pages,
    and the rest), and by mapping (smaps): "heap" (glibc's main arena, `[heap]`), "anon maps" (unnamed
    anonymous mappings: pymalloc's arenas, glibc's thread arenas and big blocks, thread stacks) and
    "files" (mapped files: libraries, SQLite's -shm)."""
    out = {"heap": 0.0, "anon maps": 0.0, "files": 0.0}
    kind = "files"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            key, _, rest = line.partition(" ")
            if not key.endswith(":"):  # a mapping's header: range perms offset dev inode [path]
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
                kind = "heap" if name == "[heap]" else "anon maps" if not name else "files"
                if name.startswith("[") and name != "[heap]":
                    kind = "anon maps"  # [stack], [vdso], [anon:...]
            elif key == "Rss:":
                out[kind] += int(rest.split()[0]) / 1024
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        rollup[key] = int(rest.split()[0]) / 1024
    out["anon"] = rollup.get("Anonymous", 0.0)
    out["file"] = rollup.get("Rss", 0.0) - out["anon"]
    return out


def inside_stats(path: Path) -> dict[str, float]:
    """The latest line the server's sampler thread wrote (see _SAMPLER), as a dict; empty if none."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(), map(float, lines[-1].split()), strict=True))


_QUIET_EVENTS = {"interaction"}
"""Log events counted but not listed per report: one per interaction."""


def new_events(log: Path, offset: int) -> tuple[dict[str, int], int]:
    """({event name: count} of the server's log lines after `offset`, the new offset). Reads whole
    lines only."""
    counts: dict[str, int] = {}
    with open(log, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].splitlines():
        at = line.find(b'"event":"')
        if at < 0:
            at = line.find(b'"event": "')
            start = at + 10
        else:
            start = at + 9
        if at < 0:
            continue
        name = line[start : line.find(b'"', start)].decode(errors="replace")
        counts[name] = counts.get(name, 0) + 1
    return counts, offset + end


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


def table_pages(db: Path) -> dict[str, int]:
    """Bytes of the pages each table uses with its indexes (SQLite's dbstat; empty without it), and
    the file's free pages under "(free)"."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema"))
        pages: dict[str, int] = {}
        for name, size in conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat WHERE aggregate = TRUE GROUP BY name"
        ):
            table = owner.get(name, name)
            pages[table] = pages.get(table, 0) + int(size)
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages["(free)"] = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        return pages
    except sqlite3.Error:  # busy, or a SQLite built without dbstat
        return {}
    finally:
        conn.close()


def records_and_ledger_mb(db: Path) -> tuple[float, float]:
    """(MB on disk of what max_size_mb bounds: interactions and spans; of the cost ledger)."""
    pages = table_pages(db)
    return (
        (pages.get("interactions", 0) + pages.get("spans", 0)) / 2**20,
        (pages.get("ledger", 0) + pages.get("ledger_features", 0)) / 2**20,
    )


def store_composition(db: Path) -> str:
    """Rows and MB on disk (the table with its indexes) of the tables that grow with traffic: what
    retention bounds by size (interactions, spans) and what it keeps by age (the cost ledger)."""
    if not db.exists() or db.suffix not in (".db", ".sqlite"):
        return "n/a"
    pages = table_pages(db)
    conn = sqlite3.connect(db)
    try:
        parts = []
        for table in ("interactions", "spans", "ledger", "ledger_features"):
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            parts.append(f"{table} {rows:,} ({pages.get(table, 0) / 2**20:.1f} MB)")
        parts.append(f"free pages {pages.get('(free)', 0) / 2**20:.1f} MB")
        return ", ".join(parts)
    finally:
        conn.close()


_SAMPLER = """
import ctypes, sys, threading, time

def _sample(path, every):
    # pymalloc's blocks in use; glibc's malloc (all arenas): system bytes in arenas, in mmapped blocks,
    # in use, free; SQLite's own count of the memory it holds (page caches, statements, schemas)
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost")]
    libc = ctypes.CDLL(None)
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is not None:
        mallinfo2.restype = MallInfo2
    try:
        import _sqlite3  # noqa: F401  (the library the sqlite3 module uses, loaded once)
        lite = ctypes.CDLL("libsqlite3.so.0")
        lite.sqlite3_memory_used.restype = ctypes.c_int64
        lite.sqlite3_memory_used()
    except (OSError, AttributeError):
        lite = None
    mb = 2 ** 20
    with open(path, "w") as f:
        f.write("blocks malloc_arena malloc_mmap malloc_used malloc_free sqlite threads\\n")
        while True:
            m = mallinfo2() if mallinfo2 is not None else None
            threads = next(
                int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("Threads:")
            )
            row = [
                sys.getallocatedblocks(),
                m.arena / mb if m else -1, m.hblkhd / mb if m else -1,
                m.uordblks / mb if m else -1, m.fordblks / mb if m else -1,
                lite.sqlite3_memory_used() / mb if lite else -1,
                threads,
            ]
            f.write(" ".join(f"{v:.2f}" for v in row) + "\\n")
            f.flush()
            time.sleep(every)

threading.Thread(
    target=_sample, args=(sys.argv.pop(1), float(sys.argv.pop(1))), daemon=True, name="soak-sampler"
).start()
"""
"""Put first in the server's `-c` program with `--smaps`: a thread that writes the server's allocator
and SQLite memory figures to a file (argv[1]) every argv[2] seconds."""

_PLAIN = """
import sys
from shipyard.cli import main
sys.argv[0] = "shipyard"
main()
"""

_TRACED = """
import signal, sys, tracemalloc
frames = int(sys.argv.pop(1))
out = sys.argv.pop(1)
taken = [0]
def dump(*_):
    if not tracemalloc.is_tracing():  # the first signal: trace from now on (start-up stays fast)
        tracemalloc.start(frames)
        open(f"{out}.0", "w").close()
        return
    taken[0] += 1
    tracemalloc.take_snapshot().dump(f"{out}.{taken[0]}")
signal.signal(signal.SIGUSR2, dump)
from shipyard.cli import main
sys.argv[0] = "shipyard"
main()
"""

_CENSUS = """
import collections, gc, signal, sys
out = sys.argv.pop(1)
first = {}
KINDS = (dict, list, set, collections.deque)

def owner(c, skip):
    # "Type.attribute" or "module.name" of a container, through at most two referrers
    for r in gc.get_referrers(c):
        if id(r) in skip or r is first or type(r).__name__ in ("frame", "cell"):
            continue
        if isinstance(r, dict):
            name = next((k for k, v in r.items() if v is c), None)
            if name is None:
                continue
            for rr in gc.get_referrers(r):
                if getattr(rr, "__dict__", None) is r:
                    return f"{type(rr).__qualname__}.{name}"
                if type(rr).__name__ == "module":
                    return f"{rr.__name__}.{name}"
            return f"dict[{name!r}]"
        for name in getattr(type(r), "__slots__", ()) or ():
            if getattr(r, name, None) is c:
                return f"{type(r).__qualname__}.{name}"
        d = getattr(r, "__dict__", None)
        if isinstance(d, dict):
            for name, v in d.items():
                if v is c:
                    return f"{type(r).__qualname__}.{name}"
        return f"in a {type(r).__qualname__}"
    return "?"

def census(*_):
    gc.collect()
    objs = gc.get_objects()
    types = collections.Counter(f"{getattr(type(o), '__module__', '?')}.{type(o).__qualname__}" for o in objs)
    held = {id(o): o for o in objs if isinstance(o, KINDS) and len(o) >= 200}
    sizes = {k: len(o) for k, o in held.items()}
    if not first:
        first["types"], first["sizes"] = types, sizes
        open(f"{out}.1", "w").close()
        return
    lines = [f"objects tracked by gc: {sum(first['types'].values())} -> {sum(types.values())}"]
    grown = sorted(((n - first["sizes"].get(k, 0), n, k) for k, n in sizes.items()), key=lambda t: -t[0])
    skip = {id(objs), id(held), id(sizes), id(first["sizes"])}
    lines.append("containers that grew most (entries: growth, now):")
    for d, n, k in grown[:15]:
        if d > 0:
            lines.append(f"  {d:+9d} {n:9d}  {type(held[k]).__name__}  {owner(held[k], skip)}")
    lines.append("object types that grew most (count: growth, now):")
    for name, n in sorted(types.items(), key=lambda t: first["types"].get(t[0], 0) - t[1])[:15]:
        lines.append(f"  {n - first['types'].get(name, 0):+9d} {n:9d}  {name}")
    with open(f"{out}.tmp", "w") as f:
        f.write("\\n".join(lines) + "\\n")
    import os
    os.replace(f"{out}.tmp", f"{out}.2")

def safe_census(*_):
    try:
        census()
    except Exception as e:  # never into the code the signal interrupted
        with open(f"{out}.{'2' if first else '1'}", "w") as f:
            f.write(f"census failed: {e!r}\\n")

signal.signal(signal.SIGUSR2, safe_census)
from shipyard.cli import main
sys.argv[0] = "shipyard"
main()
"""


def snapshot(pid: int, base: Path, k: int, timeout_s: float = 300.0, *, empty: bool = False) -> Path | None:
    """Ask the traced server for snapshot `k` and wait until it is written (`empty`: a marker file)."""
    path = Path(f"{base}.{k}")
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout_s
    size = -1
    while time.monotonic() < deadline:
        time.sleep(1.0)
        if path.exists() and path.stat().st_size == size and (size > 0 or empty):
            return path
        size = path.stat().st_size if path.exists() else -1
    return None


def print_growth(first: Path, last: Path, top: int = 15) -> None:
    import tracemalloc

    a, b = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(last))
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*"),
    ]
    a, b = a.filter_traces(ignore), b.filter_traces(ignore)
    total = sum(s.size_diff for s in b.compare_to(a, "filename"))
    print(f"  tracemalloc: traced memory grew {total / 2**20:+.1f} MB between the snapshots; the biggest:")
    for stat in b.compare_to(a, "traceback")[:top]:
        if stat.size_diff <= 0:
            break
        print(f"    {stat.size_diff / 2**20:+7.2f} MB  {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format(limit=6, most_recent_first=True):
            print(f"        {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="interactions to send")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between reports")
    parser.add_argument("--max-size-mb", type=float, default=64.0, help="store.retention.max_size_mb")
    parser.add_argument(
        "--ledger-max-age", default="32d", help="store.retention.ledger_max_age (at least 32d)"
    )
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames per traced allocation (0: off)")
    parser.add_argument(
        "--census",
        action="store_true",
        help="count the server's objects and containers at 30%% of the run and at the end; print what grew",
    )
    parser.add_argument(
        "--smaps",
        action="store_true",
        help="add the server's memory by kind (smaps), its allocators' and SQLite's figures, and the "
        "log events of each interval to every report",
    )
    args = parser.parse_args()
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "demo")
        cfg_path = root / "shipyard.yaml"
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["store"] = {
            **(cfg.get("store") or {}),
            "retention": {
                "max_size_mb": args.max_size_mb,
                "every": "15s",
                "ledger_max_age": args.ledger_max_age,
            },
        }
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        port = free_port()
        logs = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115  (open for the server's lifetime)
        command = ["serve", "--port", str(port), "--config", str(cfg_path)]
        traced = Path(tmp) / "heap"
        if args.tracemalloc:
            command = [sys.executable, "-c", _TRACED, str(args.tracemalloc), str(traced), *command]
        elif args.census:
            command = [sys.executable, "-c", _CENSUS, str(traced), *command]
        elif args.smaps:
            command = [sys.executable, "-c", _PLAIN, *command]
        else:
            command = [shipyard, *command]
        inside = Path(tmp) / "inside.txt"
        if args.smaps:  # the sampler thread first, with its two arguments before the program's own
            command = [*command[:2], _SAMPLER + command[2], str(inside), str(args.every), *command[3:]]
        snapshots: list[Path] = []
        server = subprocess.Popen(
            command,
            cwd=root,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        shipyard_dir = root / ".shipyard"
        store_files = [shipyard_dir / "shipyard.db", shipyard_dir / "shipyard.db-wal"]
        rows: list[tuple[float, int, float, float, float, float, float]] = []
        otlp = shipyard_dir / "traces.jsonl"
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
                    f"{'time':>6} {'sent':>9} {'req/s':>7} {'RSS MB':>8} {'store MB':>9} {'records MB':>11} "
                    f"{'ledger MB':>10} {'journal MB':>11} {'otlp file MB':>13}"
                    + (
                        f" | {'anon':>6} {'file':>5} {'heap':>6} {'anonmap':>7} | {'blocks':>7} "
                        f"{'m.arena':>7} {'m.mmap':>6} {'m.used':>6} {'m.free':>6} {'sqlite':>6} {'thr':>3} | events"
                        if args.smaps
                        else ""
                    )
                )
                while True:
                    await asyncio.sleep(args.every)
                    now = time.monotonic()
                    sent = counter["sent"]
                    records, ledger = await asyncio.to_thread(records_and_ledger_mb, store_files[0])
                    row = (
                        now - t0,
                        sent,
                        rss_mb(server.pid),
                        size_mb(store_files),
                        size_mb([shipyard_dir / "journal"]),
                        records,
                        ledger,
                    )
                    rows.append(row)
                    print(
                        f"{row[0]:6.0f} {sent:9d} {(sent - last) / (now - last_t):7.0f} {row[2]:8.1f} "
                        f"{row[3]:9.1f} {records:11.1f} {ledger:10.1f} {row[4]:11.1f} {size_mb([otlp]):13.1f}"
                        + (memory_columns() if args.smaps else ""),
                        flush=True,
                    )
                    last, last_t = sent, now
                    if args.census and not snapshots and sent >= args.n * 0.3:
                        taken = await asyncio.to_thread(snapshot, server.pid, traced, 1, empty=True)
                        if taken is not None:
                            snapshots.append(taken)
                    if (
                        args.tracemalloc
                        and len(snapshots) < 2
                        and sent >= args.n * (0.2, 0.4)[len(snapshots)]
                    ):
                        taken = await asyncio.to_thread(
                            snapshot, server.pid, traced, len(snapshots), empty=not snapshots
                        )
                        if taken is not None:
                            snapshots.append(taken)

            log_offset = 0

            def memory_columns() -> str:
                nonlocal log_offset
                m = smaps_mb(server.pid)
                i = inside_stats(inside)
                events, log_offset = new_events(Path(tmp) / "server.log", log_offset)
                listed = " ".join(f"{k}x{n}" for k, n in sorted(events.items()) if k not in _QUIET_EVENTS)
                return (
                    f" | {m['anon']:6.1f} {m['file']:5.1f} {m['heap']:6.1f} {m['anon maps']:7.1f} | "
                    f"{i.get('blocks', -1) / 1e6:6.2f}M {i.get('malloc_arena', -1):7.1f} "
                    f"{i.get('malloc_mmap', -1):6.1f} {i.get('malloc_used', -1):6.1f} "
                    f"{i.get('malloc_free', -1):6.1f} {i.get('sqlite', -1):6.1f} {i.get('threads', -1):3.0f} | {listed}"
                )

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
            if len(snapshots) == 2 or (args.census and snapshots):
                taken = snapshot(server.pid, traced, 2)
                if taken is not None:
                    snapshots.append(taken)
        finally:
            server.terminate()
            server.wait(timeout=60)
            logs.close()
        pruned = sum(1 for line in open(Path(tmp) / "server.log", "rb") if b'"store_pruned"' in line)  # noqa: SIM115
        composition = store_composition(store_files[0])
        otlp_mb = size_mb([otlp])
        if args.tracemalloc and len(snapshots) == 3:
            print_growth(snapshots[1], snapshots[2])
        if args.census and len(snapshots) == 2:
            print("  census (gc-tracked objects, from 30% of the run to its end):")
            print("    " + snapshots[1].read_text().replace("\n", "\n    "))
    print(
        f"soak: {args.n} interactions in {elapsed:.0f}s ({args.n / elapsed:.0f}/s), {failed} failed, "
        f"{args.concurrency} clients, retention max_size_mb={args.max_size_mb:g} ({pruned} prune passes deleted rows)"
    )
    # warm: the server's data has its final size once the KPI window's index of rateable interactions is
    # full (observe/_kpis.py RATEABLE, 87,381 interactions: 100,000 with the warm-up's margin)
    warm_from = max(args.n * 0.25, min(WARM_AFTER, args.n * 0.5))
    warm = [r for r in rows if r[1] >= warm_from] or rows
    if warm:
        for i, name in (
            (2, "RSS MB"),
            (3, "store MB"),
            (5, "records MB"),
            (6, "ledger MB"),
            (4, "journal MB"),
        ):
            values = [r[i] for r in warm]
            print(
                f"  {name:<11} once warm (from {warm_from:,.0f}): min {min(values):7.1f}  max {max(values):7.1f}  "
                f"last {values[-1]:7.1f}   (ratio max/min {max(values) / max(min(values), 1e-9):.2f}; "
                f"trend {slope([r[1] for r in warm], values) * 10_000:+.1f} MB per 10,000 interactions)"
            )
    print(
        f"  at the end: RSS {final[0]:.1f} MB, store {final[1]:.1f} MB, journal {final[2]:.1f} MB, "
        f"otlp file {otlp_mb:.1f} MB"
    )
    print(f"  what the store holds at the end (rows, MB on disk with indexes): {composition}")


if __name__ == "__main__":
    main()
