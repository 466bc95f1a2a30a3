"""`shipyard eval run` runs its interactions on uvloop when it imports (issue 16: the event loop and
the HTTP client's socket work are much of Shipyard's own CPU per case), and on asyncio's own loop with
`SHIPYARD_EVENT_LOOP=asyncio`. The agent calls the mock model over HTTP and reports the loop it ran
on, so a case passes only on the loop it expects."""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard import _aio
from shipyard.cli import app
from shipyard.llm import MockLLMServer

runner = CliRunner()
_counter = itertools.count()

AGENT = """\
import asyncio

from shipyard import AgentContext, agent

@agent("looped")
async def looped(user_input: str, ctx: AgentContext) -> str:
    reply = await ctx.llm.chat([{"role": "user", "content": user_input}])
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return f"{reply.text} (on {loop})"
"""

SUITE = """\
name: loop-{loop}
cases:
  - {{id: order, input: "where is order 42?", expected: "Order 42 is shipped. (on {loop})"}}
  - {{id: hello, input: "hello", expected: "(on {loop})"}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    module = f"loopagent{next(_counter)}"
    (tmp_path / f"{module}.py").write_text(AGENT)
    for loop in ("uvloop", "asyncio"):
        (tmp_path / f"{loop}.yaml").write_text(SUITE.format(loop=loop))
    with MockLLMServer({"default": "Order 42 is shipped."}) as url:
        (tmp_path / "shipyard.yaml").write_text(
            f"models:\n  mock: {{provider: openai, base_url: '{url}', max_retries: 0}}\n"
            f"agents:\n  looped: {{entry: '{module}:looped', model: {{name: mock}}}}\n"
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("SHIPYARD_CONFIG", raising=False)
        monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
        monkeypatch.delenv(_aio.ENV, raising=False)
        sys.path.insert(0, str(tmp_path))
        try:
            yield tmp_path
        finally:
            sys.path.remove(str(tmp_path))


def test_eval_run_runs_on_uvloop(project: Path) -> None:
    pytest.importorskip("uvloop")
    assert _aio.loop_name() == "uvloop"
    result = runner.invoke(app, ["eval", "run", "--agent", "looped", "--suite", "uvloop.yaml"])
    assert result.exit_code == 0, result.output
    wrong = runner.invoke(app, ["eval", "run", "--agent", "looped", "--suite", "asyncio.yaml"])
    assert wrong.exit_code == 1, wrong.output  # the cases see the loop they really ran on


def test_shipyard_event_loop_asyncio_chooses_asyncios_loop(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_aio.ENV, "asyncio")
    assert _aio.loop_name() == "asyncio" and _aio.loop_factory() is None
    result = runner.invoke(app, ["eval", "run", "--agent", "looped", "--suite", "asyncio.yaml"])
    assert result.exit_code == 0, result.output


def test_run_returns_the_result_closes_its_loop_and_puts_the_gc_thresholds_back() -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    during: list[tuple[int, int, int]] = []
    before = gc.get_threshold()

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        during.append(gc.get_threshold())
        await asyncio.sleep(0)
        return 42

    assert _aio.run(main()) == 42
    assert loops[0].is_closed()
    assert during[0][0] >= _aio.YOUNG_THRESHOLD and during[0][1:] == before[1:]
    assert gc.get_threshold() == before
    expected = "uvloop" if _aio.loop_name() == "uvloop" else "asyncio"
    assert type(loops[0]).__module__.split(".")[0] == expected
