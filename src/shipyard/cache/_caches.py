"""The three caches over one backend: exact answers, semantic answers and idempotent tools' results.

Keys (every one under the project's prefix, so invalidation is a prefix delete):

    {prefix}:exact:{agent}:{version}:{scope}:{request hash}
    {prefix}:semantic:{agent}:{version}:{scope}          (a group of verified-on-read entries)
    {prefix}:tool:{tool}:{scope}:{arguments hash}

`scope` is a hash of the tenant (and of the user with `per_user`), so nothing is shared across them.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipyard.cache._backends import CacheBackend
from shipyard.cache._embed import Embedder
from shipyard.cache._text import Features, mismatch, normalize, tokens
from shipyard.types import Message, ToolResult

KINDS = ("exact", "semantic", "tool")


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Scope:
    """Who may share an answer: one agent version, one tenant (and one user, with `per_user`), and
    the same request metadata (`context`: a hash of it; an agent or a tool policy may read it)."""

    agent: str
    version: str
    tenant: str | None = None
    user: str | None = None
    context: str | None = None

    @property
    def audience(self) -> str:
        """Who may share a tool's results: the tenant (and the user, with `per_user`)."""
        return _digest(orjson.dumps([self.tenant, self.user]))

    @property
    def answer_audience(self) -> str:
        """Who may share an answer: the tenant, the user with `per_user`, and the request metadata."""
        return _digest(orjson.dumps([self.tenant, self.user, self.context]))


PIPELINE_METADATA = frozenset({"budget", "cache", "error_kind", "flags", "record_error", "replayed", "trace"})
"""Metadata keys the pipeline's own steps write: not part of what a request asked."""


def metadata_context(metadata: dict[str, Any], tenant_field: str) -> str | None:
    """A hash of the request's metadata (its tenant and the pipeline's own keys left out), or None
    when it has none."""
    asked = {k: v for k, v in metadata.items() if k != tenant_field and k not in PIPELINE_METADATA}
    if not asked:
        return None
    return _digest(orjson.dumps(asked, option=orjson.OPT_SORT_KEYS, default=str))


@dataclass(slots=True)
class CachedAnswer:
    """An answer kept for replay: its text, what producing it cost (the saving of each replay), the
    feature flags it was answered under (a replay needs the same variants), and where it came from."""

    output: str
    cost_usd: float
    input_tokens: int = 0
    output_tokens: int = 0
    flags: dict[str, str] = field(default_factory=dict)
    interaction_id: str | None = None
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "cost_usd": self.cost_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "flags": self.flags,
            "interaction_id": self.interaction_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CachedAnswer:
        return cls(
            output=str(d["output"]),
            cost_usd=float(d.get("cost_usd") or 0.0),
            input_tokens=int(d.get("input_tokens") or 0),
            output_tokens=int(d.get("output_tokens") or 0),
            flags={str(k): str(v) for k, v in (d.get("flags") or {}).items()},
            interaction_id=d.get("interaction_id"),
            created_at=float(d.get("created_at") or 0.0),
        )


def request_key(user_input: str, history: list[Message]) -> str:
    """The exact cache's hash of a request: the normalized input and earlier turns (role and
    normalized text of each)."""
    turns = [
        [
            str(m.get("role", "")),
            normalize(m["content"]) if isinstance(m.get("content"), str) else m.get("content"),
        ]
        for m in history
    ]
    return _digest(orjson.dumps([normalize(user_input), turns], option=orjson.OPT_SORT_KEYS))


class ExactCache:
    """Answers by normalized request, per agent version and tenant."""

    def __init__(self, backend: CacheBackend, prefix: str, ttl_s: float) -> None:
        self.backend = backend
        self.prefix = prefix
        self.ttl_s = ttl_s

    def key(self, scope: Scope, user_input: str, history: list[Message]) -> str:
        return f"{self.prefix}:exact:{scope.agent}:{scope.version}:{scope.answer_audience}:{request_key(user_input, history)}"

    async def get(self, scope: Scope, user_input: str, history: list[Message]) -> CachedAnswer | None:
        raw = await self.backend.get(self.key(scope, user_input, history))
        if raw is None:
            return None
        try:
            return CachedAnswer.from_json(orjson.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None

    async def put(
        self,
        scope: Scope,
        user_input: str,
        history: list[Message],
        answer: CachedAnswer,
        ttl_s: float | None = None,
    ) -> None:
        ttl = self.ttl_s if ttl_s is None else min(ttl_s, self.ttl_s)
        await self.backend.set(self.key(scope, user_input, history), orjson.dumps(answer.to_json()), ttl)


@dataclass(frozen=True, slots=True)
class SemanticLookup:
    """The result of a semantic lookup: the answer when a verified match was found, the best
    similarity seen, and why the closest candidates above the threshold were rejected."""

    answer: CachedAnswer | None
    similarity: float
    rejected: tuple[str, ...] = ()
    matched: str | None = None  # the stored question that matched


def _canonical(text: str) -> str:
    """What the semantic cache embeds: the words of the text, lower case, without punctuation (so
    "Can I return my shoes?" and "can i return my shoes" are the same vector)."""
    return " ".join(tokens(text)) or normalize(text)


class SemanticCache:
    """Single-turn answers by meaning, each hit verified.

    A candidate is a hit when its cosine similarity is at least `threshold` and verification passes:
    the same number of negations, the same numbers and codes, the same names, and every content word
    that differs between the two questions has a counterpart in the other whose word similarity is at
    least `word_threshold` (so "return my shoes" never matches "return my jacket")."""

    def __init__(
        self,
        backend: CacheBackend,
        prefix: str,
        embedder: Embedder,
        *,
        ttl_s: float,
        threshold: float,
        max_entries: int,
        word_threshold: float = 0.72,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self.embedder = embedder
        self.ttl_s = ttl_s
        self.threshold = threshold
        self.max_entries = max_entries
        self.word_threshold = word_threshold

    def group(self, scope: Scope) -> str:
        return f"{self.prefix}:semantic:{scope.agent}:{scope.version}:{scope.answer_audience}"

    async def put(
        self, scope: Scope, question: str, answer: CachedAnswer, ttl_s: float | None = None
    ) -> None:
        import numpy as np  # imported on first use: a project without a semantic cache never loads it

        vector = (await self.embedder.embed([_canonical(question)]))[0]
        entry = {
            "q": question,
            "v": base64.b64encode(vector.astype(np.float16).tobytes()).decode(),  # half: ample for a cosine
            "f": Features.of(question).to_json(),
            "a": answer.to_json(),
        }
        ttl = self.ttl_s if ttl_s is None else min(ttl_s, self.ttl_s)
        await self.backend.group_add(
            self.group(scope),
            _digest(normalize(question).encode()),
            orjson.dumps(entry),
            ttl,
            self.max_entries,
        )

    async def lookup(self, scope: Scope, question: str) -> SemanticLookup:
        import numpy as np

        raw = await self.backend.group_items(self.group(scope))
        if not raw:
            return SemanticLookup(None, 0.0)
        entries = []
        vectors = []
        for item in raw:
            try:
                e = orjson.loads(item)
                v = np.frombuffer(base64.b64decode(e["v"]), dtype=np.float16).astype(np.float32)
            except (ValueError, KeyError, TypeError):
                continue
            entries.append(e)
            vectors.append(v)
        if not entries:
            return SemanticLookup(None, 0.0)
        query = (await self.embedder.embed([_canonical(question)]))[0]
        try:
            sims = np.stack(vectors) @ query
        except ValueError:  # vectors of another embedder (its dimension changed): none can match
            return SemanticLookup(None, 0.0, ("embedding_changed",))
        order = np.argsort(-sims)
        best = float(sims[order[0]])
        mine = Features.of(question)
        rejected: list[str] = []
        for i in order[:5]:
            sim = float(sims[i])
            if sim < self.threshold:
                break
            e = entries[int(i)]
            theirs = Features.from_json(e["f"])
            why = mismatch(mine, theirs) or await self._content_mismatch(mine, theirs)
            if why is not None:
                rejected.append(why)
                continue
            return SemanticLookup(CachedAnswer.from_json(e["a"]), sim, tuple(rejected), matched=e.get("q"))
        return SemanticLookup(None, best, tuple(rejected))

    async def _content_mismatch(self, a: Features, b: Features) -> str | None:
        only_a = sorted(a.content - b.content)
        only_b = sorted(b.content - a.content)
        if not only_a and not only_b:
            return None
        if not only_a or not only_b:
            return "content"  # a word added or left out changes what is asked
        m = await self.embedder.embed(only_a + only_b)
        sims = m[: len(only_a)] @ m[len(only_a) :].T
        if sims.max(axis=1).min() < self.word_threshold or sims.max(axis=0).min() < self.word_threshold:
            return "content"
        return None


class ToolResultCache:
    """Results of idempotent tools by their arguments, each tool with its own TTL; only successful
    results are kept."""

    def __init__(self, backend: CacheBackend, prefix: str, ttls: dict[str, float]) -> None:
        self.backend = backend
        self.prefix = prefix
        self.ttls = dict(ttls)

    def caches(self, tool: str) -> bool:
        return tool in self.ttls

    def key(self, tool: str, arguments: dict[str, Any], audience: str) -> str:
        args = _digest(orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS, default=str))
        return f"{self.prefix}:tool:{tool}:{audience}:{args}"

    async def get(self, tool: str, arguments: dict[str, Any], audience: str) -> ToolResult | None:
        raw = await self.backend.get(self.key(tool, arguments, audience))
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)["value"]
        except (ValueError, KeyError, TypeError):
            return None
        return ToolResult(tool, arguments, "success", value=value, cached=True)

    async def put(self, tool: str, arguments: dict[str, Any], audience: str, result: ToolResult) -> None:
        if not result.ok or tool not in self.ttls:
            return
        try:
            body = orjson.dumps({"value": result.value})
        except TypeError:  # a value JSON cannot hold is not cached (it could not be replayed as it was)
            return
        await self.backend.set(self.key(tool, arguments, audience), body, self.ttls[tool])


class Caches:
    """Every cache of a project over its backend (`build_caches`); None where a kind is off."""

    def __init__(
        self,
        backend: CacheBackend,
        prefix: str,
        *,
        exact: ExactCache | None = None,
        semantic: SemanticCache | None = None,
        tools: ToolResultCache | None = None,
        tenant_field: str = "tenant",
        per_user: bool = False,
        traffic_sources: tuple[str, ...] = ("production", "canary"),
        prompt_cache: bool = True,
    ) -> None:
        self.backend = backend
        self.prefix = prefix
        self.exact = exact
        self.semantic = semantic
        self.tools = tools
        self.tenant_field = tenant_field
        self.per_user = per_user
        self.traffic_sources = frozenset(traffic_sources)
        self.prompt_cache = prompt_cache

    @property
    def answers(self) -> bool:
        """Whether an answer cache (exact or semantic) is on."""
        return self.exact is not None or self.semantic is not None

    def scope(self, agent: str, version: str, metadata: dict[str, Any], user_id: str | None) -> Scope:
        tenant = metadata.get(self.tenant_field)
        return Scope(
            agent,
            version,
            None if tenant is None else str(tenant),
            user_id if self.per_user else None,
            metadata_context(metadata, self.tenant_field),
        )

    def warm(self) -> None:
        """Load what the first lookup would (the builtin embedding's weights). Blocking."""
        load = getattr(self.semantic.embedder, "load", None) if self.semantic is not None else None
        if load is not None:
            load()

    async def invalidate(
        self,
        *,
        kind: str | None = None,
        agent: str | None = None,
        version: str | None = None,
        tool: str | None = None,
    ) -> int:
        """Delete entries: all of them, or those of one kind, agent, agent version or tool. Returns
        how many went (keys and group members)."""
        if version is not None and agent is None:
            raise ValueError("a version is invalidated with its agent")
        if tool is not None and (agent is not None or kind not in (None, "tool")):
            raise ValueError("a tool's results are invalidated on their own (no agent or other kind)")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r} (kinds: {', '.join(KINDS)})")
        if tool is not None:
            return await self.backend.delete_prefix(f"{self.prefix}:tool:{tool}:")
        if agent is None:
            kinds = [kind] if kind else list(KINDS)
            return sum([await self.backend.delete_prefix(f"{self.prefix}:{k}:") for k in kinds])
        tail = f"{agent}:" + (f"{version}:" if version is not None else "")
        kinds = [kind] if kind else ["exact", "semantic"]
        if "tool" in kinds:
            raise ValueError("tool results are not kept per agent: invalidate them by tool")
        return sum([await self.backend.delete_prefix(f"{self.prefix}:{k}:{tail}") for k in kinds])

    async def aclose(self) -> None:
        """Close the backend's and the embedding endpoint's connections of this event loop."""
        close = getattr(self.semantic.embedder, "aclose", None) if self.semantic is not None else None
        if close is not None:
            await close()
        await self.backend.aclose()
