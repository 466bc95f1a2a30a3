"""A NUL byte the AGENT produced (a tool result, its output, its metadata) is not client input, so the
edge lets it through; the journal's mover must still store the interaction (sanitized on PostgreSQL,
as it is on SQLite, which holds NUL bytes), never make it a dead letter. On SQLite and PostgreSQL,
through the real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from server_helpers import Served
from waiting import wait_until

from shipyard.store import Store

AGENTS = '''
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()


@tools.tool()
def read_note(order_id: str) -> dict[str, object]:
    """An order's note as a legacy system returns it: NUL bytes in a value and in a key."""
    return {"note": "gift wrap\\x00 please", "raw\\x00key": 1}


@agent("noter", tools=tools)
async def noter(user_input: str, ctx: AgentContext) -> AgentResult:
    note = await ctx.tools.call("read_note", order_id=user_input)
    return AgentResult(f"noted\\x00 {note.value['note']}", "completed", {"source": "legacy\\x00system"})
'''


def with_noter(text: str) -> str:
    agent = "  noter:\n    entry: nul_agents:noter\n    model: {name: scripted-small}\n"
    return text.replace("agents:\n", "agents:\n" + agent, 1)


def test_an_answer_with_a_nul_from_the_agent_is_stored_not_dead_lettered(
    serve_project: Callable[..., Served], store: Store, tmp_path: Path
) -> None:
    (tmp_path / "nul_agents.py").write_text(AGENTS)
    served = serve_project(with_noter, store=store)
    with served.client() as c:
        r = c.post("/v1/agents/noter/invoke", json={"input": "10002"})
        assert r.status_code == 200, r.text
        rid = r.json()["interaction_id"]
        assert r.json()["output"] == "noted\x00 gift wrap\x00 please"  # the client gets the answer as it is
        wait_until(lambda: store.get_interaction(rid) is not None, "the interaction to reach the store")
    stored = store.get_interaction(rid)
    assert stored is not None and store.count_dead_letters() == 0
    (call,) = stored.tool_calls
    events = [orjson.loads(line) for line in served.logs.getvalue().splitlines()]
    sanitized = [e for e in events if e["event"] == "record_stored_sanitized"]
    if store.dialect == "sqlite":  # SQLite holds NUL bytes: nothing to change
        assert stored.output == "noted\x00 gift wrap\x00 please" and call.result["raw\x00key"] == 1
        assert "sanitized" not in stored.metadata and sanitized == []
    else:
        assert stored.output == "noted\ufffd gift wrap\ufffd please"
        assert call.result == {"note": "gift wrap\ufffd please", "raw\ufffdkey": 1}
        assert stored.metadata["source"] == "legacy\ufffdsystem"
        assert stored.metadata["sanitized"] == ["output", "tool_calls", "metadata"]
        assert [(e["interaction_id"], e["fields"]) for e in sanitized] == [
            (rid, ["output", "tool_calls", "metadata"])
        ]
