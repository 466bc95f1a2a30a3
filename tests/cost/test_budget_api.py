"""Budgets on a running server: the admin API lists, sets and removes budgets and shows usage; a
budget stop is a clean answer on /invoke and on /v1/chat/completions, streamed or not."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from budget_project import write_project

from shipyard.config import load_config
from shipyard.llm._mockserver import MockLLMServer
from shipyard.server import create_app, uvicorn_config

GRACEFUL = "I have reached my processing limit for this session. Let me summarize what I have found so far."


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with MockLLMServer({"default": "Here is a short answer about your order."}) as llm_url:
        write_project(
            tmp_path,
            llm_url,
            """\
            budgets:
              limits:
                - {name: per-session, scope: session, window: session, usd: 1000.0}
            """,
            store_url=f"sqlite:///{tmp_path / 'store.db'}",
        )
        cfg = load_config(tmp_path / "shipyard.yaml")
        app = create_app(cfg, log_stream=io.StringIO())
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = uvicorn.Server(uvicorn_config(app, cfg.server, host="127.0.0.1", port=port))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        give_up = time.monotonic() + 120
        while not srv.started:
            assert thread.is_alive() and time.monotonic() < give_up, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
        srv.should_exit = True
        thread.join(60)


def test_admin_api_sets_budgets_that_apply_at_once(server: str) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server, timeout=60) as c:
        listed = c.get("/admin/budgets").json()
        assert [(b["name"], b["source"]) for b in listed["budgets"]] == [("per-session", "config")]
        assert listed["backend"] == "memory"

        ok = c.post("/v1/agents/budgeted/invoke", json={"input": "steps=2 hi", "user_id": user})
        assert ok.status_code == 200 and ok.json()["status"] == "completed"

        bad = c.put("/admin/budgets/user-cap", json={"scope": "user", "usd": 1, "tokens": 2})
        assert bad.status_code == 422 and "exactly one of usd or tokens" in bad.json()["error"]["message"]
        put = c.put("/admin/budgets/user-cap", json={"scope": "user", "window": "day", "tokens": 1})
        assert put.status_code == 200, put.text
        assert put.json()["source"] == "admin"
        names = {b["name"]: b["source"] for b in c.get("/admin/budgets").json()["budgets"]}
        assert names == {"per-session": "config", "user-cap": "admin"}

        usage = c.get("/admin/budgets/usage", params={"user": user}).json()["usage"]
        assert [u["budget"] for u in usage] == ["user-cap"]
        assert usage[0]["spent"] == 0 and usage[0]["limit"] == 1  # the day counter starts now

        # the user's next call does not fit a 1-token budget: the graceful answer, cut short
        stopped = c.post("/v1/agents/budgeted/invoke", json={"input": "steps=1 hi", "user_id": user})
        assert stopped.status_code == 200
        assert stopped.json()["status"] == "budget_exceeded" and stopped.json()["output"] == GRACEFUL
        chat = c.post(
            "/v1/chat/completions",
            json={"model": "budgeted", "messages": [{"role": "user", "content": "hi"}], "user": user},
        ).json()
        assert chat["choices"][0]["finish_reason"] == "length"
        assert chat["choices"][0]["message"]["content"] == GRACEFUL
        assert chat["shipyard"]["status"] == "budget_exceeded"
        with c.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "budgeted",
                "messages": [{"role": "user", "content": "hi"}],
                "user": user,
                "stream": True,
            },
        ) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        assert '"finish_reason":"length"' in lines[-2] and '"budget_exceeded"' in lines[-2]

        # a budget from shipyard.yaml cannot be deleted here; the admin one can, and then calls run again
        assert c.delete("/admin/budgets/per-session").status_code == 409
        assert c.delete("/admin/budgets/nope").status_code == 404
        assert c.delete("/admin/budgets/user-cap").status_code == 200
        again = c.post("/v1/agents/budgeted/invoke", json={"input": "steps=1 hi", "user_id": user})
        assert again.json()["status"] == "completed"

        bad_query = c.get("/admin/budgets/usage", params={"usr": user})
        assert bad_query.status_code == 422 and "usr" in bad_query.json()["error"]["message"]
