"""The request pipeline of DESIGN.md §4, built once from the config when a `Runtime` is made.

    assign_version → start_trace → input_guardrails → budget_check → cache_lookup → run_agent
    → output_guardrails → cache_store → record

A step whose capability the project does not configure is not in the chain at all (no do-nothing
slots): `input_guardrails` is there when some agent has input guardrails, `output_guardrails` when
some agent has output guardrails (an agent without any passes them at the cost of a lookup). The
`tool_call` and `tool_result` guardrails are not steps: `ctx.tools` runs them around each tool call
(`runtime/_guarding.ToolGate`). The `record` step also masks what is kept (`runtime/_at_rest.py`).
`cache_lookup` and `cache_store` are there when an answer cache (exact or semantic) is on
(`cache:`; `runtime/_caching.py`); `budget_check` is there when budgets are on
(`budgets:`; `runtime/_budgeting.py`). `Runtime.pipeline.names` says what runs. Every entry point
makes its runtime the same way, so the server, eval runs, `shipyard run`, the demo and canary gates
run the same steps; only the `traffic_source` differs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shipyard.runtime._guarding import input_guardrails, output_guardrails
from shipyard.runtime._pipeline import Pipeline, Step, assign_version, record, run_agent, start_trace

if TYPE_CHECKING:
    from shipyard.cache import Caches
    from shipyard.guardrails import AgentGuardrails

PIPELINE_ORDER: tuple[str, ...] = (
    "assign_version",
    "start_trace",
    "input_guardrails",
    "budget_check",
    "cache_lookup",
    "run_agent",
    "output_guardrails",
    "cache_store",
    "record",
)
"""Every step the runtime may build, in the order they run (DESIGN.md §4)."""


def build_pipeline(
    guardrails: Mapping[str, AgentGuardrails], caches: Caches | None = None, *, budgets: bool = False
) -> Pipeline:
    """The pipeline for a project whose agents have these guardrails (by agent name). The steps of
    budgets and answer caches are imported only for a project that has them."""
    available: dict[str, Step | None] = {
        "assign_version": assign_version,
        "start_trace": start_trace,
        "input_guardrails": input_guardrails if any(g.input for g in guardrails.values()) else None,
        "budget_check": None,
        "cache_lookup": None,
        "run_agent": run_agent,
        "output_guardrails": output_guardrails if any(g.output for g in guardrails.values()) else None,
        "cache_store": None,
        "record": record,
    }
    if budgets:
        from shipyard.runtime._budgeting import budget_check

        available["budget_check"] = budget_check
    if caches is not None and caches.answers:
        from shipyard.runtime._caching import cache_lookup, cache_store

        available["cache_lookup"], available["cache_store"] = cache_lookup, cache_store
    return Pipeline([(name, step) for name in PIPELINE_ORDER if (step := available[name]) is not None])
