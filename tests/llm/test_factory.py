"""ModelPool: clients built from shipyard.yaml, secrets from the environment, fallback chains."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_helpers import ScriptServer

from shipyard.config import load_config
from shipyard.errors import ConfigError, MissingSecretError, NotFoundError
from shipyard.llm import FallbackClient, ModelPool, OpenAIChatClient, ScriptedModel, model_id

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
    assert local.model == "local"  # no `model:`: the model id is the key
    assert (await local.chat([{"role": "user", "content": "x"}])).text == "local answer"
    assert pool.client("local") is local

    remote = pool.client("remote")
    assert isinstance(remote, OpenAIChatClient)
    assert (remote.name, remote.model, remote.max_retries) == ("remote", "gpt-remote", 0)
    resp = await remote.chat([{"role": "user", "content": "x"}])
    assert resp.model == "remote" and [a.model_id for a in resp.attempts] == ["gpt-remote"]
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
    assert model_id(chain) == "gpt-remote"  # what the chain's first request asks for
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


BREAKER_CONFIG = """
models:
  big:
    provider: openai
    base_url: {url}
    max_retries: 2
    max_rate_limit_retries: 7
    backoff_max_s: 4
    retry_after_max_s: 12.5
    breaker: {{failure_rate: 0.25, window_s: 20, min_calls: 8, cooldown_s: 5, half_open_probes: 2}}
  small:
    provider: openai
    base_url: {url}
  unguarded:
    provider: openai
    base_url: {url}
    breaker: {{enabled: false}}
"""


def test_retry_and_breaker_settings_reach_the_client(tmp_path: Path, script_server: ScriptServer) -> None:
    (tmp_path / "shipyard.yaml").write_text(BREAKER_CONFIG.format(url=script_server.url))
    pool = ModelPool(load_config(tmp_path / "shipyard.yaml"))
    big, small, unguarded = (pool.client(k) for k in ("big", "small", "unguarded"))
    assert isinstance(big, OpenAIChatClient) and isinstance(small, OpenAIChatClient)
    assert (big.max_retries, big.max_rate_limit_retries, big.backoff_max_s, big.retry_after_max_s) == (
        2,
        7,
        4.0,
        12.5,
    )
    b = big.breaker
    assert b is not None and (b.failure_rate, b.window_s, b.min_calls, b.cooldown_s, b.half_open_probes) == (
        0.25,
        20.0,
        8,
        5.0,
        2,
    )
    # same base URL, another model: its own breaker, with the default settings
    assert small.breaker is not None and small.breaker is not b and small.breaker.min_calls == 50
    assert isinstance(unguarded, OpenAIChatClient) and unguarded.breaker is None
    # a second pool (another server replica in this process, a reload) shares the breakers
    again = ModelPool(load_config(tmp_path / "shipyard.yaml")).client("big")
    assert isinstance(again, OpenAIChatClient) and again.breaker is b


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("breaker: {failure_rate: 0}", "models.big.breaker.failure_rate"),
        ("breaker: {failure_rate: 1.2}", "models.big.breaker.failure_rate"),
        ("breaker: {min_calls: 0}", "models.big.breaker.min_calls"),
        ("breaker: {half_open_probes: 0}", "models.big.breaker.half_open_probes"),
        ("breaker: {cooldown_s: -1}", "models.big.breaker.cooldown_s"),
        ("breaker: {window: 30}", "models.big.breaker.window"),
        ("retry_after_max_s: -1", "models.big.retry_after_max_s"),
        ("max_rate_limit_retries: 100", "models.big.max_rate_limit_retries"),
    ],
)
def test_bad_breaker_and_retry_settings_name_the_field_and_line(
    tmp_path: Path, setting: str, field: str
) -> None:
    text = f"models:\n  big:\n    provider: openai\n    base_url: http://127.0.0.1:9/v1\n    {setting}\n"
    (tmp_path / "shipyard.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "shipyard.yaml")
    [msg] = info.value.problems
    assert field in msg and "line 5" in msg


def test_retry_settings_on_a_scripted_model_are_an_error(tmp_path: Path) -> None:
    text = "models:\n  s:\n    provider: scripted\n    rules: r.yaml\n    breaker: {min_calls: 5}\n"
    (tmp_path / "shipyard.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "shipyard.yaml")
    [msg] = info.value.problems
    assert "breaker only apply to provider 'openai'" in msg and "models.s" in msg


async def test_a_scripted_model_answers_as_its_model_id(tmp_path: Path) -> None:
    """A scripted entry's `model:` is the id it answers as (`gen_ai.request.model`); its key stays its name."""
    (tmp_path / "r.yaml").write_text("default: 'hi'\n")
    (tmp_path / "shipyard.yaml").write_text(
        "models:\n  small: {provider: scripted, rules: r.yaml, model: acme-small}\n"
    )
    client = ModelPool(load_config(tmp_path / "shipyard.yaml")).client("small")
    assert (client.name, model_id(client)) == ("small", "acme-small")
    resp = await client.chat([{"role": "user", "content": "x"}])
    assert resp.model == "small" and [a.model_id for a in resp.attempts] == ["acme-small"]
