"""Keys through a PostgreSQL outage: known keys keep working, revocations seen before it still hold,
an unknown key is a 503 with Retry-After (never a 500); revocation through the API is at once here,
and another replica sees it at its next key refresh."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from auth_helpers import TcpProxy, pg_schema, pg_url
from server_helpers import Served

from shipyard.server import create_key
from shipyard.store import Store

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_through_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """The project's store is a fresh PostgreSQL schema reached through a proxy the test can cut."""
    with pg_schema() as schema:
        proxy = TcpProxy(("127.0.0.1", 5432))
        monkeypatch.setenv("SHIPYARD_DATABASE_URL", pg_url(proxy.port, schema))
        try:
            yield proxy
        finally:
            proxy.cut()


def test_known_keys_work_through_a_store_outage(
    serve_project: Callable[..., Served], pg_through_proxy: TcpProxy
) -> None:
    served = serve_project()
    store = served.state.store
    admin = create_key(store, "admin")["key"]
    invoker = create_key(store, "invoke")["key"]
    reader = create_key(store, "read")["key"]
    revoked = create_key(store, "invoke")
    store.revoke_api_key(revoked["prefix"])
    with Store(store.url) as elsewhere:  # made after this server last read the keys, as by the CLI
        unseen = create_key(elsewhere, "read")["key"]
    served.state.keys.refresh()
    before = served.client(unseen).get("/metrics")
    assert before.status_code == 200  # while the store answers, a key made elsewhere is found

    pg_through_proxy.cut()  # PostgreSQL is gone
    late = "shp_0badc0de_" + "x" * 43  # a well-formed key this server has never seen
    for _ in range(3):  # every request keeps its answer for as long as the outage lasts
        with served.client(invoker) as c:
            r = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"})
            assert r.status_code == 200, r.text
        assert served.client(reader).get("/metrics").status_code == 200
        assert served.client(admin).get("/admin/alerts").status_code == 200
        with served.client(admin) as c:  # a version's first use needs nothing from the store
            r = c.post(
                "/v1/agents/support/invoke", json={"input": "Where is my order 10001?", "version": "1.2"}
            )
            assert r.status_code == 200 and r.json()["version"].startswith("support@1.2.0+"), r.text
        assert served.client(invoker).get("/metrics").status_code == 403
        assert served.client(revoked["key"]).get("/metrics").status_code == 401
        assert served.client("not-a-key").get("/metrics").status_code == 401
        assert served.client().get("/metrics").status_code == 401
        unknown = served.client(late).get("/metrics")
        assert unknown.status_code == 503, unknown.text
        assert unknown.headers["retry-after"].isdigit()
        assert "key store is unreachable" in unknown.json()["error"]["message"]
    assert served.state.keys.store_error is not None


def test_revocation_is_at_once_here_and_at_the_next_refresh_elsewhere(
    serve_project: Callable[..., Served], pg_through_proxy: TcpProxy
) -> None:
    here = serve_project()
    there = serve_project()  # a second replica on the same store
    admin = create_key(here.state.store, "admin")["key"]
    victim = create_key(here.state.store, "read")
    here.state.keys.refresh()
    there.state.keys.refresh()
    assert there.client(victim["key"]).get("/metrics").status_code == 200
    with here.client(admin) as c:
        assert c.delete(f"/admin/keys/{victim['id']}").status_code == 200
    assert here.client(victim["key"]).get("/metrics").status_code == 401  # at once on this replica
    there.state.keys.refresh()  # the other replica's periodic refresh
    assert there.client(victim["key"]).get("/metrics").status_code == 401
    pg_through_proxy.cut()  # a revocation seen stays in force through an outage
    assert there.client(victim["key"]).get("/metrics").status_code == 401
    assert there.client(admin).get("/metrics").status_code == 200
