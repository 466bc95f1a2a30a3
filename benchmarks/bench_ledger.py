"""What the cost ledger costs: batch writes of interactions with their ledger rows against the same
writes without them (the reference, measured in the same run), on SQLite (WAL) and, when reachable,
the local PostgreSQL; the CPU of the cost metrics per interaction against the rest of
`Metrics.observe_interaction`; and a report query over the written rows.

    .venv/bin/python benchmarks/bench_ledger.py [--n 4000] [--batch 256] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench_store import make_record
from shipyard.cost import cost_report
from shipyard.observe import Metrics
from shipyard.store import InteractionRecord, Store


def _tagged(i: int) -> InteractionRecord:
    r = make_record(i)
    r.metadata["ledger"] = {
        "features": ["refunds"] if i % 3 == 0 else [],
        "savings": {"cache": 0.001} if i % 5 == 0 else {},
    }
    return r


def _write(store: Store, records: list[InteractionRecord], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(records), batch):
        store.write_interactions(records[i : i + batch])
    return time.perf_counter() - t0


def _bench_store(name: str, open_store: Callable[[str], Store], n: int, batch: int) -> None:
    with_ledger = open_store("with")
    without = open_store("without")
    without._write_ledger = lambda conn, records: None  # type: ignore[method-assign]  # the reference
    try:
        _write(with_ledger, [_tagged(i) for i in range(batch)], batch)  # warm both
        _write(without, [_tagged(i) for i in range(batch)], batch)
        # alternate the two, three rounds each, and keep each one's best (the machine is shared)
        ref = led = float("inf")
        for _ in range(3):
            ref = min(ref, _write(without, [_tagged(i) for i in range(n)], batch))
            led = min(led, _write(with_ledger, [_tagged(i) for i in range(n)], batch))
        t0 = time.perf_counter()
        report = cost_report(with_ledger, "user", top=10)
        query_s = time.perf_counter() - t0
        print(
            f"{name:11s} write {n} interactions (best of 3): {n / ref:6.0f}/s without ledger, {n / led:6.0f}/s with "
            f"(ratio {led / ref:.2f}x); report by user over {report.total.calls} calls: {query_s * 1000:.1f} ms"
        )
    finally:
        with_ledger.close()
        without.close()


def _bench_metrics(n: int) -> None:
    records = [_tagged(i) for i in range(n)]
    m = Metrics()
    for r in records[:200]:
        m.observe_interaction(r)  # labels created
    t0 = time.perf_counter()
    for r in records:
        m.observe_interaction(r)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in records:
        m.observe_cost(r)
    cost = time.perf_counter() - t0
    print(
        f"metrics     observe_interaction {total / n * 1e6:.1f} µs per interaction, of which the cost "
        f"counters {cost / n * 1e6:.1f} µs ({cost / total:.0%})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _bench_store("sqlite", lambda tag: Store(f"sqlite:///{Path(tmp) / tag}.db"), args.n, args.batch)
    schemas: list[str] = []
    try:
        with psycopg.connect(args.pg, connect_timeout=3, autocommit=True) as conn:

            def pg(tag: str) -> Store:
                schema = f"bench_ledger_{tag}_{uuid.uuid4().hex[:8]}"
                conn.execute(f'CREATE SCHEMA "{schema}"')
                schemas.append(schema)
                return Store(f"{args.pg}?options=-csearch_path%3D{schema}")

            try:
                _bench_store("postgresql", pg, args.n, args.batch)
            finally:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except psycopg.OperationalError as e:
        print(f"postgresql  skipped: {e}".splitlines()[0])
    _bench_metrics(args.n)


if __name__ == "__main__":
    main()
