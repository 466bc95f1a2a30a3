"""What redaction at rest and the tool-call checks cost per interaction.

Runs the demo agent (offline, scripted model) through the real runtime for a few kinds of message,
keeps each interaction's exchange, then times, per interaction:
- masking at rest (`ContentMask.keep`: the record and copies of its spans, personal data replaced),
  with plain messages and with messages full of personal data, every text new (cold: the figure for
  unique user content) and seen before (warm: repeated tool results and replies hit the cache);
- the demo's refund policy (`tool_policy`, a tool_call check) on a process_refund call.
Prints p50 / p99 in microseconds of CPU (process time, one core).

    .venv/bin/python benchmarks/bench_redaction_at_rest.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.guardrails import GuardrailInput, ToolPolicy
from shipyard.runtime import ContentMask, Exchange, Pipeline, Runtime

PLAIN = [
    "Where is my order 10001?",
    "Please refund order 10002, it arrived broken",
    "How long do refunds take?",
    "This is unacceptable, I want to talk to a human!",
]
PERSONAL = [
    "Where is my order 10001? Email me at jane.roe@example.org or call +1 650-253-0000.",
    "Refund order 10002 to card 4111 1111 1111 1111, I live at 1600 Amphitheatre Parkway, Mountain View",
    "My IBAN is DE89 3704 0044 0532 0130 00 and SSN 078-05-1120, how long do refunds take?",
    "Call me back on +44 20 7946 0958 ext. 12, this is unacceptable!",
]


async def exchanges(texts: list[str]) -> tuple[Runtime, list[Exchange]]:
    kept: list[Exchange] = []

    async def keep(ex: Exchange, rt: Runtime) -> None:
        kept.append(ex)

    def extend(p: Pipeline) -> None:
        p.insert_before("record", "bench_keep", keep)

    cfg = load_config(copy_project(Path(tempfile.mkdtemp())) / "shipyard.yaml")
    rt = Runtime(cfg, extend_pipeline=extend)
    for text in texts:
        await rt.invoke("support", text, version="1.0.0")
    return rt, kept


def cpu_us(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.process_time_ns()
        fn()
        out.append((time.process_time_ns() - t0) / 1000)
    return out


def line(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{label:<58} p50 {statistics.median(ordered):8.1f} µs   p99 {p99:8.1f} µs"


async def main(repeat: int) -> None:
    masks = {
        "masking off (unmasked_pii)": lambda: ContentMask(False),
        "masking on, every text new (cold)": lambda: ContentMask(True),  # a fresh cache each time
        "masking on, texts seen before (warm cache)": lambda m=ContentMask(True): m,
    }
    for name, texts in (("plain", PLAIN), ("personal data", PERSONAL)):
        rt, kept = await exchanges(texts)
        for label, mask in masks.items():
            samples: list[float] = []
            for ex in kept:
                assert ex.full is not None and ex.root is not None
                spans = [*ex.trail.spans, ex.root]
                record = ex.full
                samples += cpu_us(lambda r=record, s=spans, m=mask: m().keep(r, s), repeat)  # type: ignore[misc]
            print(line(f"{name}: {label}", samples))
        await rt.aclose()

    rt, kept = await exchanges(["Please refund order 10002, it arrived broken"])
    [policy] = [g for g in rt.guardrails("support").tool_call if g.name == "refund_policy"]
    assert isinstance(policy, ToolPolicy)
    ex = kept[0]
    earlier = ex.trail.tool_calls[:-1]
    refund = ex.trail.tool_calls[-1]
    inp = GuardrailInput(
        agent="support",
        stage="tool_call",
        text="",
        user_input=ex.user_input,
        tool_calls=earlier,
        tool=refund.name,
        arguments=refund.arguments,
    )
    assert policy.check(inp).verdict.value == "allow"
    print(
        line(
            "refund_policy on process_refund (tool_call check)",
            cpu_us(lambda: policy.check(inp), repeat * 10),
        )
    )
    await rt.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=200, help="timings per interaction")
    asyncio.run(main(parser.parse_args().repeat))
