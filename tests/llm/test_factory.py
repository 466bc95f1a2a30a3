"""ModelPool: clients built from shipyard.yaml, secrets from the environment, fallback chains."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_helpers import ScriptServer

from shipyard.config import load_config
from shipyard.errors import MissingSecretError, NotFoundError
from shipyard.llm import FallbackClient, ModelPool, OpenAIChatClient, ScriptedModel

CONFIG = """
models:
  local:
    provider: scripted
    rules: rules/local.yaml
    latency_ms: 1
    prices: {{input: 0.15, cached_input: 0.075, output: 0.6}}
  remote:
    provider: openai
    model: gpt-remote
    base_url: {url}
    api_key_env: SHIPYARD_TEST_KEY
    headers: {{X-Team: support}}
    max_retries: 0
  keyless:
    provider: openai
    base_url: {url}
"""


@pytest.fixture
def project(tmp_path: Path, script_server: ScriptServer) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/local.yaml").write_text("default: 'local answer'\n")
    (tmp_path / "shipyard.yaml").write_text(CONFIG.format(url=script_server.url))
    return tmp_path / "shipyard.yaml"


async def test_builds_and_caches_clients(
    project: Path, script_server: ScriptServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_TEST_KEY", "sk-secret")
    pool = ModelPool(load_config(project))
    local = pool.client("local")
    assert isinstance(local, ScriptedModel) and local.name == "local" and local.latency_ms == 1
    assert (await local.chat([{"role": "user", "content": "x"}])).text == "local answer"
    assert pool.client("local") is local

    remote = pool.client("remote")
    assert isinstance(remote, OpenAIChatClient)
    assert (remote.name, remote.model, remote.max_retries) == ("remote", "gpt-remote", 0)
    resp = await remote.chat([{"role": "user", "content": "x"}])
    assert resp.model == "remote"
    headers = script_server.requests[0]["headers"]
    assert headers["Authorization"] == "Bearer sk-secret" and headers["X-Team"] == "support"
    assert script_server.requests[0]["json"]["model"] == "gpt-remote"

    keyless = pool.client("keyless")
    assert isinstance(keyless, OpenAIChatClient) and keyless.model == "keyless"
    await keyless.chat([{"role": "user", "content": "x"}])
    assert "Authorization" not in script_server.requests[1]["headers"]

    assert pool.prices("local").cached_input == 0.075
    chain = pool.chain("remote", ["local"])
    assert isinstance(chain, FallbackClient) and [c.name for c in chain.clients] == ["remote", "local"]
    assert pool.chain("local") is local
    await pool.aclose()


def test_missing_secret_names_model_and_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_TEST_KEY", raising=False)
    with pytest.raises(MissingSecretError) as info:
        ModelPool(load_config(project)).client("remote")
    msg = str(info.value)
    assert "'remote'" in msg and "SHIPYARD_TEST_KEY" in msg and "export SHIPYARD_TEST_KEY=" in msg


def test_unknown_model(project: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no model named 'nope'.*known: keyless, local, remote"):
        ModelPool(load_config(project)).client("nope")
