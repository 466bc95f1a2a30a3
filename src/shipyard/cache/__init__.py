"""Caches: exact and semantic answer caches, idempotent tools' results, over pluggable backends
(memory, SQLite, Redis). The runtime wires them into the pipeline (`cache_lookup`, `cache_store`)
and into `ctx.tools`; `shipyard.yaml`'s `cache:` section configures them."""

from shipyard.cache._backends import CacheBackend, MemoryBackend, RedisBackend, SQLiteBackend
from shipyard.cache._build import build_caches, make_backend
from shipyard.cache._caches import (
    KINDS,
    CachedAnswer,
    Caches,
    ExactCache,
    Scope,
    SemanticCache,
    SemanticLookup,
    ToolResultCache,
    request_key,
)
from shipyard.cache._embed import BuiltinEmbedder, Embedder, EmbeddingError, OpenAIEmbedder, make_embedder
from shipyard.cache._text import Features, mismatch, normalize

__all__ = [
    "KINDS",
    "BuiltinEmbedder",
    "CacheBackend",
    "CachedAnswer",
    "Caches",
    "Embedder",
    "EmbeddingError",
    "ExactCache",
    "Features",
    "MemoryBackend",
    "OpenAIEmbedder",
    "RedisBackend",
    "SQLiteBackend",
    "Scope",
    "SemanticCache",
    "SemanticLookup",
    "ToolResultCache",
    "build_caches",
    "make_backend",
    "make_embedder",
    "mismatch",
    "normalize",
    "request_key",
]
