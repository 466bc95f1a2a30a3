"""Record and replay through the model proxy: a framework agent's model calls and the tools its
framework runs are recorded, and replayed offline with the model server stopped and no tool run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from proxy_project import ProxyProject

from shipyard.evals import ReplayCache


@pytest.mark.parametrize("question", ["where is order 12345?", "where is order 99999?"])
async def test_a_recorded_framework_agent_replays_offline(
    make_project: Callable[..., ProxyProject], tmp_path: Path, question: str
) -> None:
    p = make_project()
    path = tmp_path / "replay" / "proxied.jsonl"
    recording = ReplayCache(path, "record")
    live = await p.rt.invoke("proxied", question, interceptor=recording.scope("case/t0"))
    recording.close()
    assert live.status == "completed", live.error
    assert len(p.agents.TOOL_RUNS) == 1 and len(p.requests) == 2
    p.mock.stop()  # offline from here on

    replaying = ReplayCache(path, "replay")
    replayed = await p.rt.invoke("proxied", question, interceptor=replaying.scope("case/t0"))
    assert replayed.status == "completed", replayed.error
    assert replayed.output == live.output and replayed.metadata["replayed"] is True
    assert len(p.agents.TOOL_RUNS) == 1  # the framework's tool did not run again
    assert [(t.name, t.arguments, t.status, t.error) for t in replayed.tool_calls] == [
        (t.name, t.arguments, t.status, t.error) for t in live.tool_calls
    ]
    assert replayed.input_tokens == live.input_tokens and replaying.misses == 0
