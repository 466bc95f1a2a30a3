"""Insert throughput of the store on SQLite (WAL file) and the local PostgreSQL: direct batch writes
(`Store.write_interactions`), the background `BatchWriter` end to end, and what `submit()` costs the
caller. Each record is realistic: JSON tool/LLM calls, metadata and two spans.

    .venv/bin/python benchmarks/bench_store.py [--n 5000] [--batch 256] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from shipyard.store import (
    BatchWriter,
    InteractionRecord,
    LLMCallRecord,
    SpanRecord,
    Store,
    ToolCallRecord,
    new_id,
)


def make_record(i: int) -> InteractionRecord:
    trace = new_id()
    return InteractionRecord(
        id=new_id(),
        trace_id=trace,
        session_id=f"s{i % 500}",
        user_id=f"u{i % 97}",
        agent="support",
        version="support@1.0.0+abc1234",
        traffic_source="production",
        input="Where is my order 10001? It was supposed to arrive on Monday.",
        output="Order 10001 shipped yesterday and should arrive tomorrow.",
        status="completed",
        latency_ms=120.0 + i % 50,
        input_tokens=420,
        output_tokens=38,
        cached_input_tokens=256,
        cost_usd=0.00042,
        tool_calls=[
            ToolCallRecord(
                "lookup_order", {"order_id": "10001"}, "success", 3.2, result={"status": "shipped"}
            )
        ],
        llm_calls=[
            LLMCallRecord("small", "scripted", 80.0, 420, 38, 256, 0.00042, tool_calls=["lookup_order"])
        ],
        guardrails=[{"name": "pii", "verdict": "allow"}],
        metadata={"channel": "web"},
        spans=[
            SpanRecord(trace, "a" * 16, None, "invoke_agent support", "internal", 1, 2, attributes={"x": 1}),
            SpanRecord(trace, "b" * 16, "a" * 16, "chat small", "client", 1, 2, attributes={"y": 2}),
        ],
    )


def bench(label: str, url: str, n: int, batch: int) -> None:
    records = [make_record(i) for i in range(n)]
    store = Store(url)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        store.write_interactions(records[start : start + batch])
    direct = n / (time.perf_counter() - t0)

    records = [make_record(i) for i in range(n)]
    writer = BatchWriter(store, batch_size=batch, flush_interval_ms=200)
    t0 = time.perf_counter()
    for r in records:
        writer.submit(r)
    submitted = time.perf_counter() - t0
    writer.close()
    total = time.perf_counter() - t0
    assert writer.stats()["written"] == n, writer.stats()
    assert store.count_interactions() == 2 * n

    t0 = time.perf_counter()
    for _ in range(200):
        store.list_interactions(agent="support", limit=50)
    reads = 200 / (time.perf_counter() - t0)
    store.close()
    print(
        f"{label:<11} direct batches of {batch}: {direct:>8,.0f} records/s | "
        f"BatchWriter: {n / total:>8,.0f} records/s, submit() {submitted / n * 1e6:.1f} µs/record | "
        f"list 50: {reads:,.0f}/s"
    )


def with_pg_schema(dsn: str, run: Callable[[str], None]) -> None:
    schema = f"bench_store_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as e:
        print(f"postgresql  skipped: {e}".strip())
        return
    try:
        run(f"{dsn}?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="records per measurement")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    print(f"store insert throughput, {args.n} records (each with 2 spans) per measurement")
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.n, args.batch)
    with_pg_schema(args.pg, lambda url: bench("postgresql", url, args.n, args.batch))


if __name__ == "__main__":
    main()
