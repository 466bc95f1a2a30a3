"""Kill switches trip on the guarded tools' error rate, record the decision, and publish the change."""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
from pathlib import Path
from typing import Any

from records import interaction

from shipyard.flags import FlagAdmin, FlagStore, KillSwitchMonitor, Reason, load_flag_file, parse_flag_set
from shipyard.flags._killswitch import SLICES
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
    """An interaction at `at` that made these (tool, status) calls."""
    return interaction(
        created_at=at, tool_calls=[ToolCallRecord(name, {}, status, 1.0) for name, status in calls]
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


def rule_doc(min_calls: int, rate: float) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    doc["flags"]["new_refund_flow"]["metadata"]["killSwitch"].update(minCalls=min_calls, toolErrorRate=rate)
    return doc


def test_memory_stays_bounded_at_any_traffic_rate_and_the_numbers_stay_exact() -> None:
    store = FlagStore(parse_flag_set(DOC))
    monitor = KillSwitchMonitor(store)
    refund = "process_refund"
    tracemalloc.start()
    try:
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        # 30,000 guarded calls over 150 s of a 300 s window (200 a second), 10% failed: healthy
        for i in range(30_000):
            status = "error" if i % 10 == 0 else "success"
            assert monitor.observe_calls([(refund, status)], at=1_000.0 + i * 0.005) == []
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 50_000, f"{held:,} bytes held for 30,000 calls in the window"
    # then the tool starts failing: it trips once 20% of every call in the window failed, exactly
    decisions = []
    for i in range(10_000):
        decisions = monitor.observe_calls([(refund, "error")], at=1_150.0 + i * 0.005)
        if decisions:
            break
    (d,) = decisions
    assert (d.calls, d.errors) == (33_750, 6_750)  # (3,000 + 3,750) / (30,000 + 3,750) = 20%


def test_a_call_counts_for_the_whole_window_and_leaves_within_one_slice_after() -> None:
    window = 300.0
    for later, trips in [(window, True), (window + window / SLICES + 0.001, False)]:
        store = FlagStore(parse_flag_set(rule_doc(min_calls=2, rate=0.5)))
        monitor = KillSwitchMonitor(store)
        assert monitor.observe_calls([("process_refund", "error")], at=1_000.0) == []  # 1 call < minCalls
        decisions = monitor.observe_calls([("process_refund", "success")], at=1_000.0 + later)
        assert bool(decisions) is trips, later
        if trips:
            assert (decisions[0].calls, decisions[0].errors) == (2, 1)


def test_a_late_record_counts_in_its_own_slice() -> None:
    store = FlagStore(parse_flag_set(rule_doc(min_calls=3, rate=1.0)))
    monitor = KillSwitchMonitor(store)
    assert monitor.observe_calls([("process_refund", "error")], at=1_100.0) == []
    assert monitor.observe_calls([("process_refund", "error")], at=1_060.0) == []  # finished earlier
    (d,) = monitor.observe_calls([("process_refund", "error")], at=1_100.5)
    assert (d.calls, d.errors) == (3, 3)
