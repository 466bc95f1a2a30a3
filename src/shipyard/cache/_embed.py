"""Text embeddings for the semantic cache.

`BuiltinEmbedder` works offline out of the box: WordLlama's static token embeddings (the 256-dim
`l2_supercat` model, MIT licence, https://github.com/dleemiller/WordLlama), whose weights and tokenizer
ship inside the `wordllama` wheel on PyPI. They are read from the installed package with
`safetensors` and `tokenizers` (not through WordLlama's own loader, which looks for its tokenizer
on the network): a text is the mean of its token vectors, unit length. About 30 µs a question.

`OpenAIEmbedder` calls any OpenAI-compatible `/v1/embeddings` endpoint (`shipyard mock-llm` serves one).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.errors import ConfigError, MissingSecretError

if TYPE_CHECKING:
    import aiohttp
    import numpy as np

    from shipyard.config._cache import EmbeddingConfig


class EmbeddingError(Exception):
    """The embedding endpoint failed or answered something unreadable (the cache then misses)."""


class Embedder(Protocol):
    """Turns texts into unit-length vectors (rows of the array)."""

    name: str

    async def embed(self, texts: list[str]) -> np.ndarray: ...


def _unit(m: np.ndarray) -> np.ndarray:
    import numpy as np  # imported on first use: `shipyard run` without a semantic cache never loads it

    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32)


class _WordLlama:
    """The weights and tokenizer of the wordllama package, loaded once per process."""

    _lock = threading.Lock()
    _loaded: _WordLlama | None = None

    def __init__(self) -> None:
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        # the package's files, found without importing it (its __init__ configures logging for the
        # whole process and loads modules the cache never uses)
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "cache.semantic.embedding",
                ["the builtin embedding needs the 'wordllama' package: pip install wordllama"],
            )
        root = Path(next(iter(spec.submodule_search_locations)))
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        weights = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))["embedding.weight"]
        self.vectors = np.ascontiguousarray(weights, dtype=np.float32)

    @classmethod
    def get(cls) -> _WordLlama:
        with cls._lock:
            if cls._loaded is None:
                cls._loaded = cls()
            return cls._loaded

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for i, enc in enumerate(self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = np.clip(np.asarray(enc.ids, dtype=np.int64), 0, len(self.vectors) - 1)
            if len(ids):
                out[i] = self.vectors[ids].mean(axis=0)
        return _unit(out)


class BuiltinEmbedder:
    """The offline embedding (see the module docstring). The weights load on first use (about
    0.7 s, off the event loop) or at `load()`."""

    name = "builtin:wordllama-l2-supercat-256"

    def load(self) -> None:
        _WordLlama.get()

    async def embed(self, texts: list[str]) -> np.ndarray:
        model = _WordLlama._loaded
        if model is None:
            model = await asyncio.to_thread(_WordLlama.get)
        return model.embed(texts)


class OpenAIEmbedder:
    """`POST {base_url}/embeddings` of an OpenAI-compatible API: `{"model", "input": [texts]}` ->
    `data[i].embedding`."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 5.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.name = f"openai:{model}"
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout_s = timeout_s
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        s = self._sessions.get(loop)
        if s is None or s.closed:
            s = self._sessions[loop] = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self._timeout_s)
            )
        return s

    async def embed(self, texts: list[str]) -> np.ndarray:
        import aiohttp
        import numpy as np
        import orjson

        body = orjson.dumps({"model": self.model, "input": texts})
        try:
            async with self._session().post(self.url, data=body) as resp:
                payload = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            raise EmbeddingError(f"{self.url}: {type(e).__name__}: {e}") from None
        if status != 200:
            raise EmbeddingError(f"{self.url} answered HTTP {status}: {payload[:200]!r}")
        try:
            data: Any = orjson.loads(payload)["data"]
            rows = sorted(data, key=lambda d: d.get("index", 0))
            m = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as e:
            raise EmbeddingError(f"{self.url}: unreadable answer ({e})") from None
        if m.ndim != 2 or m.shape[0] != len(texts):
            raise EmbeddingError(f"{self.url}: expected {len(texts)} embeddings, got shape {m.shape}")
        return _unit(m)

    async def aclose(self) -> None:
        s = self._sessions.pop(asyncio.get_running_loop(), None)
        if s is not None:
            await s.close()


def make_embedder(cfg: EmbeddingConfig) -> Embedder:
    """The embedder `cache.semantic.embedding` describes."""
    if cfg.provider == "builtin":
        return BuiltinEmbedder()
    api_key = None
    if cfg.api_key_env:
        api_key = os.environ.get(cfg.api_key_env)
        if not api_key:
            raise MissingSecretError(
                f"cache.semantic.embedding needs an API key in the environment variable {cfg.api_key_env}, "
                "which is not set",
                hint=f"export {cfg.api_key_env}=... or remove api_key_env when the endpoint needs no key",
            )
    assert cfg.base_url is not None
    return OpenAIEmbedder(cfg.base_url, cfg.model, api_key=api_key, timeout_s=cfg.timeout_s)
