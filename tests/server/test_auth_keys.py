"""When a server is open, and when it needs a key: revoking the last key never opens it, a server
bound beyond loopback needs a key before the first one exists, `--no-auth` is loopback only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from auth_helpers import shipyard, shipyard_serve
from cli_runner import invoke_cli
from server_helpers import HTTP, Served, free_port

from shipyard.config import ShipyardConfig
from shipyard.errors import ShipyardError
from shipyard.server import ServerState, create_key


def test_revoking_the_last_key_never_opens_the_server(served: Served) -> None:
    anon = served.client()
    # loopback and no key ever made: open, and the first key can be made over HTTP
    made = anon.post("/admin/keys", json={"role": "admin", "name": "first"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert anon.get("/admin/keys").status_code == 401  # a key exists: auth is on at once
    with served.client(key) as admin:
        assert admin.delete(f"/admin/keys/{made.json()['prefix']}").json()["revoked_at"]
        assert admin.get("/admin/keys").status_code == 401  # revoked here: refused at once
    served.state.keys.refresh()  # what the server does every AUTH_REFRESH_S
    refused = anon.post("/admin/keys", json={"role": "admin"})
    assert refused.status_code == 401, refused.text
    message = refused.json()["error"]["message"]
    assert "no valid key" in message and "shipyard keys create --role admin" in message
    assert anon.post("/admin/flags/new_refund_flow/disable").status_code == 401
    assert served.state.keys.enabled


def test_a_server_beyond_loopback_needs_a_key_before_the_first_exists(
    serve_project: Callable[..., Served],
) -> None:
    served = serve_project(host="0.0.0.0")
    anon = served.client()
    r = anon.post("/admin/keys", json={"role": "admin"})
    assert r.status_code == 401 and "shipyard keys create --role admin" in r.json()["error"]["message"]
    assert anon.post("/v1/agents/support/invoke", json={"input": "hi"}).status_code == 401
    assert anon.get("/healthz").status_code == 200  # health stays open
    # the first key, made as the CLI makes it (straight into the store): taken at its first use
    out = invoke_cli("keys", "create", "--role", "admin", "--config", str(served.cfg.path))
    assert out.exit_code == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    with served.client(key) as admin:
        assert admin.get("/admin/keys").status_code == 200
        # beyond loopback the production gate is required too (rollout/_serving.py): the demo's
        # current version has none yet, so its production traffic is refused until it passes
        refused = admin.post("/v1/agents/support/invoke", json={"input": "hi"})
        assert refused.status_code == 503 and "has no production gate run" in refused.text
        _passed_gate(served)
        assert admin.post("/v1/agents/support/invoke", json={"input": "hi"}).status_code == 200
    assert anon.get("/admin/keys").status_code == 401


def _passed_gate(served: Served) -> None:
    """A PASS of the current version's production gate in the store, read by the server now."""
    from shipyard.evals import GATE_RULES
    from shipyard.server._rollout_api import rollouts

    store, version = served.state.store, served.state.rt.resolve_version("support").id
    run = store.create_eval_run("support", version, ["evals/support/broad.yaml"], stage="production")
    store.finish_eval_run(
        run, "finished", {"counts": {}}, {"verdict": "PASS", "reasons": [], "rules": GATE_RULES}
    )
    rollouts(served.state).assigner.refresh()


def test_no_auth_reopens_a_server_with_keys_on_loopback_only(
    serve_project: Callable[..., Served], demo_project: Callable[..., ShipyardConfig]
) -> None:
    with pytest.raises(ShipyardError, match="loopback only"):
        ServerState(demo_project(), host="0.0.0.0", no_auth=True)
    first = serve_project()
    key = create_key(first.state.store, "admin")
    first.state.store.revoke_api_key(key["prefix"])
    first.state.keys.refresh()
    assert first.client().get("/admin/keys").status_code == 401
    reopened = serve_project(no_auth=True)  # the same project and store, restarted with --no-auth
    assert reopened.client().get("/admin/keys").status_code == 200


def test_serve_cli_refuses_no_auth_beyond_loopback(demo_project: Callable[..., ShipyardConfig]) -> None:
    cfg = demo_project()
    refused = shipyard("serve", "--no-auth", "--host", "0.0.0.0", "-c", str(cfg.path))
    assert refused.returncode == 2 and "--no-auth is allowed on loopback only" in refused.stderr


def test_serve_cli_on_all_interfaces_needs_a_key(demo_project: Callable[..., ShipyardConfig]) -> None:
    cfg = demo_project()
    assert cfg.path is not None
    port = free_port()
    with shipyard_serve(cfg.path, "--host", "0.0.0.0", port=port):  # binds every interface, as asked
        r = HTTP.post(f"http://127.0.0.1:{port}/admin/keys", json={"role": "admin"}, timeout=60)
        assert r.status_code == 401, r.text
        assert "shipyard keys create" in r.json()["error"]["message"]
