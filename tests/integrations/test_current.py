"""`current_context()`: the runtime makes the agent's context current around the agent call, for
code the agent does not hand `ctx` to (a framework's HTTP client, its tool wrappers)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from framework_helpers import drop_modules, scripted_project

from shipyard.agents import current_context, current_interaction
from shipyard.runtime import Runtime

AGENTS = """\
import asyncio
from shipyard import agent
from shipyard.agents import current_context, current_interaction

ENDED = []


@agent("probe")
async def probe(user_input, ctx):
    current_interaction().on_end(lambda: ENDED.append(user_input))
    await asyncio.sleep(0)  # let the other interactions start: each must still see its own
    in_thread = await asyncio.to_thread(lambda: current_context() is ctx)
    in_task = await asyncio.create_task(asyncio.sleep(0, current_context() is ctx))
    return f"{current_context() is ctx} {in_thread} {in_task} {ctx.session_id}"


@agent("probe_sync")
def probe_sync(user_input, ctx):
    return f"{current_context() is ctx}"
"""


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[tuple[Runtime, Any]]:
    cfg, module = scripted_project(tmp_path, AGENTS, ["probe", "probe_sync"], "probeagents")
    runtime = Runtime(cfg)
    runtime.versions("probe")
    yield runtime, sys.modules[module]
    drop_modules(tmp_path, module)


async def test_each_interaction_sees_its_own_context_in_threads_and_tasks(rt: tuple[Runtime, Any]) -> None:
    runtime, mod = rt
    assert current_context() is None and current_interaction() is None
    records = await asyncio.gather(*(runtime.invoke("probe", str(i), session_id=f"s{i}") for i in range(10)))
    assert [r.output for r in records] == [f"True True True s{i}" for i in range(10)]
    assert sorted(mod.ENDED) == [str(i) for i in range(10)]  # on_end ran as each agent call ended
    assert current_context() is None
    sync = await runtime.invoke("probe_sync", "x")
    assert sync.output == "True"
