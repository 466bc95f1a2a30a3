"""Structured logs: one JSON line per lifecycle event (rendered with orjson), or one readable line.

Events: one `interaction` line per finished interaction (its model calls, tool calls and guardrail
verdicts as lists inside it: one encode, one write), `feedback`, and the server's own (`alert`,
`server_started`, ...). Fields people search by: timestamp, level, event, session_id, trace_id,
interaction_id, agent, version, result_status, latency_ms, tokens_used {input, output, cached},
cost_usd, and per call tool, arguments, model.

Message content and tool arguments are redacted unless content capture is on: text becomes
`"[redacted: N chars]"` and each argument value `"[redacted]"` (the argument names stay).

JSON lines (the default) are written by `_JsonLines`, the few lines of structlog's pipeline they use
(filtering by level, `level`, `timestamp`, orjson, one write per line), so a command does not import
structlog (which imports all of itself, Rich's tracebacks and Pygments included). The readable form
for a person at a terminal (`json=False`, what the CLI writes when stderr is one) is `_TextLines`:
the same logger, each event rendered as `HH:MM:SS level    event  key=value ...` on one line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from shipyard.store import InteractionRecord

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _State:
    capture = False
    logger: Any = None


def _timestamp(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """ISO-8601 UTC with milliseconds; an event may bring its own epoch time as `timestamp`."""
    ts = event.get("timestamp")
    when = ts if isinstance(ts, float) else time.time()
    event["timestamp"] = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    return event


def _orjson(_: Any, __: str, event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, default=str)


def configure_logging(
    *,
    json: bool = True,
    level: str = "info",
    stream: IO[Any] | None = None,
    content_capture: bool = False,
) -> None:
    """Set up the process's event log.

    Args:
        json: JSON lines (the default); False writes readable one-line events for a person at a terminal.
        level: debug | info | warning | error; events below it are dropped cheaply.
        stream: where lines go (default: standard output). A binary stream is written directly.
        content_capture: keep message content and tool arguments instead of redacting them.
    """
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, got {level!r}")
    out: Any = stream if stream is not None else sys.stdout
    binary: Any = getattr(out, "buffer", None) if not _is_binary(out) else out
    write = _bytes_writer(binary) if binary is not None else _text_writer(out)
    _State.logger = (_JsonLines if json else _TextLines)(write, _LEVELS[level])
    _State.capture = content_capture


class _JsonLines:
    """A logger writing one JSON line per event at or above `min_level`, as structlog's filtering bound
    logger with the processors add_log_level, `_timestamp` and `_orjson` did: the event's fields,
    then `event`, `level` and `timestamp`, in that order. Methods below the level do nothing."""

    def __init__(self, write: Callable[[bytes], None], min_level: int) -> None:
        self._write = write
        for name, number in (*_LEVELS.items(), ("exception", logging.ERROR), ("critical", logging.CRITICAL)):
            if number < min_level:
                setattr(self, name, _nop)

    def _emit(self, level: str, event: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        fields["event"] = event % args if args else event
        fields["level"] = level
        self._write(self._render(_timestamp(None, level, fields)))

    def _render(self, fields: dict[str, Any]) -> bytes:
        return _orjson(None, "", fields)

    def debug(self, event: str, *args: Any, **fields: Any) -> None:
        self._emit("debug", event, args, fields)

    def info(self, event: str, *args: Any, **fields: Any) -> None:
        self._emit("info", event, args, fields)

    def warning(self, event: str, *args: Any, **fields: Any) -> None:
        self._emit("warning", event, args, fields)

    def error(self, event: str, *args: Any, **fields: Any) -> None:
        self._emit("error", event, args, fields)

    def exception(self, event: str, *args: Any, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        self._emit("error", event, args, fields)

    def critical(self, event: str, *args: Any, **fields: Any) -> None:
        self._emit("critical", event, args, fields)


class _TextLines(_JsonLines):
    """`_JsonLines` for a person at a terminal: `08:35:20 warning  gate_overridden  audit=true
    agent=support reason="tests flaky"`, the local time of day, then the event's fields as key=value
    (None ones left out; a string plainly when it is one printable word, else JSON-quoted; other
    values as JSON), all on one line whatever the values hold."""

    def _render(self, fields: dict[str, Any]) -> bytes:
        when = datetime.fromisoformat(fields.pop("timestamp")).astimezone().strftime("%H:%M:%S")
        level, event = fields.pop("level"), _text_value(str(fields.pop("event")))
        pairs = "".join(
            f" {_text_value(str(k))}={_text_value(v)}" for k, v in fields.items() if v is not None
        )
        return f"{when} {level:<8} {event} {pairs}".rstrip().encode()


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value.isprintable() and value and not any(c in value for c in ' "=\\'):
        return value
    text = orjson.dumps(value, default=str).decode()  # escapes line breaks and other C0 controls
    return text if text.isprintable() else "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _nop(*_: Any, **__: Any) -> None:
    return None


def _bytes_writer(stream: IO[bytes]) -> Callable[[bytes], None]:
    """Writes one line to a binary stream, flushed, whole (a lock between threads)."""
    lock = threading.Lock()

    def write(line: bytes) -> None:
        with lock:
            stream.write(line + b"\n")
            stream.flush()

    return write


def _text_writer(stream: IO[str]) -> Callable[[bytes], None]:
    """For text streams without a binary buffer (e.g. io.StringIO): decode the orjson bytes."""

    def write(line: bytes) -> None:
        stream.write(line.decode() + "\n")
        stream.flush()

    return write


def _is_binary(stream: IO[Any]) -> bool:
    return "b" in getattr(stream, "mode", "") or not hasattr(stream, "encoding")


def _logger() -> Any:
    if _State.logger is None:
        configure_logging()
    return _State.logger


def redact_text(text: str | None) -> str | None:
    """The text itself with content capture on, else a summary of its length."""
    if text is None or _State.capture:
        return text
    return f"[redacted: {len(text)} chars]"


def redact_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Tool arguments with content capture on, else the argument names with redacted values."""
    if _State.capture:
        return arguments
    return dict.fromkeys(arguments, "[redacted]")


def log_event(event: str, *, level: str = "info", **fields: Any) -> None:
    """Emit one event line (for events that are not part of an interaction record)."""
    getattr(_logger(), level)(event, **fields)


def log_interaction(record: InteractionRecord) -> None:
    """Emit one `interaction` line for a finished interaction: who and what (ids, agent, version,
    traffic source, redacted input and output), how it ended (result_status, error), latency, tokens
    and cost, and its model calls, tool calls and guardrail verdicts as lists. Its level is error when
    the interaction failed, warning when one of its calls failed, else info."""
    llm_calls = [
        {
            "model": c.model,
            "provider": c.provider,
            "result_status": c.status,
            "latency_ms": round(c.duration_ms, 3),
            "tokens_used": {
                "input": c.input_tokens,
                "output": c.output_tokens,
                "cached": c.cached_input_tokens,
            },
            "cost_usd": round(c.cost_usd, 12),  # no float noise (5.295e-05, not 5.294999...e-05)
            "attempts": c.attempts,
            "error": c.error,
        }
        for c in record.llm_calls
    ]
    tool_calls = [
        {
            "tool": t.name,
            "arguments": redact_arguments(t.arguments),
            "result_status": t.status,
            "latency_ms": round(t.duration_ms, 3),
            "cached": t.cached,
            "error": t.error,
        }
        for t in record.tool_calls
    ]
    level = "info"
    if record.status == "failed":
        level = "error"
    elif any(c.status != "ok" for c in record.llm_calls) or any(
        t.status != "success" for t in record.tool_calls
    ):
        level = "warning"
    fields: dict[str, Any] = {
        "session_id": record.session_id,
        "trace_id": record.trace_id,
        "interaction_id": record.id,
        "agent": record.agent,
        "version": record.version,
        "traffic_source": record.traffic_source,
        "user_id": record.user_id,
        "result_status": record.status,
        "latency_ms": round(record.latency_ms, 3),
        "tokens_used": {
            "input": record.input_tokens,
            "output": record.output_tokens,
            "cached": record.cached_input_tokens,
        },
        "cost_usd": round(record.cost_usd, 12),
        "input": redact_text(record.input),
        "output": redact_text(record.output),
        "llm_calls": llm_calls,
        "tool_calls": tool_calls,
    }
    if record.guardrails:
        fields["guardrails"] = [
            {"guardrail": g.get("name"), "result_status": g.get("verdict")} for g in record.guardrails
        ]
    if record.status == "failed":
        fields["error"] = record.error
        fields["error_kind"] = record.metadata.get("error_kind")
    getattr(_logger(), level)("interaction", **fields)


def log_feedback(record: InteractionRecord) -> None:
    """Emit a `feedback` event for an interaction whose feedback was just recorded."""
    fb = record.feedback or {}
    _logger().info(
        "feedback",
        session_id=record.session_id,
        trace_id=record.trace_id,
        interaction_id=record.id,
        agent=record.agent,
        version=record.version,
        thumbs=fb.get("thumbs"),
        score=fb.get("score"),
        comment=redact_text(fb.get("comment")),
    )
