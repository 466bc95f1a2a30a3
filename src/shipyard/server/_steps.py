"""The server's part of the request pipeline (DESIGN.md §4), as ordered lists of small steps.

The runtime owns the agent part (`assign_version → start_trace → run_agent → record`). The server
adds named SLOTS around it that later capabilities fill by replacing the step of the same name
(`pipeline.replace("input_guardrails", step)`); here they do nothing:

    assign_version → start_trace → input_guardrails → budget_check → cache_lookup → run_agent
    → output_guardrails → record

After the runtime, the server's RECORD_STEPS run in order: the journal first (so the record is on
disk before the response is sent), then metrics, the KPI window and the event log. None waits on I/O.
Each step runs on its own: one that raises is logged (`record_step_failed`) and the others still run.
A record the journal cannot encode is journalled sanitized, with the error noted (`_sanitize`); only
when the journal cannot take the record at all does the caller hear of it (`NotRecorded`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shipyard.observe import log_event
from shipyard.server._sanitize import sanitized
from shipyard.store import InteractionRecord

if TYPE_CHECKING:
    from shipyard.runtime import Exchange, Pipeline, Runtime
    from shipyard.server._state import ServerState


async def input_guardrails(ex: Exchange, rt: Runtime) -> None:
    """Slot: input checks (prompt injection); a block sets `ex.result` and `ex.status = "blocked"`."""


async def budget_check(ex: Exchange, rt: Runtime) -> None:
    """Slot: refuse or downgrade when the budget is spent."""


async def cache_lookup(ex: Exchange, rt: Runtime) -> None:
    """Slot: answer from the exact / semantic cache by setting `ex.result`."""


async def output_guardrails(ex: Exchange, rt: Runtime) -> None:
    """Slot: output checks (PII, policy) on `ex.result` before it is recorded."""


SLOTS_BEFORE_AGENT = [
    ("input_guardrails", input_guardrails),
    ("budget_check", budget_check),
    ("cache_lookup", cache_lookup),
]
SLOTS_AFTER_AGENT = [("output_guardrails", output_guardrails)]


def install_slots(pipeline: Pipeline) -> None:
    """Insert the slots around `run_agent` (once; slots already present are left alone)."""
    for name, step in SLOTS_BEFORE_AGENT:
        if name not in pipeline.names:
            pipeline.insert_before("run_agent", name, step)
    for name, step in reversed(SLOTS_AFTER_AGENT):
        if name not in pipeline.names:
            pipeline.insert_after("run_agent", name, step)


RecordStep = Callable[["ServerState", InteractionRecord], None]


class NotRecorded(Exception):
    """The journal could not take an interaction's record: the agent ran, but nothing durable holds it."""

    def __init__(self, record: InteractionRecord, reason: str) -> None:
        super().__init__(f"interaction {record.id} was not journalled: {reason}")
        self.record = record
        self.reason = reason


def journal(state: ServerState, record: InteractionRecord) -> None:
    """Append to the local journal: one write() to the OS, before the response goes out. A record
    that cannot be encoded as it is (a value orjson refuses) is journalled sanitized instead."""
    try:
        state.journal.append(record)
    except OSError:
        raise  # the disk refused: sanitizing would not help
    except Exception as e:
        error = f"the record could not be encoded ({type(e).__name__}: {e}); values were made safe"
        log_event("record_sanitized", level="error", interaction_id=record.id, error=error[:500])
        state.journal.append(sanitized(record, error))


def metrics(state: ServerState, record: InteractionRecord) -> None:
    state.metrics.observe_interaction(record)


def kpi_window(state: ServerState, record: InteractionRecord) -> None:
    state.window.add(record)


def log(state: ServerState, record: InteractionRecord) -> None:
    state.log_interaction(record)


def kill_switch(state: ServerState, record: InteractionRecord) -> None:
    """Watch the tool error rates that flags' kill switches guard (a trip turns the flag off)."""
    if state.kill_switch is not None and record.tool_calls:
        state.kill_switch.observe(record)


RECORD_STEPS: list[tuple[str, RecordStep]] = [
    ("journal", journal),
    ("metrics", metrics),
    ("kpi_window", kpi_window),
    ("log", log),
    ("kill_switch", kill_switch),
]


def run_record_steps(state: ServerState, record: InteractionRecord) -> None:
    """Run every record step on `record`, each on its own: a failing step is logged and the rest
    still run. Raises NotRecorded afterwards when the journal step failed."""
    journal_error: str | None = None
    for name, step in RECORD_STEPS:
        try:
            step(state, record)
        except Exception as e:
            error = f"{type(e).__name__}: {e}"[:500]
            log_event(
                "record_step_failed",
                level="error",
                step=name,
                interaction_id=record.id,
                trace_id=record.trace_id,
                error=error,
            )
            if name == "journal":
                journal_error = error
    if journal_error is not None:
        raise NotRecorded(record, journal_error)
