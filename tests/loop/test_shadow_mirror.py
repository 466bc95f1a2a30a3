"""Mirroring live traffic to a candidate: the answer never waits for the mirrored replay, which runs in
the background as shadow traffic, runs no side-effecting tool, and stops at the day's spend cap."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from shadow_project import desk_project, llm_url
from waiting import wait_until

from shipyard.config import load_config
from shipyard.loop import ShadowMirror
from shipyard.runtime import Exchange, Pipeline, Runtime
from shipyard.server import create_app
from shipyard.store import InteractionRecord, Store

__all__ = ["llm_url"]  # the fixture, imported for pytest

MIRROR = """\
shadow:
  mirror:
    - {agent: desk, candidate: "2.0.0", percent: 100}
"""


async def test_the_answer_never_waits_for_the_mirror(tmp_path: Path, llm_url: str) -> None:
    release = asyncio.Event()
    mirrored_started = asyncio.Event()

    async def hold_shadow(ex: Exchange, rt: Runtime) -> None:  # a slow candidate, as long as the test says
        if ex.traffic_source == "shadow":
            mirrored_started.set()
            await release.wait()

    def extend(p: Pipeline) -> None:
        p.insert_before("run_agent", "hold_shadow", hold_shadow)

    with desk_project(tmp_path, llm_url, extra=MIRROR) as config:
        cfg = load_config(config)
        rt = Runtime(cfg, extend_pipeline=extend)
        kept: list[InteractionRecord] = []

        @contextlib.contextmanager
        def lease() -> Iterator[Runtime]:
            yield rt

        mirror = ShadowMirror(cfg.shadow, lease, kept.append)
        answered = await rt.interact("desk", "Please refund order 7", session_id="s1")
        assert mirror.offer(answered.full)
        await mirrored_started.wait()
        # the user has the answer while the mirrored replay is still held
        assert answered.full.output == "Order 7 is delivered and cost 20.0 USD."
        assert mirror.in_flight == 1 and kept == []
        release.set()
        await mirror.drain()
        await rt.aclose()
    [shadow] = kept
    assert shadow.traffic_source == "shadow" and shadow.version.startswith("desk@2.0.0")
    assert shadow.metadata["shadow"] == {
        "arm": "mirror",
        "of": answered.full.id,
        "trace": answered.full.trace_id,
    }
    assert [t.name for t in shadow.tool_calls] == ["lookup", "refund"]
    assert not (tmp_path / "refunds.log").exists()  # the candidate's refund never ran
    assert mirror.stats()["mirrored"] == 1


async def test_the_mirror_stops_at_the_days_spend_cap(tmp_path: Path, llm_url: str) -> None:
    extra = MIRROR.replace("shadow:\n", "shadow:\n  max_cost_usd: 0.0000001\n")
    with desk_project(tmp_path, llm_url, extra=extra) as config:
        cfg = load_config(config)
        rt = Runtime(cfg)
        kept: list[InteractionRecord] = []

        @contextlib.contextmanager
        def lease() -> Iterator[Runtime]:
            yield rt

        mirror = ShadowMirror(cfg.shadow, lease, kept.append)
        first = await rt.interact("desk", "Where is order 1?")
        assert mirror.offer(first.full)
        await mirror.drain()
        second = await rt.interact("desk", "Where is order 2?")
        assert not mirror.offer(second.full)  # the first replay spent the day's cap: fail closed
        await rt.aclose()
    assert len(kept) == 1 and mirror.stats()["skipped"]["budget"] == 1


def test_the_server_mirrors_live_traffic_as_shadow_records(tmp_path: Path, llm_url: str) -> None:
    with desk_project(tmp_path, llm_url, extra=MIRROR) as config:
        cfg = load_config(config)
        app = create_app(cfg, no_auth=True)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, "the server to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/agents/desk/invoke", json={"input": "Please refund order 9"}
        )
        assert r.status_code == 200, r.text
        served_id = r.json()["interaction_id"]
        store = Store.from_config(cfg)

        def mirrored() -> list[InteractionRecord]:
            return store.list_interactions(agent="desk", traffic_source="shadow", limit=None)

        wait_until(mirrored, "the mirrored replay to reach the store")
        server.should_exit = True
        thread.join(timeout=60)
        [shadow] = mirrored()
        store.close()
    assert shadow.metadata["shadow"]["of"] == served_id and shadow.version.startswith("desk@2.0.0")
    assert not (tmp_path / "refunds.log").exists()
