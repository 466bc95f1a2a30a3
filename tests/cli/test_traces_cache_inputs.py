"""`shipyard traces list --status` and `shipyard cache clear --tool` on the demo project, with the
names a user may mistype: an unknown status or tool is refused (exit 2) and the valid ones are named;
every real status, `budget_exceeded` included, is accepted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project
from shipyard.types import InteractionStatus

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo project (SQLite store and SQLite cache file in its folder)."""
    monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return copy_project(tmp_path / "demo") / "shipyard.yaml"


def sy(project: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "-c", str(project)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def test_traces_list_status_is_one_of_the_record_statuses(project: Path) -> None:
    code, out = sy(project, "run", "support", "What is your return policy?", "--session", "s1")
    assert code == 0 and "completed" in out, out
    # a per-session budget no answer fits in: the next interaction is recorded as budget_exceeded
    text = project.read_text()
    assert "usd: 0.004}" in text
    project.write_text(text.replace("usd: 0.004}", "usd: 0.0000001}"))
    code, out = sy(project, "run", "support", "Where is my order 10001?", "--session", "s2")
    assert code == 0 and "budget_exceeded" in out, out

    code, out = sy(project, "traces", "list", "--status", "bogus")
    assert code == 2 and "'bogus'" in out
    assert all(f"'{s.value}'" in out for s in InteractionStatus)  # the valid ones, budget_exceeded too
    code, out = sy(project, "traces", "list", "--status", "budget_exceeded")
    assert code == 0 and "s2" in out and "s1" not in out and "no traces match" not in out
    code, out = sy(project, "traces", "list", "--status", "completed")
    assert code == 0 and "s1" in out and "s2" not in out
    code, out = sy(project, "traces", "list", "--status", "blocked")
    assert code == 0 and "no traces match" in out


def test_traces_print_what_the_client_sent(project: Path) -> None:
    from shipyard.config import load_config
    from shipyard.store import InteractionRecord, Store, new_id

    cfg = load_config(project)
    with Store.from_config(cfg) as store:
        store.write_interactions(
            [
                InteractionRecord(
                    id=new_id(), trace_id=new_id(), session_id="[/]odd[bold]", user_id=None, agent="support",
                    version="support@1.0.0+abc", traffic_source="production", input="hi", output="hello",
                    status="completed", latency_ms=5.0, cost_usd=0.0, created_at=time.time(),
                )
            ]
        )  # fmt: skip
        trace = store.list_interactions(limit=1)[0].trace_id
    code, out = sy(project, "traces", "list")
    assert code == 0 and "[/]odd[bold]" in out
    code, out = sy(project, "traces", "show", trace)
    assert code == 0 and "session [/]odd[bold]" in out


def test_cache_clear_refuses_a_tool_no_agent_has(project: Path) -> None:
    code, out = sy(project, "run", "support", "What is your return policy?", "--session", "s1")
    assert code == 0 and "search_knowledge_base" in out, out
    code, out = sy(project, "cache", "clear", "--tool", "nosuch_tool")
    assert code == 2 and "no agent has a tool 'nosuch_tool'" in out
    assert "search_knowledge_base" in out and "lookup_order" in out and "--kind tool" in out
    # nothing was deleted: the real tool's cached result is still there
    code, out = sy(project, "cache", "clear", "--tool", "search_knowledge_base", "--json")
    assert code == 0 and json.loads(out)["deleted"] == 1
    # a tool an agent has, whose results are not cached: accepted, nothing to delete
    code, out = sy(project, "cache", "clear", "--tool", "lookup_order")
    assert code == 0 and "deleted 0 cache entries (tool lookup_order)" in out
