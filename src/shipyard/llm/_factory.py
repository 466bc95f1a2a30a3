"""Model clients built from `shipyard.yaml` (`models:`), one per model key, cached. Each entry's
`provider` is a registered `shipyard.config.ModelProvider`, which builds its client."""

from __future__ import annotations

from shipyard.config import ModelConfig, ModelPrices, ShipyardConfig
from shipyard.errors import NotFoundError
from shipyard.llm._fallback import FallbackClient
from shipyard.llm._types import ChatClient


class ModelPool:
    """The model clients of one project: one per key of `cfg.models`, built on first use.

    Args:
        cfg: the loaded shipyard.yaml.
    """

    def __init__(self, cfg: ShipyardConfig) -> None:
        self.cfg = cfg
        self._clients: dict[str, ChatClient] = {}

    def client(self, key: str) -> ChatClient:
        """The client of model `key`, built by its provider. Raises NotFoundError for an unknown key,
        and what the provider raises (MissingSecretError when an API-key variable is not set)."""
        found = self._clients.get(key)
        if found is not None:
            return found
        m = self._config(key)
        client: ChatClient = m.spec.client(key, m, self.cfg)
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
