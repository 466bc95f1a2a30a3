"""Insert throughput of the store on SQLite (WAL file) and the local PostgreSQL: direct batch writes
(`Store.write_interactions`), the background `BatchWriter` end to end, and what `submit()` costs the
caller; interactions per second and spans per second (issue 14's target: >= 10,000 spans/s into
PostgreSQL through the BatchWriter).

Each record is what the demo's support agent records for one answer: ten spans with their OTel GenAI
attributes (guardrails, a cache lookup, two model calls, a tool call, the agent), JSON tool and model
calls, guardrail verdicts, metadata, and the ledger's features and savings, so two ledger rows and
their feature tags go in with it.

    .venv/bin/python benchmarks/bench_store.py [--n 5000] [--batch 256] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import functools
import os
import random
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
from shipyard.store._bulk import Rows, insert_rows
from shipyard.store._models import interactions as interactions_table
from shipyard.store._models import spans as spans_table
from shipyard.store._store import INTERACTION_COLUMNS, SPAN_COLUMNS


def _span_id() -> str:
    return f"{random.getrandbits(64):016x}"


def make_spans(trace: str, interaction_id: str, start_ns: int) -> list[SpanRecord]:
    """The ten spans of one demo interaction, attributes as the runtime records them."""
    root = _span_id()
    t = start_ns

    def span(
        name: str, kind: str, ms: float, attributes: dict[str, object], parent: str = root
    ) -> SpanRecord:
        nonlocal t
        begin, t = t, t + int(ms * 1e6)
        return SpanRecord(trace, _span_id(), parent, name, kind, begin, t, attributes=attributes)

    def guardrail(kind: str, stage: str, verdict: str = "allow", **more: object) -> dict[str, object]:
        return {
            "shipyard.operation.name": "apply_guardrail",
            "shipyard.guardrail.kind": kind,
            "shipyard.guardrail.stage": stage,
            "shipyard.guardrail.latency_ms": random.random(),
            **more,
            "shipyard.guardrail.verdict": verdict,
        }

    def chat(n: int, tokens_in: int, tokens_out: int, finish: str) -> dict[str, object]:
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "scripted-small",
            "shipyard.model.key": "scripted-small",
            "gen_ai.request.max_tokens": 256,
            "gen_ai.response.id": f"chatcmpl-scripted-{n}",
            "gen_ai.provider.name": "scripted",
            "gen_ai.response.model": "scripted-small",
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "gen_ai.usage.cache_read.input_tokens": 366 * (n - 1),
            "gen_ai.response.finish_reasons": [finish],
            "shipyard.cost_usd": 0.00019334999999999998,
            "shipyard.replayed": False,
        }

    spans = [
        span(
            "apply_guardrail prompt_injection",
            "internal",
            15.9,
            guardrail("prompt_injection", "input", **{"shipyard.guardrail.score": random.random()}),
        ),
        span(
            "cache_lookup exact",
            "internal",
            0.1,
            {
                "shipyard.operation.name": "cache_lookup",
                "shipyard.cache.kind": "exact",
                "shipyard.cache.hit": False,
            },
        ),
        span("chat scripted-small", "client", 24.0, chat(1, 1197, 23, "tool_calls")),
        span(
            "apply_guardrail indirect_injection",
            "internal",
            0.5,
            guardrail("prompt_injection", "tool_result", **{"gen_ai.tool.name": "lookup_order"}),
        ),
        span(
            "execute_tool lookup_order",
            "internal",
            3.2,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": "call_1",
                "shipyard.tool.status": "success",
                "shipyard.tool.cached": False,
                "shipyard.replayed": False,
            },
        ),
        span("chat scripted-small", "client", 24.0, chat(2, 1393, 26, "stop")),
        span(
            "apply_guardrail system_prompt_leak", "internal", 0.2, guardrail("system_prompt_leak", "output")
        ),
        span("apply_guardrail exfiltration", "internal", 0.1, guardrail("exfiltration", "output")),
        span("apply_guardrail pii", "internal", 0.2, guardrail("pii", "output")),
    ]
    agent = SpanRecord(
        trace,
        root,
        None,
        "invoke_agent support",
        "internal",
        start_ns,
        t,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": "scripted",
            "gen_ai.request.model": "scripted-small",
            "shipyard.model.key": "scripted-small",
            "gen_ai.agent.name": "support",
            "gen_ai.agent.version": "support@1.0.0+b49e000",
            "gen_ai.conversation.id": uuid.uuid4().hex[:16],
            "shipyard.interaction_id": interaction_id,
            "shipyard.traffic_source": "production",
            "shipyard.feature_flags": ["instant_store_credit=off:STATIC"],
            "shipyard.status": "completed",
            "gen_ai.usage.input_tokens": 2590,
            "gen_ai.usage.output_tokens": 49,
            "shipyard.cost_usd": 0.00039045,
        },
    )
    return [*spans, agent]


def make_record(i: int) -> InteractionRecord:
    trace = new_id()
    rid = new_id()
    now = time.time()
    return InteractionRecord(
        id=rid,
        trace_id=trace,
        session_id=f"s{i % 500}",
        user_id=f"u{i % 97}",
        agent="support",
        version="support@1.0.0+b49e000",
        traffic_source="production",
        input="Where is my order 10001? It was supposed to arrive on Monday.",
        output="Order 10001 shipped yesterday and should arrive tomorrow. Anything else I can help with?",
        status="completed",
        latency_ms=80.0 + i % 50,
        input_tokens=2590,
        output_tokens=49,
        cached_input_tokens=366,
        cost_usd=0.00039045,
        tool_calls=[
            ToolCallRecord(
                "lookup_order",
                {"order_id": "10001"},
                "success",
                3.2,
                result={
                    "order_id": "10001",
                    "status": "shipped",
                    "eta": "tomorrow",
                    "items": [{"sku": "A-1"}],
                },
            )
        ],
        llm_calls=[
            LLMCallRecord(
                "scripted-small", "scripted", 24.0, 1197, 23, 0, 0.00019335, tool_calls=["lookup_order"]
            ),
            LLMCallRecord("scripted-small", "scripted", 24.0, 1393, 26, 366, 0.0001971),
        ],
        guardrails=[
            {"name": "prompt_injection", "stage": "input", "verdict": "allow", "score": 0.05},
            {"name": "pii", "stage": "output", "verdict": "allow"},
        ],
        metadata={
            "flags": [{"flag": "instant_store_credit", "variant": "off", "reason": "STATIC"}],
            "tools_called": ["lookup_order"],
            "steps": 2,
            "ledger": {"features": ["guardrails"], "savings": {"cache": 0.0001}},
        },
        created_at=now,
        spans=make_spans(trace, rid, int(now * 1e9)),
    )


def reference_write(store: Store, records: list[InteractionRecord]) -> None:
    """The write path before issue 14, the reference measured in the same run: SQLAlchemy Core
    INSERT ... ON CONFLICT DO NOTHING run with executemany on dict rows for interactions and spans
    (psycopg sends one statement per row, pipelined), the ledger as it was (one prepared statement)."""
    interactions = [
        {
            **{
                c: getattr(r, c)
                for c in INTERACTION_COLUMNS
                if c not in ("thumbs", "score", "comment", "feedback_at")
            },
            "thumbs": None,
            "score": None,
            "comment": None,
            "feedback_at": None,
        }
        for r in records
    ]
    spans = [{c: getattr(s, c) for c in SPAN_COLUMNS} for r in records for s in r.spans]
    ledger: list[Rows] = []
    store._write_ledger(ledger, records)
    with store.engine.begin() as conn:
        conn.execute(store.backend.insert(interactions_table).on_conflict_do_nothing(), interactions)
        conn.execute(store.backend.insert(spans_table).on_conflict_do_nothing(), spans)
        for rows in ledger:
            insert_rows(conn, rows)


def _backend_cpu(dsn: str | None, name: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends of connections named `name` (this machine's
    /proc); 0 without `dsn` (SQLite runs in this process)."""
    if dsn is None:
        return 0.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
        ]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


class _Run:
    """One measurement: interactions/s, and CPU µs per interaction here and in PostgreSQL."""

    def __init__(self, n: int, seconds: float, here_s: float, server_s: float) -> None:
        self.rate = n / seconds
        self.here = here_s / n * 1e6
        self.server = server_s / n * 1e6

    @staticmethod
    def combine(a: _Run, b: _Run) -> _Run:
        """Two runs of `n` interactions each as one."""
        run = _Run(1, 1.0, 0.0, 0.0)
        run.rate = 2 / (1 / a.rate + 1 / b.rate)
        run.here, run.server = (a.here + b.here) / 2, (a.server + b.server) / 2
        return run

    def cpu(self) -> str:
        server = f" + {self.server:,.0f} µs in PostgreSQL" if self.server else ""
        return f"CPU per interaction {self.here:,.0f} µs here{server}"


def _timed(
    write: Callable[[list[InteractionRecord]], object],
    records: list[InteractionRecord],
    batch: int,
    server_cpu: Callable[[], float],
) -> _Run:
    """Write `records` in batches of `batch`; what it took."""
    s0, t0, c0 = server_cpu(), time.perf_counter(), time.process_time()
    for start in range(0, len(records), batch):
        write(records[start : start + batch])
    wall, here = time.perf_counter() - t0, time.process_time() - c0
    return _Run(len(records), wall, here, server_cpu() - s0)


def bench(label: str, url: str, n: int, batch: int, admin_dsn: str | None = None) -> None:
    """Measure one database. `admin_dsn`: PostgreSQL, to read its backends' CPU (named in `url`)."""
    name = f"bench_store_{uuid.uuid4().hex[:8]}"
    if admin_dsn is not None:
        url = f"{url}&application_name={name}"
    server_cpu = functools.partial(_backend_cpu, admin_dsn, name)
    spans_per = len(make_record(0).spans)
    store = Store(url)
    reference = functools.partial(reference_write, store)
    for write in (reference, store.write_interactions):  # warm both paths
        write([make_record(i) for i in range(batch)])
    # in alternating halves, so neither path is measured on a bigger database than the other
    halves = [
        _timed(write, [make_record(i) for i in range(n // 2)], batch, server_cpu)
        for _ in range(2)
        for write in (reference, store.write_interactions)
    ]
    ref, direct = (_Run.combine(halves[k], halves[k + 2]) for k in (0, 1))

    records = [make_record(i) for i in range(n)]
    writer = BatchWriter(store, batch_size=batch, flush_interval_ms=200)
    s0, c0, t0 = server_cpu(), time.process_time(), time.perf_counter()
    for r in records:
        writer.submit(r)
    submitted = time.perf_counter() - t0
    writer.close()
    through = _Run(n, time.perf_counter() - t0, time.process_time() - c0, server_cpu() - s0)
    assert writer.stats()["written"] == n, writer.stats()
    assert store.count_interactions() == 2 * (n // 2) * 2 + n + 2 * batch

    t0 = time.perf_counter()
    for _ in range(200):
        store.list_interactions(agent="support", limit=50)
    reads = 200 / (time.perf_counter() - t0)
    store.close()
    # what a free core for this process (and one for PostgreSQL) would take: the busier side bounds it
    capacity = 1e6 / max(through.here, through.server) * spans_per
    print(
        f"{label:<11} reference (the write path before), batches of {batch}: {ref.rate:>6,.0f} interactions/s = "
        f"{ref.rate * spans_per:>7,.0f} spans/s; {ref.cpu()}\n"
        f"{'':<11} Store.write_interactions, batches of {batch}:   {direct.rate:>6,.0f} interactions/s = "
        f"{direct.rate * spans_per:>7,.0f} spans/s (x{direct.rate / ref.rate:.2f} the reference's); {direct.cpu()}\n"
        f"{'':<11} BatchWriter end to end:                     {through.rate:>6,.0f} interactions/s = "
        f"{through.rate * spans_per:>7,.0f} spans/s (x{through.rate / ref.rate:.2f}); {through.cpu()}; "
        f"submit() {submitted / n * 1e6:.1f} µs\n"
        f"{'':<11} BatchWriter's CPU bound (a free core for this process, and one for PostgreSQL): "
        f"{capacity:,.0f} spans/s; list 50: {reads:,.0f}/s",
        flush=True,
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
    ap.add_argument("--n", type=int, default=5000, help="interactions per measurement")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    spans = len(make_record(0).spans)
    print(
        f"store insert throughput, {args.n} interactions (each with {spans} spans, 2 ledger rows) per measurement"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.n, args.batch)
    with_pg_schema(args.pg, lambda url: bench("postgresql", url, args.n, args.batch, args.pg))
    print("target (issue 14): >= 10,000 spans/s into PostgreSQL through the BatchWriter")


if __name__ == "__main__":
    main()
