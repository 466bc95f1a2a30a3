"""Kill switches trip on the guarded tools' error rate, record the decision, and publish the change."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.flags import FlagAdmin, FlagStore, KillSwitchMonitor, Reason, load_flag_file, parse_flag_set
from shipyard.store import InteractionRecord, ToolCallRecord

DOC = {
    "flags": {
        "new_refund_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
            "metadata": {
                "killSwitch": {
                    "toolErrorRate": 0.2,
                    "tools": ["process_refund"],
                    "minCalls": 20,
                    "window_s": 300,
                }
            },
        },
        "other": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
    }
}


def record(at: float, *calls: tuple[str, str]) -> InteractionRecord:
    return InteractionRecord(
        id=f"i{at}",
        trace_id="t",
        session_id="s",
        user_id="u",
        agent="support",
        version="support@1.0.0",
        traffic_source="production",
        input="refund please",
        output="ok",
        status="completed",
        latency_ms=10.0,
        tool_calls=[ToolCallRecord(name, {}, status, 1.0) for name, status in calls],
        created_at=at,
    )


def test_trips_when_the_error_rate_crosses_the_threshold() -> None:
    store = FlagStore(parse_flag_set(DOC))
    decisions = []
    monitor = KillSwitchMonitor(store, on_decision=decisions.append)
    t = 1_000.0
    # 19 calls with 5 errors: above 20% but below minCalls, and other tools do not count
    for i in range(19):
        status = "error" if i < 5 else "success"
        assert monitor.observe(record(t + i, ("process_refund", status), ("lookup_order", "error"))) == []
    assert store.evaluate("new_refund_flow", False).value is True
    (d,) = monitor.observe(record(t + 19, ("process_refund", "success")))
    assert (d.flag, d.action, d.calls, d.errors, d.threshold) == ("new_refund_flow", "disabled", 20, 5, 0.2)
    assert d.error_rate == 0.25 and d.tools == ["process_refund"] and d.window_s == 300
    assert "25.0%" in d.reason and "5/20 calls" in d.reason and "20.0%" in d.reason
    assert decisions == [d] and monitor.decisions == [d]
    details = store.evaluate("new_refund_flow", False)
    assert (details.value, details.reason) == (False, Reason.DISABLED)
    assert store.get("new_refund_flow").metadata["killSwitchTripped"]["errors"] == 5  # type: ignore[union-attr]
    assert store.evaluate("other", False).value is True
    # disabled flags are not watched any more
    assert monitor.observe(record(t + 20, *[("process_refund", "error")] * 30)) == []


def test_old_calls_leave_the_window_and_healthy_traffic_never_trips() -> None:
    store = FlagStore(parse_flag_set(DOC))
    monitor = KillSwitchMonitor(store)
    for i in range(10):
        monitor.observe(record(0.0 + i, ("process_refund", "error")))
    # 10 minutes later the old errors are gone: 30 calls with 3 errors (10%) does not trip
    for i in range(30):
        assert (
            monitor.observe(record(600.0 + i, ("process_refund", "error" if i % 10 == 0 else "success")))
            == []
        )
    assert store.evaluate("new_refund_flow", False).value is True


def test_a_trip_through_the_admin_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(DOC))
    store = FlagStore.from_file(path)
    monitor = KillSwitchMonitor(store, admin=FlagAdmin(path, store=store))
    (d,) = monitor.observe(record(5.0, *[("process_refund", "invalid_arguments")] * 20))
    on_disk = load_flag_file(path)
    flag = on_disk.flags["new_refund_flow"]
    assert flag.state == "DISABLED" and flag.metadata["killSwitchTripped"]["reason"] == d.reason
    assert on_disk.revision == 1 and store.revision == 1
    assert store.evaluate("new_refund_flow", False).reason == Reason.DISABLED
    # an operator re-enables it: the trip is cleared
    FlagAdmin(path, store=store).enable("new_refund_flow")
    assert "killSwitchTripped" not in load_flag_file(path).flags["new_refund_flow"].metadata
