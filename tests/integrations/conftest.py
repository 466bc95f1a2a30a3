"""A project whose agents call the model through Shipyard's model proxy, answered by the mock LLM
server over loopback (see proxy_project.py)."""

from __future__ import annotations

import io
import itertools
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from proxy_project import AGENTS, RULES, Project

from shipyard.config import load_config
from shipyard.llm import MockLLMServer, reset_breakers
from shipyard.observe import configure_logging
from shipyard.runtime import Runtime

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_breakers() -> None:
    reset_breakers()


@pytest.fixture(autouse=True)
def _live_log_stream() -> Iterator[None]:
    """A test that ran the CLI (`shipyard init` in a fixture) left event lines going to its runner's
    stderr, closed since: the next test logs to a live stream again."""
    yield
    configure_logging(stream=io.StringIO())


@pytest.fixture
async def make_project(tmp_path: Path) -> AsyncIterator[Callable[..., Project]]:
    """Write the project (mock server options and extra model settings as arguments) and start it."""
    module = f"proxyagents{next(_counter)}"
    (tmp_path / f"{module}.py").write_text(AGENTS)
    servers: list[MockLLMServer] = []
    runtimes: list[Runtime] = []

    def make(model_settings: str = "", **mock: Any) -> Project:
        server = MockLLMServer(RULES, **mock)
        url = server.start()
        servers.append(server)
        agents = "".join(
            f"  {name}: {{entry: '{module}:{name}', model: {{name: mock}}, timeout_s: 60}}\n"
            for name in ("proxied", "proxied_sync", "blocking", "loopback", "foreign_loop")
        )
        (tmp_path / "shipyard.yaml").write_text(
            textwrap.dedent(f"""\
            models:
              mock:
                base_url: {url}
                max_retries: 1
                backoff_base_s: 0.001
                retry_after_max_s: 30
                prices: {{input: 1.0, output: 2.0}}
            """)
            + textwrap.indent(textwrap.dedent(model_settings), "    ")
            + "agents:\n"
            + agents
        )
        rt = Runtime(load_config(tmp_path / "shipyard.yaml"))
        runtimes.append(rt)
        rt.versions("proxied")
        return Project(rt=rt, mock=server, module=sys.modules[module], root=tmp_path)

    yield make
    for rt in runtimes:
        await rt.aclose()
    for server in servers:
        server.stop()
    sys.modules.pop(module, None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
