"""Caches (`cache:` in shipyard.yaml): exact and semantic answer caches, idempotent tools' results,
and the hints that keep providers' prompt caches warm.

cache:
  backend: sqlite                 # memory | sqlite (a file) | redis (shared by every replica)
  exact: {ttl_s: 3600}
  semantic: {ttl_s: 3600, threshold: 0.8}
  tools:
    lookup_order: {ttl_s: 60}     # only tools marked idempotent=True may be listed
  prompt_cache: true

A section that is left out is off; `cache:` left out turns every cache off.
"""

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from shipyard.config._schema_base import StrictModel, section

_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_STORAGE_SETTINGS = frozenset(
    {"backend", "path", "redis_url", "key_prefix", "tenant_field", "per_user", "traffic_sources"}
)


class ExactCacheConfig(StrictModel):
    """The exact cache: the same (normalized) request to the same agent version, for the same tenant,
    is answered with the stored answer instead of running the agent."""

    enabled: bool = True
    ttl_s: float = Field(3600.0, gt=0, le=30 * 86_400, description="how long an answer is served (seconds)")


class EmbeddingConfig(StrictModel):
    """How the semantic cache embeds a question. `builtin` runs the WordLlama static embeddings that
    ship inside the `wordllama` package (MIT; no download at run time); `openai` calls any
    OpenAI-compatible `/v1/embeddings` endpoint (`shipyard mock-llm` serves one)."""

    provider: Literal["builtin", "openai"] = "builtin"
    base_url: str | None = Field(
        None, description="the API root, e.g. http://127.0.0.1:8100/v1 (openai only)"
    )
    model: str = Field("text-embedding-3-small", description="the embedding model id sent (openai only)")
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key (openai only)"
    )
    timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _base_url_for_openai(self) -> Self:
        if self.provider == "openai" and not self.base_url:
            raise ValueError("an 'openai' embedding needs base_url (for example http://127.0.0.1:8100/v1)")
        if self.provider == "builtin" and (self.base_url or self.api_key_env):
            raise ValueError("base_url and api_key_env only apply to provider 'openai': remove them")
        return self


class SemanticCacheConfig(StrictModel):
    """The semantic cache: a single-turn question close in meaning to one answered before is given
    that answer, when the match is verified (similarity at least `threshold`, the same negations,
    the same numbers and the same names). Never on multi-turn conversations, nor for answers that
    called tools."""

    enabled: bool = True
    ttl_s: float = Field(3600.0, gt=0, le=30 * 86_400, description="how long an answer is served (seconds)")
    threshold: float = Field(0.8, gt=0, le=1, description="least cosine similarity of a hit")
    max_entries: int = Field(
        1000,
        ge=1,
        le=20_000,
        description="most answers kept per agent version and tenant (oldest go); a lookup compares the "
        "question with each of them",
    )
    embedding: EmbeddingConfig = section()


class ToolCacheConfig(StrictModel):
    """One idempotent tool's result cache (`cache.tools.<tool>`)."""

    ttl_s: float = Field(300.0, gt=0, le=30 * 86_400, description="how long a result is reused (seconds)")


class CacheConfig(StrictModel):
    """Every cache of the project and where entries are kept."""

    backend: Literal["memory", "sqlite", "redis"] = Field(
        "memory",
        description="memory (one process), sqlite (a file, shared by the processes of one machine) or "
        "redis (shared by every replica)",
    )
    path: str = Field(".shipyard/cache.db", description="the SQLite file (backend sqlite)")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="the Redis server (backend redis)")
    key_prefix: str | None = Field(
        None, description="prefix of every key (default: the project name), so projects can share a store"
    )
    tenant_field: str = Field(
        "tenant",
        description="the request metadata field naming the tenant: answers are never shared across tenants",
    )
    per_user: bool = Field(
        False,
        description="true: answers are never shared across users either (for agents that answer per user)",
    )
    traffic_sources: list[str] = Field(
        default_factory=lambda: ["production", "canary"],
        description="traffic the answer caches serve and learn from (evals and shadow runs always run the agent)",
    )
    exact: ExactCacheConfig | None = None
    semantic: SemanticCacheConfig | None = None
    tools: dict[str, ToolCacheConfig] = Field(
        default_factory=dict, description="result caches of idempotent tools, by tool name"
    )
    prompt_cache: bool = Field(
        True,
        description="keep providers' prompt caches warm: tool definitions in a stable order and the "
        "provider's cache hint (OpenAI prompt_cache_key)",
    )

    @field_validator("exact", "semantic", mode="before")
    @classmethod
    def _shorthand(cls, v: object) -> object:
        if v is True:
            return {}
        if v is False:
            return None
        return v

    @field_validator("key_prefix")
    @classmethod
    def _prefix_form(cls, v: str | None) -> str | None:
        if v is not None and not _PREFIX.match(v):
            raise ValueError(f"key_prefix must be 1-64 letters, digits, '_', '.', ':' or '-', got {v!r}")
        return v

    @field_validator("traffic_sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        known = {"production", "canary", "eval", "shadow", "replay"}
        bad = sorted(set(v) - known)
        if bad:
            raise ValueError(
                f"unknown traffic source(s) {', '.join(bad)} (known: {', '.join(sorted(known))})"
            )
        return v

    @model_validator(mode="after")
    def _settings_need_a_cache(self) -> Self:
        on = self.answers or bool(self.tools)
        idle = sorted(self.model_fields_set & _STORAGE_SETTINGS)
        if idle and not on:
            raise ValueError(
                f"{', '.join(idle)} set but no cache is on, so they would do nothing: add exact, semantic "
                "or tools (e.g. `exact: {ttl_s: 3600}`), or remove them"
            )
        return self

    @property
    def answers(self) -> bool:
        """Whether an answer cache (exact or semantic) is on."""
        return bool((self.exact and self.exact.enabled) or (self.semantic and self.semantic.enabled))


__all__ = [
    "CacheConfig",
    "EmbeddingConfig",
    "ExactCacheConfig",
    "SemanticCacheConfig",
    "ToolCacheConfig",
]
