"""Model clients built from `shipyard.yaml` (`models:`), one per model key, cached."""

from __future__ import annotations

import os

from shipyard.config import ModelConfig, ModelPrices, ShipyardConfig
from shipyard.errors import MissingSecretError, NotFoundError
from shipyard.llm._breaker import breaker_for
from shipyard.llm._fallback import FallbackClient
from shipyard.llm._openai import OpenAIChatClient
from shipyard.llm._scripted import ScriptedModel, load_rules
from shipyard.llm._types import ChatClient


def _openai(key: str, m: ModelConfig) -> ChatClient:
    api_key = None
    if m.api_key_env:
        api_key = os.environ.get(m.api_key_env)
        if not api_key:
            raise MissingSecretError(
                f"model {key!r} needs an API key in the environment variable {m.api_key_env}, "
                "which is not set",
                hint=f"export {m.api_key_env}=... before running, or remove api_key_env from models.{key} "
                "when the endpoint needs no key",
            )
    assert m.base_url is not None  # the config schema requires it for provider openai
    model = m.model or key
    b = m.breaker
    breaker = (
        breaker_for(
            m.base_url,
            model,
            name=key,
            failure_rate=b.failure_rate,
            window_s=b.window_s,
            min_calls=b.min_calls,
            cooldown_s=b.cooldown_s,
            half_open_probes=b.half_open_probes,
        )
        if b.enabled
        else None
    )
    return OpenAIChatClient(
        m.base_url,
        model,
        name=key,
        api_key=api_key,
        headers=m.headers,
        timeout_s=m.timeout_s,
        connect_timeout_s=m.connect_timeout_s,
        max_retries=m.max_retries,
        max_rate_limit_retries=m.max_rate_limit_retries,
        backoff_base_s=m.backoff_base_s,
        backoff_max_s=m.backoff_max_s,
        retry_after_max_s=m.retry_after_max_s,
        breaker=breaker,
    )


class ModelPool:
    """The model clients of one project: one per key of `cfg.models`, built on first use.

    Args:
        cfg: the loaded shipyard.yaml.
    """

    def __init__(self, cfg: ShipyardConfig) -> None:
        self.cfg = cfg
        self._clients: dict[str, ChatClient] = {}

    def client(self, key: str) -> ChatClient:
        """The client of model `key`. Raises NotFoundError for an unknown key and MissingSecretError
        when its API-key variable is not set."""
        found = self._clients.get(key)
        if found is not None:
            return found
        m = self._config(key)
        if m.provider == "scripted":
            assert m.rules is not None  # the config schema requires it for provider scripted
            client: ChatClient = ScriptedModel(
                load_rules(self.cfg.resolve(m.rules)), name=key, latency_ms=m.latency_ms
            )
        else:
            client = _openai(key, m)
        self._clients[key] = client
        return client

    def chain(self, primary: str, fallbacks: list[str] | tuple[str, ...] = ()) -> ChatClient:
        """The primary model's client, wrapped in a FallbackClient when fallbacks are given."""
        if not fallbacks:
            return self.client(primary)
        return FallbackClient([self.client(k) for k in (primary, *fallbacks)])

    def prices(self, key: str) -> ModelPrices:
        """The configured prices of model `key`."""
        return self._config(key).prices

    def _config(self, key: str) -> ModelConfig:
        m = self.cfg.models.get(key)
        if m is None:
            known = ", ".join(sorted(self.cfg.models)) or "none"
            where = self.cfg.path or "shipyard.yaml"
            raise NotFoundError(f"no model named {key!r} under models in {where} (known: {known})")
        return m

    async def aclose(self) -> None:
        """Close every client built so far (their connection pools on this event loop)."""
        for c in self._clients.values():
            await c.aclose()
