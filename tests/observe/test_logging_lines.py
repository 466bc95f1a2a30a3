"""JSON event lines are written without structlog, as its pipeline wrote them: the event's fields, then
`event`, `level` and `timestamp`, one line per event, nothing below the level; the readable form
(`json=False`, for a person at a terminal) is the same logger rendering one line of its own, without
structlog either."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime

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


def test_neither_form_imports_structlog() -> None:
    code = (
        "import io, sys\nfrom shipyard.observe import configure_logging, log_event\n"
        "configure_logging(stream=io.BytesIO())\nlog_event('x')\nprint('structlog' in sys.modules)\n"
        "out = io.StringIO()\nconfigure_logging(json=False, stream=out)\nlog_event('readable', n=1)\n"
        "print('structlog' in sys.modules)\nprint(out.getvalue().strip())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    json_form, text_form, readable = done.stdout.splitlines()
    assert (json_form, text_form) == ("False", "False")
    assert readable.endswith(" info     readable  n=1"), readable


def test_the_readable_form_is_one_line_per_event_a_person_can_read() -> None:
    out = io.StringIO()
    configure_logging(json=False, stream=out, level="info")
    log_event(
        "gate_overridden",
        level="warning",
        timestamp=WHEN,
        audit=True,
        agent="support",
        step=0,
        actor=None,  # left out
        reason="incident 42: gate suite broken",
        gate_said={"support@1.2": ["no production gate run", None]},
        empty="",
        path="a=b",
    )
    log_event("quiet", level="debug")  # below the level, as for JSON lines
    log_event("injected", level="error", reason="line one\nfake_event level=error\x1b[2J\x9b", cost=0.25)
    _logger().exception("failed %s", "twice")
    lines = out.getvalue().splitlines()
    when = datetime.fromtimestamp(WHEN).strftime("%H:%M:%S")  # the local time of day, short
    assert lines[0] == (
        f"{when} warning  gate_overridden  audit=true agent=support step=0 "
        'reason="incident 42: gate suite broken" gate_said={"support@1.2":["no production gate run",null]} '
        'empty="" path="a=b"'
    )
    # a value's line breaks and terminal control characters are escaped: one line, nothing drawn
    assert lines[1].endswith(
        ' error    injected  reason="line one\\nfake_event level=error\\u001b[2J\\u009b" cost=0.25'
    )
    assert lines[2].endswith(' error    "failed twice"  exc_info=true')
    assert len(lines) == 3
    configure_logging(stream=io.StringIO())
