"""Incidents: what the watcher costs on the record path, and how fast it and a backfill work.

1. Record path: the time `IncidentWatcher.submit` takes per record (what an answer waits for), against
   the BatchWriter's `submit` (the record path's existing queue put) measured in the same run; ratio.
2. Worker: records the watcher looks at per second (sources, rules, grouping, store writes) on SQLite,
   with a mix of good, failed, escalated and tool-policy-refused interactions.
3. Backfill: stored interactions per second through the sources and rules (`incidents rules backfill`),
   the first time and again (everything already recorded).

    .venv/bin/python benchmarks/bench_incidents.py [--records 4000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from shipyard.config import IncidentsConfig
from shipyard.loop import IncidentWatcher, backfill
from shipyard.store import BatchWriter, InteractionRecord, Store, ToolCallRecord, new_id

QUESTIONS = [
    "Where is my order {n}?",
    "Refund order {n} please",
    "Can I return order {n}, it arrived broken",
    "I want to speak to a manager about order {n}",
]


def _records(n: int) -> list[InteractionRecord]:
    out = []
    t0 = time.time() - 3600
    for i in range(n):
        kind = i % 8
        status = {1: "failed", 2: "escalated"}.get(kind, "completed")
        guard = (
            [{"name": "refund_policy", "kind": "tool_policy", "stage": "tool_call", "verdict": "block",
              "reason": "no eligibility check", "tool": "process_refund"}]
            if kind == 3 else []
        )  # fmt: skip
        out.append(
            InteractionRecord(
                id=new_id(),
                trace_id=new_id(),
                session_id=f"s{i // 3}",
                user_id=None,
                agent="support",
                version="support@1.0.0+abc",
                traffic_source="production",
                input=QUESTIONS[i % len(QUESTIONS)].format(n=10000 + i % 50),
                output="ok",
                status=status,
                latency_ms=100.0 + (i % 13) * 10,
                cost_usd=0.001 * (1 + i % 5),
                tool_calls=[
                    ToolCallRecord("lookup_order", {"order_id": str(10000 + i % 50)}, "success", 1.0)
                ],
                guardrails=guard,
                error="boom" if status == "failed" else None,
                metadata={"error_kind": "timeout"}
                if status == "failed"
                else {"tags": ["refund"] if kind == 5 else []},
                created_at=t0 + i * 0.5,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=4000)
    args = parser.parse_args()
    settings = IncidentsConfig.model_validate(
        {"rules": [{"name": "refunds", "when": {"tags": ["refund"]}, "sample": 0.5, "action": "review"}]}
    )
    records = _records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        writer = BatchWriter(store)
        t = time.perf_counter()
        for r in records:
            writer.submit(r)
        writer_put = (time.perf_counter() - t) / len(records)
        assert writer.flush(600)

        watcher = IncidentWatcher(settings.model_copy(update={"queue_size": len(records) + 1}), store)
        t = time.perf_counter()
        for r in records:
            watcher.submit(r)
        put = (time.perf_counter() - t) / len(records)
        assert watcher.drain(600)
        worked = time.perf_counter() - t
        watcher.close()
        incidents = store.count_incidents()
        store.close()

        fresh = Store(f"sqlite:///{Path(tmp) / 'fresh.db'}")
        fresh.write_interactions(records)
        t = time.perf_counter()
        first = backfill(fresh, settings)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        again = backfill(fresh, settings)
        again_s = time.perf_counter() - t
        fresh.close()
        writer.close()

    print(f"records: {len(records)}  incidents made: {incidents} (grouped)")
    print(f"record path: watcher.submit {put * 1e6:.2f} us/record vs BatchWriter.submit {writer_put * 1e6:.2f} "
          f"us/record (ratio {put / writer_put:.2f})")  # fmt: skip
    print(f"watcher worker: {len(records) / worked:,.0f} records/s looked at (SQLite)")
    print(f"backfill: {first.scanned / first_s:,.0f} interactions/s first ({first.opened} opened, "
          f"{first.grouped} grouped); {again.scanned / again_s:,.0f}/s again ({again.already} already recorded)")  # fmt: skip


if __name__ == "__main__":
    main()
