"""The server's record sinks: what the server does with each interaction's record after the runtime.

The runtime owns the whole request pipeline (`shipyard.runtime`, DESIGN.md §4), built once from the
config; the server adds no step to it, so it runs exactly what eval runs, `shipyard run`, the demo
and canary gates run. The runtime's `record` step builds the record and hands it to the runtime's
own sinks (`Runtime.sinks`: fire and forget, never raising). The server's RECORD_STEPS below run on
that record next, in the request, before the response is sent, because the journal's answer decides
the response (a record nothing durable holds is a 500 naming the interaction):

    journal → metrics → kpi_window → log → kill_switch → incidents

The journal comes first (so the record is on disk before the response is sent); none waits on I/O.
Each runs on its own: one that raises is logged (`record_step_failed`) and the others still run.
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
    from shipyard.server._state import ServerState


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


def incidents(state: ServerState, record: InteractionRecord) -> None:
    """Hand the record to the incident watcher (a queue put; it looks at it in its own thread)."""
    from shipyard.server._incidents_api import observe_record

    observe_record(state, record)


RECORD_STEPS: list[tuple[str, RecordStep]] = [
    ("journal", journal),
    ("metrics", metrics),
    ("kpi_window", kpi_window),
    ("log", log),
    ("kill_switch", kill_switch),
    ("incidents", incidents),
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
