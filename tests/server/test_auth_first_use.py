"""An open loopback server closes at the first use of the first key, not at its next re-read of the key
rows: a keyless request right after the first keyed one is refused. Before that use, keyless requests
are still answered; a key the store does not hold never closes it; `--no-auth` stays open."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cli_runner import invoke_cli
from server_helpers import Served

from shipyard.server import create_key

ASK = {"input": "Where is my order 10001?"}
INVOKE = "/v1/agents/support/invoke"


@pytest.fixture
def no_periodic_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's periodic re-read of the key rows (every AUTH_REFRESH_S) does not run during the
    test, so only the key's first use can close the server."""
    monkeypatch.setattr("shipyard.server._state.AUTH_REFRESH_S", 3600.0)


def test_the_first_use_of_a_new_key_closes_an_open_server_at_once(
    no_periodic_refresh: None, serve_project: Callable[..., Served]
) -> None:
    served = serve_project()
    anon = served.client()
    assert anon.post(INVOKE, json=ASK).status_code == 200  # open: loopback, no key ever made
    out = invoke_cli("keys", "create", "--role", "invoke", "--config", str(served.cfg.path))
    assert out.exit_code == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    # made by the CLI straight into the store: not used yet, so keyless requests are still answered
    assert anon.post(INVOKE, json=ASK).status_code == 200
    assert served.state.keys.open
    with served.client(key) as keyed:
        first = keyed.post(INVOKE, json=ASK)
        assert first.status_code == 200, first.text
    refused = anon.post(INVOKE, json=ASK)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["message"] == "an API key is required: send 'Authorization: Bearer <key>'"
    assert anon.get("/admin/keys").status_code == 401
    with served.client(key) as keyed:
        assert keyed.post(INVOKE, json=ASK).status_code == 200
        assert keyed.get("/admin/keys").status_code == 403  # an invoke key is now checked as one


def test_a_first_key_without_the_role_closes_the_server_and_is_refused(
    no_periodic_refresh: None, serve_project: Callable[..., Served]
) -> None:
    served = serve_project()
    read_key = create_key(served.state.store, "read")["key"]  # what `shipyard keys create` writes
    with served.client(read_key) as reader:
        refused = reader.post(INVOKE, json=ASK)
        assert refused.status_code == 403, refused.text
        assert "role 'read'" in refused.json()["error"]["message"]
        assert reader.get("/metrics").status_code == 200
    assert served.client().post(INVOKE, json=ASK).status_code == 401


def test_keys_the_store_does_not_hold_leave_an_open_server_open(
    no_periodic_refresh: None, serve_project: Callable[..., Served]
) -> None:
    served = serve_project()
    for bogus in ("shp_0123abcd_" + "x" * 43, "not-a-shipyard-key", "shp_short_x"):
        with served.client(bogus) as c:
            assert c.post(INVOKE, json=ASK).status_code == 200, bogus
    assert served.state.keys.open
    assert served.client().post(INVOKE, json=ASK).status_code == 200


def test_a_key_never_used_closes_the_server_at_the_re_read(
    no_periodic_refresh: None, serve_project: Callable[..., Served]
) -> None:
    served = serve_project()
    create_key(served.state.store, "admin")
    assert served.client().post(INVOKE, json=ASK).status_code == 200  # not used, not re-read yet
    served.state.keys.refresh()  # what the server does every AUTH_REFRESH_S
    assert served.client().post(INVOKE, json=ASK).status_code == 401


def test_no_auth_stays_open_when_a_key_is_used(
    no_periodic_refresh: None, serve_project: Callable[..., Served]
) -> None:
    served = serve_project(no_auth=True)
    key = create_key(served.state.store, "invoke")["key"]
    with served.client(key) as keyed:
        assert keyed.post(INVOKE, json=ASK).status_code == 200
    assert served.client().get("/admin/keys").status_code == 200
