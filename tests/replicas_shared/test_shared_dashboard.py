"""Three `shipyard serve` replicas on one PostgreSQL schema (SQLite when PostgreSQL is unreachable) and
Redis DB 14 show the same KPIs on `/admin/kpis` and the dashboard overview, one alert fires once
(one line in all their alert files together), not three times (observe/_shared_kpis.py), and they
show one config revision (store/_config_revisions.py)."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from testdb import fresh_database, postgres_problem
from throwaway import free_port
from waiting import wait_until

from shipyard.observe._shared_kpis import clear

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/14"
SHIPYARD = Path(sys.executable).with_name("shipyard")
_HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
"""For one-off requests instead of `httpx.get(...)`: a new connection per request as those make, without
the SSL context each `httpx.get` builds (some 30 ms of CPU per call, a lot in a polling loop)."""

AGENT = """\
from shipyard import AgentContext, AgentResult, agent


@agent("desk")
async def desk(user_input: str, ctx: AgentContext) -> AgentResult:
    return AgentResult(output="done", status="failed" if "fail" in user_input else "completed")
"""


def _project(folder: Path, project: str, store_url: str) -> None:
    folder.mkdir(parents=True)
    (folder / "shared_agent.py").write_text(AGENT)
    (folder / "prompts").mkdir()
    (folder / "prompts" / "system_prompt.txt").write_text("You help.\n")
    (folder / "prompts" / "version.txt").write_text("1.0.0\n")
    (folder / "shipyard.yaml").write_text(
        f"""\
project: {project}
models:
  unused:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    max_retries: 0
agents:
  desk:
    entry: shared_agent:desk
    prompts: prompts
    model: {{name: unused}}
store: {{url: '{store_url}', flush_interval_ms: 50}}
alerts:
  interval_s: 0.5
  files: [alerts.jsonl]
  rules:
    - {{name: desk-errors, metric: error_rate, comparator: ">", alert: 0.3, window: 5m, min_samples: 10}}
"""
    )


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    kind = "sqlite" if postgres_problem() else "postgresql"
    with fresh_database(kind, tmp_path) as url:
        yield url


def _get(url: str) -> Any:
    resp = _HTTP.get(url, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_three_replicas_one_dashboard_one_alert(tmp_path: Path, store_url: str) -> None:
    project = f"shared-kpis-{secrets.token_hex(4)}"
    base = tmp_path / "project"
    _project(base, project, store_url)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_REDIS_URL=REDIS_URL, PYTHONPATH="")
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    folders: list[Path] = []
    try:
        for i in range(3):  # each in a folder of its own, as on machines of their own
            folder = tmp_path / f"replica-{i}"
            shutil.copytree(base, folder)
            port = free_port()
            with (folder / "serve.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [str(SHIPYARD), "serve", "--port", str(port), "--config", "shipyard.yaml"],
                        cwd=folder,
                        env={**env, "PYTHONPATH": str(folder)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
            folders.append(folder)
        for url, proc, folder in zip(urls, procs, folders, strict=True):

            def ready(url: str = url, proc: subprocess.Popen[bytes] = proc, folder: Path = folder) -> bool:
                if proc.poll() is not None:
                    raise AssertionError((folder / "serve.log").read_text()[-3000:])
                try:
                    return _HTTP.get(f"{url}/readyz", timeout=5).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(ready, f"replica {url} to be ready")

        with httpx.Client(timeout=60) as client:
            for i in range(30):  # 12 of 30 fail: error rate 0.4, over the rule's 0.3
                body = {"input": "please fail" if i % 5 < 2 else "hello", "session_id": f"s{i % 7}"}
                resp = client.post(f"{urls[i % 3]}/v1/agents/desk/invoke", json=body)
                assert resp.status_code == 200, resp.text

        def kpis() -> list[dict[str, Any]]:
            return [_get(f"{url}/admin/kpis?window=15m") for url in urls]

        wait_until(
            lambda: all(d["scope"] == "fleet" and d["current"]["interactions"] == 30 for d in kpis()),
            "every replica to see the fleet's 30 interactions",
        )
        docs = kpis()
        assert docs[0]["current"] == docs[1]["current"] == docs[2]["current"]
        current = docs[0]["current"]
        assert (current["errors"], current["sessions"]) == (12, 7)
        overviews = [_get(f"{url}/admin/api/dashboard/overview?window=15m") for url in urls]
        assert overviews[0]["current"] == overviews[1]["current"] == overviews[2]["current"]
        assert [o["scope"] for o in overviews] == ["fleet"] * 3

        def rule_states() -> list[dict[str, Any]]:
            out = []
            for url in urls:
                (rule,) = [r for r in _get(f"{url}/admin/alerts")["rules"] if r["name"] == "desk-errors"]
                out.append(rule)
            return out

        wait_until(lambda: all(r["state"] == "alert" for r in rule_states()), "the alert on every replica")
        marks = [r["evaluated_at"] for r in rule_states()]
        # a few more evaluations on every replica: none of them fires it again
        wait_until(
            lambda: all(r["evaluated_at"] > m + 2 for r, m in zip(rule_states(), marks, strict=True)),
            "more evaluations",
        )
        assert len({r["since"] for r in rule_states()}) == 1  # the fleet's since, everywhere
        lines = [
            orjson.loads(line)
            for folder in folders
            if (folder / "alerts.jsonl").exists()
            for line in (folder / "alerts.jsonl").read_bytes().splitlines()
        ]
        fired = [line for line in lines if line["rule"] == "desk-errors" and line["state"] == "alert"]
        assert len(fired) == 1, lines

        # one record of the config they run, in the store: the same revision on every replica
        fleet = [_get(f"{url}/admin/config")["fleet"] for url in urls]
        assert [f["revision"] for f in fleet] == [1, 1, 1] and all(f["serving"] for f in fleet)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=60)
        client = redis.Redis.from_url(REDIS_URL)
        clear(client, project)
        client.close()
