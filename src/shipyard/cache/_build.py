"""The project's caches, built once from `cache:` in shipyard.yaml."""

from __future__ import annotations

from collections.abc import Iterable

from shipyard.cache._backends import CacheBackend, MemoryBackend, RedisBackend, SQLiteBackend
from shipyard.cache._caches import Caches, ExactCache, SemanticCache, ToolResultCache
from shipyard.cache._embed import make_embedder
from shipyard.config import ShipyardConfig
from shipyard.errors import ConfigError


def make_backend(cfg: ShipyardConfig) -> CacheBackend:
    """The backend `cache.backend` names."""
    c = cfg.cache
    if c.backend == "sqlite":
        return SQLiteBackend(cfg.resolve(c.path))
    if c.backend == "redis":
        return RedisBackend(c.redis_url)
    return MemoryBackend()


def build_caches(cfg: ShipyardConfig, idempotent_tools: Iterable[str] | None = None) -> Caches | None:
    """The caches `cache:` turns on (None when no cache is on). `idempotent_tools`: the tools of
    the project's agents marked idempotent (None: not checked); every tool under `cache.tools`
    must be one of them, or the setting would do nothing (a ConfigError says which)."""
    c = cfg.cache
    if idempotent_tools is not None and c.tools:
        allowed = set(idempotent_tools)
        problems = [
            f"cache.tools.{name}: {name!r} is not an idempotent tool of any agent, so its results are "
            "never cached; mark it idempotent (@tools.tool(idempotent=True)) if calling it twice with "
            "the same arguments gives the same result and changes nothing, or remove it"
            + (f" (idempotent tools: {', '.join(sorted(allowed))})" if allowed else "")
            for name in sorted(c.tools)
            if name not in allowed
        ]
        if problems:
            raise ConfigError(str(cfg.path or "shipyard.yaml"), problems)
    exact_on = c.exact is not None and c.exact.enabled
    semantic_on = c.semantic is not None and c.semantic.enabled
    if not (exact_on or semantic_on or c.tools):
        return None
    backend = make_backend(cfg)
    prefix = c.key_prefix or cfg.project
    return Caches(
        backend,
        prefix,
        exact=ExactCache(backend, prefix, c.exact.ttl_s) if exact_on and c.exact else None,
        semantic=SemanticCache(
            backend,
            prefix,
            make_embedder(c.semantic.embedding),
            ttl_s=c.semantic.ttl_s,
            threshold=c.semantic.threshold,
            max_entries=c.semantic.max_entries,
        )
        if semantic_on and c.semantic
        else None,
        tools=ToolResultCache(backend, prefix, {k: v.ttl_s for k, v in c.tools.items()}) if c.tools else None,
        tenant_field=c.tenant_field,
        per_user=c.per_user,
        traffic_sources=tuple(c.traffic_sources),
        prompt_cache=c.prompt_cache,
    )
