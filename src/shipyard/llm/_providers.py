"""Shipyard's built-in model providers, `openai` and `scripted`, with their settings.

This module is the `llm` entry point of the `shipyard.plugins` group (see pyproject.toml): loading it
registers both providers, exactly as a third-party provider package would register its own."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from shipyard.config import PROVIDERS, BreakerConfig, ModelConfig, ModelProvider, ShipyardConfig, StrictModel
from shipyard.errors import MissingSecretError
from shipyard.llm._breaker import breaker_for
from shipyard.llm._scripted import ScriptedModel, load_rules, rules_files
from shipyard.llm._types import ChatClient

_RETRY_FIELDS = frozenset(
    {
        "max_retries",
        "max_rate_limit_retries",
        "backoff_base_s",
        "backoff_max_s",
        "retry_after_max_s",
        "breaker",
    }
)


class OpenAISettings(StrictModel):
    """`provider: openai`: an OpenAI-compatible chat-completions endpoint over HTTP."""

    base_url: str | None = None
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    headers: dict[str, str] = Field(default_factory=dict)
    prompt_cache: Literal["auto", "openai", "anthropic", "none"] = Field(
        "auto",
        description="provider prompt-cache hints: openai (prompt_cache_key), anthropic (cache_control "
        "breakpoints, for gateways in front of Claude), none; auto: openai on api.openai.com, else none. "
        "`cache.prompt_cache: false` turns them off for every model",
    )
    timeout_s: float = Field(30.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10, description="retries after 5xx, timeouts, connection errors")
    max_rate_limit_retries: int = Field(
        5, ge=0, le=20, description="retries after 429, an allowance of their own"
    )
    backoff_base_s: float = Field(0.25, ge=0)
    backoff_max_s: float = Field(8.0, ge=0, description="longest jittered wait (when no Retry-After is sent)")
    retry_after_max_s: float = Field(
        20.0,
        ge=0,
        description="longest Retry-After waited for; a longer one ends this model's try at once "
        "(the next fallback model answers)",
    )
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    logprobs: bool = Field(
        False,
        description="ask for the reply's token log-probabilities (`logprobs: true` in each request); "
        "Shipyard records their mean on the model-call span, for promptfoo's perplexity checks",
    )

    @model_validator(mode="after")
    def _needs_base_url(self) -> OpenAISettings:
        if not self.base_url:
            raise ValueError("an 'openai' model needs base_url (for example http://127.0.0.1:8100/v1)")
        return self


class ScriptedSettings(StrictModel):
    """`provider: scripted`: the offline scripted model, in process, answering from a rules file."""

    rules: str | None = Field(None, description="path of the rules file")
    latency_ms: float = Field(0.0, ge=0, description="simulated latency")

    @model_validator(mode="before")
    @classmethod
    def _no_http_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and (http_only := sorted(set(data) & _RETRY_FIELDS)):
            raise ValueError(
                f"{', '.join(http_only)} only apply to provider 'openai' (a scripted model makes no "
                "HTTP calls, so it is never retried or cut off): remove them"
            )
        return data

    @model_validator(mode="after")
    def _needs_rules(self) -> ScriptedSettings:
        if not self.rules:
            raise ValueError("a 'scripted' model needs rules: the path of its rules file")
        return self


def openai_client(key: str, m: ModelConfig, cfg: ShipyardConfig) -> ChatClient:
    """An OpenAIChatClient for `models.<key>`, its API key read from the environment now."""
    from shipyard.llm._openai import OpenAIChatClient  # here: a project on other providers never loads it

    s: OpenAISettings = m.settings
    api_key = None
    if s.api_key_env:
        api_key = os.environ.get(s.api_key_env)
        if not api_key:
            raise MissingSecretError(
                f"model {key!r} needs an API key in the environment variable {s.api_key_env}, "
                "which is not set",
                hint=f"export {s.api_key_env}=... before running, or remove api_key_env from models.{key} "
                "when the endpoint needs no key",
            )
    assert s.base_url is not None  # OpenAISettings requires it
    model = m.model or key
    rule = s.breaker.model_dump(exclude={"enabled"})  # BreakerConfig's fields are breaker_for's settings
    breaker = breaker_for(s.base_url, model, name=key, **rule) if s.breaker.enabled else None
    return OpenAIChatClient(
        s.base_url,
        model,
        name=key,
        api_key=api_key,
        headers=s.headers,
        timeout_s=s.timeout_s,
        connect_timeout_s=s.connect_timeout_s,
        max_retries=s.max_retries,
        max_rate_limit_retries=s.max_rate_limit_retries,
        backoff_base_s=s.backoff_base_s,
        backoff_max_s=s.backoff_max_s,
        retry_after_max_s=s.retry_after_max_s,
        breaker=breaker,
        prompt_cache=prompt_cache_style(s, cfg),
        extra_body={"logprobs": True} if s.logprobs else None,
    )


def prompt_cache_style(s: OpenAISettings, cfg: ShipyardConfig) -> Literal["openai", "anthropic", "none"]:
    """The prompt-cache hints a model's requests carry (see OpenAISettings.prompt_cache)."""
    if not cfg.cache.prompt_cache or s.prompt_cache == "none":
        return "none"
    if s.prompt_cache == "auto":
        host = urlsplit(s.base_url or "").hostname or ""
        return "openai" if host == "api.openai.com" else "none"
    return s.prompt_cache


def openai_identity(s: OpenAISettings, cfg: ShipyardConfig) -> dict[str, Any]:
    """The endpoint answers; retries, timeouts and the breaker are operations, not identity."""
    return {"base_url": s.base_url}


def scripted_client(key: str, m: ModelConfig, cfg: ShipyardConfig) -> ChatClient:
    """A ScriptedModel for `models.<key>`, its rules file read now."""
    s: ScriptedSettings = m.settings
    assert s.rules is not None  # ScriptedSettings requires it
    return ScriptedModel(load_rules(cfg.resolve(s.rules)), name=key, model=m.model, latency_ms=s.latency_ms)


def scripted_identity(s: ScriptedSettings, cfg: ShipyardConfig) -> dict[str, Any]:
    """A scripted model answers from its rules file: its content is the model. (`base_url: None` keeps
    the version ids made before providers were plugins.)"""
    assert s.rules is not None
    path = cfg.resolve(s.rules)
    files = rules_files(path)
    rules = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else s.rules
    found: dict[str, Any] = {"base_url": None, "rules": rules}
    if len(files) > 1:  # a file that builds on others (`base:`): their content is the model too
        found["base_rules"] = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files[1:]]
    return found


PROVIDERS.add("openai", ModelProvider(OpenAISettings, openai_client, openai_identity))
PROVIDERS.add("scripted", ModelProvider(ScriptedSettings, scripted_client, scripted_identity))
