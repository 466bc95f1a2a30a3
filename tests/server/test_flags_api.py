"""Flags on a running server: /admin/flags changes them, ctx.flags sees them, kill switches trip."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from server_helpers import Served

FLAGS = {
    "flags": {
        "new_refund_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
        },
        "guarded": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
            "metadata": {"killSwitch": {"toolErrorRate": 0.2, "tools": ["lookup_order"], "minCalls": 5}},
        },
    }
}


def served_with_flags(serve_project: Callable[..., Served]) -> Served:
    served = serve_project()
    # the flag file appears after start: the server picks it up by polling, within a few seconds
    (served.cfg.root / "flags.json").write_text(json.dumps(FLAGS))
    deadline = time.monotonic() + 120
    while "guarded" not in served.state.flags.names():
        assert time.monotonic() < deadline, "the server never loaded the new flag file"
        time.sleep(0.1)
    return served


def test_admin_flags_list_get_and_change(serve_project: Callable[..., Served]) -> None:
    served = served_with_flags(serve_project)
    with served.client() as c:
        assert sorted(f["name"] for f in c.get("/admin/flags").json()["flags"]) == [
            "guarded",
            "new_refund_flow",
        ]
        assert c.get("/admin/flags/new_refund_flow").json()["defaultVariant"] == "off"
        rolled = c.post("/admin/flags/new_refund_flow/rollout", json={"percent": 10}).json()
        assert rolled["targeting"]["fractional"]
        # this server's flag store sees the change at once, and it is written to the file
        on = sum(
            served.state.flags.evaluate("new_refund_flow", False, {"targetingKey": f"u{i}"}).value
            for i in range(2000)
        )
        assert 100 < on < 300
        assert "fractional" in (served.cfg.root / "flags.json").read_text()
        assert c.post("/admin/flags/new_refund_flow/disable").json()["state"] == "DISABLED"
        assert c.post("/admin/flags/new_refund_flow/enable").json()["state"] == "ENABLED"


def test_admin_flags_bad_input(serve_project: Callable[..., Served]) -> None:
    served = served_with_flags(serve_project)
    with served.client() as c:
        assert c.get("/admin/flags/nope").status_code == 404
        bad = c.post("/admin/flags/new_refund_flow/rollout", json={"percent": 150})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "percent"
        invalid = c.put(
            "/admin/flags/x", json={"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "of"}
        )
        assert invalid.status_code == 422 and "defaultVariant" in invalid.json()["error"]["message"]


def test_kill_switch_trips_on_tool_errors(serve_project: Callable[..., Served]) -> None:
    served = served_with_flags(serve_project)
    with served.client() as c:
        for i in range(8):  # unknown orders: lookup_order returns an error result
            r = c.post("/v1/agents/support/invoke", json={"input": f"Where is my order 9999{i}?"})
            assert r.status_code == 200
        flag = c.get("/admin/flags/guarded").json()
    assert flag["state"] == "DISABLED"
    assert flag["metadata"]["killSwitchTripped"]["error_rate"] >= 0.2
    assert '"kill_switch"' in served.logs.getvalue()
