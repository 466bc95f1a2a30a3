"""Fixtures of the integration tests: a framework's starter template (`template`), and a project whose
agents call the model through Shipyard's model proxy, answered by the mock LLM server over loopback
(`make_project`, see proxy_project.py)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from framework_helpers import Project, drop_modules, forget, init_template, module_name, write_config
from proxy_project import AGENTS, RULES, ProxyProject

from shipyard.llm import MockLLMServer, reset_breakers
from shipyard.observe import configure_logging
from shipyard.runtime import Runtime


@pytest.fixture(autouse=True)
def _fresh_breakers() -> None:
    reset_breakers()


@pytest.fixture(autouse=True)
def _litellms_own_price_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteLLM (ADK's model layer) downloads its model price list on import, with retries and waits
    between them (seconds offline, in this process and in every fresh one a test starts); Shipyard prices
    calls from its own config, so LiteLLM reads the copy it ships with."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _live_log_stream() -> Iterator[None]:
    """A test that ran the CLI (`shipyard init` in a fixture) left event lines going to its runner's
    stderr, closed since: the next test logs to a live stream again."""
    yield
    configure_logging(stream=io.StringIO())


@pytest.fixture
def template(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """The starter project `shipyard init --template {TEMPLATE}` writes (TEMPLATE: a constant of the
    test module), its model a mock server of the template's own rules."""
    project = init_template(tmp_path / "support", request.module.TEMPLATE)
    yield project
    forget(project)


@pytest.fixture
async def make_project(tmp_path: Path) -> AsyncIterator[Callable[..., ProxyProject]]:
    """Write the project (mock server options as arguments) and start it."""
    module = module_name("proxyagents")
    (tmp_path / f"{module}.py").write_text(AGENTS)
    servers: list[MockLLMServer] = []
    runtimes: list[Runtime] = []

    def make(**mock: Any) -> ProxyProject:
        server = MockLLMServer(RULES, **mock)
        url = server.start()
        servers.append(server)
        agents = ("proxied", "proxied_sync", "blocking", "loopback", "foreign_loop")
        settings = "max_retries: 1, backoff_base_s: 0.001, retry_after_max_s: 30"
        cfg = write_config(tmp_path, url, {name: f"{module}:{name}" for name in agents}, settings)
        rt = Runtime(cfg)
        runtimes.append(rt)
        rt.versions("proxied")
        return ProxyProject(tmp_path, cfg, server, module, rt=rt)

    yield make
    for rt in runtimes:
        await rt.aclose()
    for server in servers:
        server.stop()
    drop_modules(tmp_path, module)
