"""A record the store refuses goes aside as a dead letter, with the reason; the records behind it are
stored, the server counts and alerts it, restarts with it, and `shipyard store dead-letters` shows
and retries it. On SQLite and PostgreSQL, with the real journal, store and server.

A refused record is made below the HTTP edge (the edge refuses NUL bytes): it is appended to the
journal directly, as the server's record step does."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from records import interaction
from server_helpers import HTTP, Served, free_port, run_in_thread
from typer.testing import CliRunner
from waiting import wait_until

from shipyard.cli import app as cli
from shipyard.server import (
    Journal,
    create_app,
    dead_letter_folder,
    encode,
    read_dead_letter_files,
)
from shipyard.server._dead_letters import write_dead_letter_file
from shipyard.store import DeadLetter, InteractionRecord, Store

AGENT = "support"


def refused(store: Store) -> InteractionRecord:
    """A record this database refuses, even sanitized: an integer neither can hold; on PostgreSQL
    with NUL bytes too (issue 8), which alone would be stored sanitized (U+FFFD)."""
    if store.dialect == "postgresql":
        return interaction(
            input="refund order 10002\x00 please", metadata={"note": "a\x00b"}, input_tokens=2**63
        )
    return interaction(input_tokens=2**63)


# the journal -------------------------------------------------------------------------------------
async def test_the_journal_moves_past_a_refused_record(tmp_path: Path, store: Store) -> None:
    seen: list[DeadLetter] = []
    journal = Journal(tmp_path / ".shipyard" / "journal", store, batch_size=16, on_dead_letter=seen.append)
    journal.open()
    bad = refused(store)
    good = [interaction() for _ in range(50)]
    journal.append(good[0])
    journal.append(bad)
    for r in good[1:]:
        journal.append(r)
    assert await journal.flush() == 51
    assert store.count_interactions() == 50 and journal.pending == 0
    assert journal.path is not None
    ckpt = journal.path.with_name(journal.path.name + ".ckpt")
    assert int(ckpt.read_text()) == journal.path.stat().st_size  # the checkpoint moved past it
    (letter,) = store.list_dead_letters()
    assert [d.id for d in seen] == [letter.id] and journal.dead_letter_of(bad.id) == seen[0]
    assert letter.record() == bad and letter.reason and letter.kind == "interaction"
    await journal.aclose()


async def test_a_dead_letter_goes_to_a_file_when_the_table_refuses_it_too(
    tmp_path: Path, store: Store
) -> None:
    with store.engine.begin() as conn:  # the table is gone (a half-migrated database, say)
        conn.exec_driver_sql("DROP TABLE dead_letters")
    journal = Journal(tmp_path / ".shipyard" / "journal", store)
    bad = refused(store)
    journal.append(bad)
    journal.append(interaction())
    assert await journal.flush() == 2
    assert store.count_interactions() == 1
    ((path, letter),) = read_dead_letter_files(dead_letter_folder(tmp_path))
    assert letter.record() == bad
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert orjson.loads(path.read_bytes())["store_error"]  # why the table could not take it
    await journal.aclose()


async def test_recovery_waits_for_an_unreachable_store_and_never_raises(tmp_path: Path, store: Store) -> None:
    jdir = tmp_path / ".shipyard" / "journal"
    jdir.mkdir(parents=True)
    dead = jdir / "1-999-dead.journal"
    dead.write_bytes(b"".join(encode(interaction()) for _ in range(3)))
    down = Store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", migrate=False)
    journal = Journal(jdir, down, flush_interval_s=0.01)
    try:
        assert journal.recover() == 0  # no exception: the server starts
    finally:
        down.close()
    assert dead.exists()  # kept for when the store is back
    journal.store = journal.dead_letters.store = store  # the database is back
    mover = asyncio.create_task(journal.run())
    try:
        for _ in range(12_000):  # the mover loads it (the bound only stops a hung test)
            if not dead.exists():
                break
            await asyncio.sleep(0.01)
    finally:
        mover.cancel()
    assert store.count_interactions() == 3 and not dead.exists()


# the server --------------------------------------------------------------------------------------
@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback (in its own thread); yields its URL and what it received."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post("/hook", hook)
    port = free_port()
    runner_box: list[Any] = []
    loop = asyncio.new_event_loop()

    async def start() -> None:
        runner = web.AppRunner(web_app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runner_box.append(runner)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    yield f"http://127.0.0.1:{port}/hook", received
    asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=60)


def with_webhook(url: str) -> Callable[[str], str]:
    return lambda text: text + f"\nalerts:\n  interval_s: 1\n  webhooks: [{url}]\n"


def alert_state(served_url: str) -> dict[str, Any]:
    rules = HTTP.get(f"{served_url}/admin/alerts", timeout=60).json()["rules"]
    (rule,) = [r for r in rules if r["name"] == "dead_letters"]
    return dict(rule)


def test_a_refused_record_never_blocks_the_50_behind_it(
    serve_project: Callable[..., Served], store: Store, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    served = serve_project(with_webhook(url), store=store)
    bad = refused(store)
    served.state.journal.append(bad)  # as the record step would, before any other traffic
    with served.client() as c:
        ids = [
            c.post(f"/v1/agents/{AGENT}/invoke", json={"input": "Where is my order 10001?"}).json()[
                "interaction_id"
            ]
            for _ in range(50)
        ]
        wait_until(lambda: store.count_interactions() == 50, "the 50 good records to reach the store")
        assert all(store.get_interaction(i) is not None for i in ids)
        letter = store.get_dead_letter(bad.id)
        assert letter is not None and letter.record() == bad
        (family,) = [
            f
            for f in text_string_to_metric_families(c.get("/metrics").text)
            if f.name == "shipyard_dead_letters"
        ]
        assert [(x.labels, x.value) for x in family.samples if x.name.endswith("_total")] == [
            ({"kind": "interaction", "error_type": letter.error_type}, 1.0)
        ]
        rule = alert_state(served.url)
        assert rule["state"] == "alert" and rule["value"] == 1
        wait_until(
            lambda: any(t["rule"] == "dead_letters" and t["state"] == "alert" for t in received),
            "the alert's webhook",
        )
        assert [t["state"] for t in received if t["rule"] == "dead_letters"][-1] == "alert"
        # feedback: a stored interaction takes it; the refused one is a clear 404, never a 500
        assert c.post("/v1/feedback", json={"interaction_id": ids[0], "thumbs": 1}).status_code == 200
        gone = c.post("/v1/feedback", json={"interaction_id": bad.id, "thumbs": -1})
        assert gone.status_code == 404 and letter.id in gone.json()["error"]["message"]
    events = [orjson.loads(line) for line in served.logs.getvalue().splitlines()]
    (logged,) = [e for e in events if e["event"] == "dead_letter"]
    assert logged["record_id"] == bad.id and logged["reason"] and logged["where"] == "store"
    assert "refund order 10002" not in served.logs.getvalue()  # the reason, never the content


def test_feedback_while_the_store_is_down_is_503_then_works(
    serve_project: Callable[..., Served], store: Store
) -> None:
    served = serve_project(store=store)
    down = Store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", migrate=False)
    state = served.state
    state.store = state.journal.store = down  # the database goes away
    try:
        with served.client() as c:
            answer = c.post(f"/v1/agents/{AGENT}/invoke", json={"input": "Where is my order 10001?"}).json()
            late = c.post("/v1/feedback", json={"interaction_id": answer["interaction_id"], "thumbs": 1})
            assert late.status_code == 503 and late.headers["Retry-After"], late.text
            assert state.journal.pending >= 1  # kept safely in the journal meanwhile
            state.store = state.journal.store = store  # the database is back
            ok = c.post("/v1/feedback", json={"interaction_id": answer["interaction_id"], "thumbs": 1})
            assert ok.status_code == 200, ok.text
    finally:
        state.store = state.journal.store = store
        down.close()


def start(cfg: Any, store: Store) -> tuple[uvicorn.Server, Any, str]:
    app = create_app(cfg, store=store, log_stream=io.StringIO())
    port = free_port()
    server, thread = run_in_thread(app, port)
    return server, thread, f"http://127.0.0.1:{port}"


def test_a_server_starts_with_a_refused_record_in_a_dead_journal_and_again_after(
    demo_project: Callable[..., Any], store: Store
) -> None:
    cfg = demo_project()
    jdir = cfg.root / ".shipyard" / "journal"
    jdir.mkdir(parents=True)
    bad = refused(store)
    good = [interaction() for _ in range(60)]
    # a process died (kill -9) with these in its journal: 10 good, the refused one, 50 good
    (jdir / "1-999-dead.journal").write_bytes(b"".join(encode(r) for r in [*good[:10], bad, *good[10:]]))
    for _ in range(2):  # the first start recovers the journal; the second starts with the dead letter
        server, thread, url = start(cfg, store)
        try:
            assert HTTP.get(f"{url}/healthz", timeout=60).status_code == 200
            assert store.count_interactions() == 60 and store.count_dead_letters() == 1
            wait_until(lambda u=url: alert_state(u)["state"] == "alert", "the dead-letter alert")
        finally:
            server.should_exit = True
            thread.join(timeout=60)
    assert not (jdir / "1-999-dead.journal").exists()


# the CLI -----------------------------------------------------------------------------------------
def test_the_cli_lists_shows_and_retries_dead_letters(
    demo_project: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = demo_project()
    monkeypatch.chdir(cfg.root)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    runner = CliRunner()
    with Store.from_config(cfg) as store:
        bad = refused(store)
        journal = Journal(cfg.root / ".shipyard" / "journal", store)
        assert journal._move([bad]) and store.count_dead_letters() == 1
        # a record that could not be stored then, and can now, kept in a file
        fixed = interaction()
        write_dead_letter_file(
            dead_letter_folder(cfg.root),
            DeadLetter(
                "interaction", fixed.id, "OperationalError", "disk full", orjson.dumps(fixed).decode()
            ),
        )
    listed = runner.invoke(cli, ["store", "dead-letters", "list"])
    assert listed.exit_code == 0, listed.output
    letter = DeadLetter("interaction", bad.id, "", "", "")  # its id is a hash of kind and record id
    assert letter.id in listed.output and bad.id[:12] in listed.output and fixed.id[:12] in listed.output
    assert "file" in listed.output and "store" in listed.output
    shown = runner.invoke(cli, ["store", "dead-letters", "show", bad.id])
    assert shown.exit_code == 0 and bad.id in shown.output and '"input_tokens"' in shown.output
    in_file = runner.invoke(cli, ["store", "dead-letters", "show", fixed.id])  # found among the files
    assert (
        in_file.exit_code == 0 and "disk full" in in_file.output and f'"id": "{fixed.id}"' in in_file.output
    )
    missing = runner.invoke(cli, ["store", "dead-letters", "show", "nope"])
    assert missing.exit_code == 2 and "no dead letter 'nope'" in missing.output
    retried = runner.invoke(cli, ["store", "dead-letters", "retry", "--all"])
    assert retried.exit_code == 1, retried.output  # the refused one is refused still
    assert "1 stored, 1 still refused" in retried.output
    with Store.from_config(cfg) as store:
        assert store.get_interaction(fixed.id) is not None
        assert store.get_dead_letter(bad.id).attempts == 2  # type: ignore[union-attr]
    assert read_dead_letter_files(dead_letter_folder(cfg.root)) == []
    assert not os.listdir(dead_letter_folder(cfg.root))
