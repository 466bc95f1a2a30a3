"""Other websites get nothing from a server, open or not: the Host allow-list (DNS rebinding), JSON-only
writes, no cross-origin writes; and a server without keys answers on loopback only."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest
from server_helpers import HTTP, Served, free_port, run_in_thread

from shipyard.config import ShipyardConfig
from shipyard.server import create_app, create_key

EVIL = "https://evil.example"
FLAG = "/admin/flags/instant_store_credit"


def _flag_state(c: httpx.Client) -> str:
    return str(c.get(FLAG).json()["state"])


def test_a_cross_site_page_cannot_write(served: Served) -> None:
    host = served.url.removeprefix("http://")
    with served.client() as c:  # open: loopback, no key ever made
        assert _flag_state(c) == "ENABLED"
        # a <form enctype="text/plain"> posted by another site, as a browser sends it
        form = {"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
        r = c.post(f"{FLAG}/disable", content=b'{"x": "y"}', headers=form)
        assert r.status_code == 415 and r.json()["error"]["param"] == "content-type"
        r = c.post("/admin/keys", content=b'{"role": "admin"}', headers=form)
        assert r.status_code == 415
        # each check on its own: the body's type, the Origin, Sec-Fetch-Site
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = c.post("/admin/keys", content=b'{"role": "admin"}', headers={"Content-Type": kind})
            assert r.status_code == 415, kind
            assert "Content-Type: application/json" in r.json()["error"]["message"]
        r = c.post("/admin/keys", content=b'{"role": "admin"}')  # a body without a Content-Type
        assert r.status_code == 415
        for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
            r = c.post("/admin/keys", json={"role": "admin"}, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["param"] == "origin", headers
            r = c.post(f"{FLAG}/disable", headers=headers)  # no body at all: still refused
            assert r.status_code == 403, headers
        r = c.post("/v1/agents/support/invoke", json={"input": "hi"}, headers={"Sec-Fetch-Site": "same-site"})
        assert r.status_code == 403  # another port or subdomain of the same site is another origin
        assert _flag_state(c) == "ENABLED" and c.get("/admin/keys").json()["keys"] == []
        # the server's own pages, and clients that are not browsers, write as before
        same = {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        assert c.post(f"{FLAG}/disable", headers=same).status_code == 200
        assert c.post(f"{FLAG}/enable").status_code == 200  # no body, no Content-Type
        r = c.post("/v1/agents/support/invoke", json={"input": "hi"}, headers=same)
        assert r.status_code == 200
        r = c.post(
            "/v1/agents/support/invoke",
            content=b'{"input": "hi"}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 200


def test_cross_origin_writes_are_refused_with_keys_too(served: Served) -> None:
    admin = create_key(served.state.store, "admin")["key"]
    served.state.keys.refresh()
    with served.client(admin) as c:
        r = c.post("/admin/keys", json={"role": "read"}, headers={"Origin": EVIL})
        assert r.status_code == 403 and r.json()["error"]["param"] == "origin"
        r = c.post("/admin/keys", content=b'{"role": "read"}', headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert c.post("/admin/keys", json={"role": "read"}).status_code == 201


def test_a_rebound_name_reads_nothing(served: Served) -> None:
    port = served.url.rsplit(":", 1)[1]
    with served.client() as c:  # open: loopback, no key ever made
        for host in ("evil.example", f"evil.example:{port}", "localhost.evil.example"):
            r = c.get("/admin/interactions", headers={"Host": host})
            assert r.status_code == 400, host
            err = r.json()["error"]
            assert err["param"] == "host" and "server.allowed_hosts" in err["message"]
        r = c.post("/v1/agents/support/invoke", json={"input": "hi"}, headers={"Host": "evil.example"})
        assert r.status_code == 400
        allowed = (
            f"localhost:{port}",
            f"127.0.0.1:{port}",
            "127.0.0.2",
            f"[::1]:{port}",
            "app.localhost",
            "192.0.2.7:8000",  # an IP literal: a rebinding attack's Host is always a name
        )
        for host in allowed:
            assert c.get("/admin/interactions", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_names_the_servers_own_names(serve_project: Callable[..., Served]) -> None:
    served = serve_project(
        lambda text: text + '\nserver: {allowed_hosts: ["api.example.com", "*.corp.example"]}\n'
    )
    with served.client() as c:
        for host in ("api.example.com", "API.Example.com:443", "eu.corp.example"):
            assert c.get("/admin/interactions", headers={"Host": host}).status_code == 200, host
        for host in ("corp.example", "api.example.com.evil", "evil.example"):
            assert c.get("/admin/interactions", headers={"Host": host}).status_code == 400, host


def test_the_dashboard_still_works_from_its_own_origin(served: Served) -> None:
    host = served.url.removeprefix("http://")
    browser = {"Host": host, "Sec-Fetch-Site": "same-origin", "Accept": "application/json"}
    with served.client() as c:
        page = c.get("/dashboard", headers={**browser, "Sec-Fetch-Site": "none", "Accept": "text/html"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert c.get("/admin/api/dashboard/overview", headers=browser).status_code == 200
        # a cross-site page may send a GET, but the browser hides the answer (no CORS headers)
        r = c.get("/admin/api/dashboard/overview", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def _outside_address() -> str | None:
    """This machine's address on its default route, when it has one that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))  # no packet is sent: this only picks the route
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


def test_an_open_server_answers_loopback_connections_only(
    demo_project: Callable[..., ShipyardConfig],
) -> None:
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    app = create_app(demo_project(), log_stream=None, configure_logs=False)  # told: loopback (default)
    port = free_port()
    server, thread = run_in_thread(app, port, host="0.0.0.0")  # but bound wider by mistake
    try:
        r = HTTP.get(f"http://{address}:{port}/admin/keys", timeout=60)
        assert r.status_code == 403 and "loopback only" in r.json()["error"]["message"]
        assert HTTP.get(f"http://127.0.0.1:{port}/admin/keys", timeout=60).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=60)
