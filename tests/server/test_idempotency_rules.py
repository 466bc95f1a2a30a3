"""Idempotency-Key never gets around the rules, and never makes an answer untrue: a non-admin who
chooses a version gets 403 whatever the key's state (stored, unknown, or the store unreachable), and
the 500 of an interaction whose record could not be saved says what a retry will do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from server_helpers import HTTP, Served

from shipyard.server import _steps, create_key
from shipyard.server._idempotency import keys_of
from shipyard.store import Store

INVOKE = "/v1/agents/support/invoke"
ASK = {"input": "Where is my order 10001?"}


def post(served: Served, body: dict[str, Any], key: str | None = None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    return HTTP.post(f"{served.url}{INVOKE}", json=body, headers=headers, timeout=120)


def test_choosing_a_version_is_403_for_a_non_admin_whatever_the_key(
    serve_project: Callable[..., Served], store: Store
) -> None:
    served = serve_project(store=store)
    admin = {"Authorization": f"Bearer {create_key(store, 'admin')['key']}"}
    invoker = {"Authorization": f"Bearer {create_key(store, 'invoke')['key']}"}
    served.state.keys.refresh()
    first = post(served, dict(ASK), "order-10001", **invoker)
    assert first.status_code == 200, first.text
    # a retry with the stored key that also chooses a version: the version rule, not the key, answers
    for body, headers in [
        ({**ASK, "version": "1.1.0"}, {}),
        (dict(ASK), {"X-Shipyard-Version": "1.1.0"}),
    ]:
        r = post(served, body, "order-10001", **invoker, **headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "permission_error" and "Idempotent-Replayed" not in r.headers
    # a new key that chooses a version: 403, and the key stays free for a corrected request
    r = post(served, {**ASK, "version": "1.1.0"}, "fresh-key", **invoker)
    assert r.status_code == 403, r.text
    fixed = post(served, dict(ASK), "fresh-key", **invoker)
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers
    # the store is unreachable: the key cannot be checked, but the version rule needs no store
    keeper = keys_of(served.state)
    down = Store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", migrate=False)
    keeper.store = down
    try:
        refused = post(served, {**ASK, "version": "1.1.0"}, "order-10001", **invoker)
        allowed = post(served, {**ASK, "version": "1.1.0"}, "admin-key", **admin)
    finally:
        keeper.store = store
        down.close()
    assert refused.status_code == 403, refused.text
    assert allowed.status_code == 503, allowed.text  # an admin may, but the key cannot be checked now
    # an admin may choose a version with a key, and gets the answer replayed
    chosen = post(served, {**ASK, "version": "1.1.0"}, "admin-key", **admin)
    assert chosen.status_code == 200 and chosen.json()["version"].startswith("support@1.1.0+"), chosen.text
    again = post(served, {**ASK, "version": "1.1.0"}, "admin-key", **admin)
    assert again.content == chosen.content and again.headers["Idempotent-Replayed"] == "true"


def test_the_500_after_the_agent_ran_says_what_a_retry_does(
    serve_project: Callable[..., Served], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(state: Any, record: Any) -> None:
        raise OSError(28, "No space left on device")

    steps = list(_steps.RECORD_STEPS)
    monkeypatch.setattr(_steps, "RECORD_STEPS", [("journal", disk_full), *steps[1:]])
    served = serve_project(store=store)
    plain = post(served, dict(ASK))
    assert plain.status_code == 500, plain.text
    assert "A retry runs the agent again" in plain.json()["error"]["message"]
    keyed = post(served, dict(ASK), "disk-full-1")
    assert keyed.status_code == 500, keyed.text
    message = keyed.json()["error"]["message"]
    assert "A retry runs the agent again" not in message
    assert "same Idempotency-Key gets this answer again" in message
    retry = post(served, dict(ASK), "disk-full-1")  # and so it does: the agent does not run twice
    assert retry.status_code == 500 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["error"]["interaction_id"] == keyed.json()["error"]["interaction_id"]
