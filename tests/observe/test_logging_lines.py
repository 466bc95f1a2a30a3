"""JSON event lines are written without structlog, as its pipeline wrote them: the event's fields, then
`event`, `level` and `timestamp`, one line per event, nothing below the level; the readable form
(`json=False`) still goes through structlog's ConsoleRenderer."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from shipyard.observe import configure_logging, log_event
from shipyard.observe._logging import _logger

WHEN = 1_765_000_000.25  # an event may bring its own epoch time


def test_fields_then_event_level_and_timestamp_in_order() -> None:
    out = io.BytesIO()
    configure_logging(stream=out, level="debug")
    log_event("alert", level="warning", rule="p95", value=1.5, tags=["a"], timestamp=WHEN)
    _logger().info("tried %s times", 3, extra={"k": None})
    _logger().exception("failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert list(lines[0]) == ["rule", "value", "tags", "timestamp", "event", "level"]
    assert lines[0]["timestamp"] == "2025-12-06T05:46:40.250+00:00"
    assert lines[0]["event"] == "alert" and lines[0]["level"] == "warning"
    assert lines[1]["event"] == "tried 3 times" and lines[1]["extra"] == {"k": None}
    assert lines[2] == {
        "exc_info": True,
        "event": "failed",
        "level": "error",
        "timestamp": lines[2]["timestamp"],
    }
    configure_logging(stream=io.StringIO())


def test_methods_below_the_level_write_nothing() -> None:
    out = io.BytesIO()
    configure_logging(stream=out, level="error")
    for level in ("debug", "info", "warning"):
        log_event("quiet", level=level)
    _logger().critical("loud")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["loud"]
    configure_logging(stream=io.StringIO())


def test_json_lines_do_not_import_structlog_and_the_readable_form_does() -> None:
    code = (
        "import io, sys\nfrom shipyard.observe import configure_logging, log_event\n"
        "configure_logging(stream=io.BytesIO())\nlog_event('x')\nprint('structlog' in sys.modules)\n"
        "out = io.StringIO()\nconfigure_logging(json=False, stream=out)\nlog_event('readable', n=1)\n"
        "print(out.getvalue().strip())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    first, readable = done.stdout.splitlines()
    assert first == "False"
    assert "[info     ] readable" in readable and "n=1" in readable
