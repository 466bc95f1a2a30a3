"""`shipyard keys`, `alerts` and `traces` on a real project store; `alerts --url` against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from server_helpers import Served
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import ShipyardConfig
from shipyard.runtime import Runtime
from shipyard.store import Store

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_keys_create_list_revoke(demo_project: Callable[..., ShipyardConfig]) -> None:
    cfg = demo_project()
    conf = str(cfg.path)
    code, out = run("keys", "create", "--role", "admin", "--name", "ops", "--config", conf)
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("shp_")
    with Store.from_config(cfg) as store:
        (row,) = store.list_api_keys()
        assert row["role"] == "admin" and key not in str(row)  # only the hash is kept
    code, out = run("keys", "list", "--config", conf)
    assert code == 0 and "ops" in out and row["prefix"] in out
    assert run("keys", "revoke", row["prefix"], "--config", conf)[0] == 0
    code, out = run("keys", "revoke", "shp_nothere", "--config", conf)
    assert code == 2 and "no API key" in out
    code, out = run("keys", "create", "--role", "root", "--config", conf)
    assert code == 2 and "--role must be one of invoke, read, admin" in out


def _interactions(cfg: ShipyardConfig, texts: list[str]) -> list[str]:
    async def go() -> list[str]:
        from shipyard.store import BatchWriter

        store = Store.from_config(cfg)
        writer = BatchWriter(store)
        rt = Runtime(cfg, store=store, writer=writer)
        try:
            return [(await rt.invoke("support", t, session_id="cli")).trace_id for t in texts]
        finally:
            await rt.aclose()
            writer.close()
            store.close()

    return asyncio.run(go())


def test_alerts_and_traces_from_the_store(demo_project: Callable[..., ShipyardConfig]) -> None:
    cfg = demo_project()
    conf = str(cfg.path)
    traces = _interactions(cfg, ["Where is my order 10001?", "I want to talk to a human, now!"])
    code, out = run("alerts", "--config", conf)
    assert code == 0, out
    assert "task_completion" in out and "no_data" in out and "status: HEALTHY" in out
    code, out = run("traces", "list", "--session", "cli", "--config", conf)
    assert code == 0 and traces[0][:8] in out
    code, out = run("traces", "list", "--status", "escalated", "--config", conf)
    assert traces[1][:8] in out and traces[0][:8] not in out
    code, out = run("traces", "show", traces[0], "--config", conf)
    assert code == 0 and "lookup_order" in out and "Total:" in out
    code, out = run("traces", "show", "nope", "--config", conf)
    assert code == 2 and "no trace" in out


def test_alerts_exit_1_when_a_rule_fires(demo_project: Callable[..., ShipyardConfig]) -> None:
    rule = (
        "alerts:\n  rules:\n    - {name: any_escalation, metric: escalation_rate, alert: 0, min_samples: 1}\n"
    )
    cfg = demo_project(lambda text: text + "\n" + rule)
    _interactions(cfg, ["I want to talk to a human, now!"])
    code, out = run("alerts", "--config", str(cfg.path))
    assert code == 1 and "alert" in out and "DOWN" in out


def test_alerts_from_a_running_server(served: Served, tmp_path: Path) -> None:
    code, out = run("alerts", "--url", served.url, "--config", str(served.cfg.path))
    assert code == 0 and served.url in out and "latency_p95" in out
    code, out = run("alerts", "--url", "http://127.0.0.1:9", "--config", str(served.cfg.path))
    assert code == 2 and "cannot reach the server" in out
