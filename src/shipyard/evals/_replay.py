"""Record and replay of model, tool and judge calls, kept per (case, repeat, turn).

A recorded run writes every call's answer to `.shipyard/replay/<agent>/<suite>.jsonl`; a replayed
run answers each call from that file instead of calling anything, so it is deterministic and free.
A recording replaces the previous one only when every model and tool call of the run was answered
(`ReplayCache.unanswered`): a `--record` with the model down or timing out keeps the last good
recording instead of leaving one that replays as errors.
A call is found by its scope (`suite/case#repeat/turn`), its kind, a hash of the request and how
many identical requests came before it in that scope. A request the recording does not have (the
prompt, the tools or the history changed) is a replay miss: the repeat becomes ERROR and says so."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import orjson

from shipyard._atomic import atomic_file
from shipyard.errors import NotFoundError
from shipyard.llm import ChatResponse, LLMError, ToolCall, Usage
from shipyard.store import private_dir
from shipyard.tools import ToolResult

if TYPE_CHECKING:
    from shipyard.evals._suite import FixedToolResult

ReplayMode = Literal["record", "replay"]
T = TypeVar("T")


class ReplayMiss(RuntimeError):
    """A replayed run asked for a tool call the recording does not have."""


def request_hash(payload: Any) -> str:
    """A short stable hash of a request (keys sorted, non-JSON values as text)."""
    raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def encode_chat(resp: ChatResponse) -> dict[str, Any]:
    u = resp.usage
    return {
        "text": resp.text,
        "tool_calls": [[c.id, c.name, c.arguments, c.raw_arguments] for c in resp.tool_calls],
        # older recordings have the first three; Usage(*...) reads either
        "usage": [
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.cache_write_input_tokens,
            u.reasoning_tokens,
        ],
        "model": resp.model,
        "provider": resp.provider,
        "finish_reason": resp.finish_reason,
        "response_id": resp.response_id,
    }


def decode_chat(d: dict[str, Any]) -> ChatResponse:
    return ChatResponse(
        text=d["text"],
        tool_calls=[ToolCall(i, n, a, r) for i, n, a, r in d["tool_calls"]],
        usage=Usage(*d["usage"]),
        model=d["model"],
        provider=d["provider"],
        finish_reason=d["finish_reason"],
        response_id=d.get("response_id"),
    )


def encode_tool(r: ToolResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "arguments": r.arguments,
        "status": r.status,
        "value": r.value,
        "error": r.error,
        "duration_ms": r.duration_ms,
        "cached": r.cached,
    }


def decode_tool(d: dict[str, Any]) -> ToolResult:
    return ToolResult(**d)


def replay_path(root: Path, agent: str, suite: str) -> Path:
    """Where the recording of one agent's suite lives."""
    safe = re.sub(r"[^\w.-]+", "_", suite) or "suite"
    return root / agent / f"{safe}.jsonl"


class ReplayCache:
    """The recording of one suite: written in record mode, read in replay mode.

    Args:
        path: the JSONL file.
        mode: `record` (start a new recording) or `replay` (answer from an existing one)."""

    def __init__(self, path: Path, mode: ReplayMode) -> None:
        self.path = path
        self.mode = mode
        self._entries: dict[str, Any] = {}
        self._out: IO[bytes] | None = None
        self.misses = 0
        self.unanswered = 0  # recorded calls that raised instead of answering
        if mode == "replay":
            if not path.is_file():
                raise NotFoundError(
                    f"no recording at {path} to replay",
                    hint="run the suite once with --record (it writes the recording), then --replay",
                )
            with path.open("rb") as f:
                for line in f:
                    if line.strip():
                        entry = orjson.loads(line)
                        self._entries[entry["k"]] = entry["v"]
        else:  # written beside the old recording, which it replaces at `close(keep=True)` only
            private_dir(path.parent)  # recordings hold model answers: owner-only, like the store
            self._writing = contextlib.ExitStack()
            partial = self._writing.enter_context(atomic_file(path, private=True, suffix=".jsonl"))
            self._out = self._writing.enter_context(partial.open("wb"))

    def get(self, key: str) -> Any:
        return self._entries.get(key)

    def put(self, key: str, value: Any) -> None:
        if self._out is not None:
            self._out.write(orjson.dumps({"k": key, "v": value}, default=str) + b"\n")

    async def answered(self, call: Callable[[], Awaitable[T]]) -> T:
        """`await call()`, counting it in `unanswered` when it raises."""
        try:
            return await call()
        except BaseException:
            self.unanswered += 1
            raise

    def close(self, keep: bool = True) -> None:
        """End a recording: `keep` makes it the suite's recording (replacing the previous one);
        otherwise it is discarded and the previous recording, if any, stays."""
        if self._out is None:
            return
        self._out = None
        if keep:
            self._writing.close()
        else:
            self._writing.__exit__(_Discarded, _Discarded(), None)

    def scope(self, scope: str) -> RecordReplay:
        """The interceptor of one (case, repeat, turn)."""
        return RecordReplay(self, scope)


class _Discarded(Exception):
    """Ends a recording's temp file without renaming it over the recording."""


class RecordReplay:
    """A runtime CallInterceptor (and the judge's cache) for one scope of a ReplayCache."""

    __slots__ = ("_cache", "_seen", "scope")

    def __init__(self, cache: ReplayCache, scope: str) -> None:
        self._cache = cache
        self.scope = scope
        self._seen: Counter[str] = Counter()

    def key(self, kind: str, payload: Any) -> str:
        h = f"{kind}|{request_hash(payload)}"
        n = self._seen[h]
        self._seen[h] += 1
        return f"{self.scope}|{h}|{n}"

    def _missing(self, what: str) -> str:
        self._cache.misses += 1
        return (
            f"replay: the recording has no {what} for this request in {self.scope} (the prompt, tools or "
            "history differ from the recorded run); record again with --record"
        )

    async def chat(
        self, kind: str, request: Any, call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]:
        """A model call (`kind` llm or judge), recorded or replayed."""
        key = self.key(kind, request)
        if self._cache.mode == "replay":
            entry = self._cache.get(key)
            if entry is None:
                raise LLMError(self._missing(f"{kind} call"), kind="replay_miss")
            return decode_chat(entry), True
        resp = await self._cache.answered(call)
        self._cache.put(key, encode_chat(resp))
        return resp, False

    async def llm_call(
        self, request: dict[str, Any], call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]:
        return await self.chat("llm", request, call)

    async def tool_call(
        self, name: str, arguments: dict[str, Any], call: Callable[[], Awaitable[ToolResult]]
    ) -> tuple[ToolResult, bool]:
        key = self.key("tool", {"name": name, "arguments": arguments})
        if self._cache.mode == "replay":
            entry = self._cache.get(key)
            if entry is None:
                raise ReplayMiss(self._missing(f"call of tool {name!r}"))
            return decode_tool(entry), True
        result = await self._cache.answered(call)
        self._cache.put(key, encode_tool(result))
        return result, False


def idempotent_tools(registry: Any) -> Callable[[str], bool]:
    """`may_run` for FixedTools: whether a tool of `registry` is idempotent (read-only)."""

    def may_run(name: str) -> bool:
        try:
            return bool(registry.get(name).idempotent)
        except Exception:  # an unknown tool never runs
            return False

    return may_run


def _same(given: Any, called: Any) -> bool:
    """An argument a fixed result names equals the one called with (`10001` matches `"10001"`)."""
    return given == called or (not isinstance(given, dict | list) and str(given) == str(called))


class FixedTools:
    """The CallInterceptor of a case that fixes tool answers (`Case.tool_results`): a call that one
    of them matches gets that answer and the tool does not run (it is not recorded either: the case
    file holds it); every other call goes to `inner` (a record/replay scope), or runs.

    Args:
        fixed: the case's fixed answers; the first that matches a call answers it.
        inner: the interceptor every other call goes through (None: calls run).
        only: a call no fixed answer matches runs only when `may_run(tool)` says so (an idempotent,
            read-only tool); any other raises ReplayMiss and never runs (`recorded_tools_only`).
        may_run: which tools may run when `only` is set (default: none)."""

    __slots__ = ("_fixed", "_inner", "_may_run", "_only")

    def __init__(
        self,
        fixed: Sequence[FixedToolResult],
        inner: RecordReplay | None = None,
        *,
        only: bool = False,
        may_run: Callable[[str], bool] | None = None,
    ) -> None:
        self._fixed = list(fixed)
        self._inner = inner
        self._only = only
        self._may_run = may_run

    def answer(self, name: str, arguments: dict[str, Any]) -> ToolResult | None:
        """The fixed answer to a call, or None when the case fixes none for it."""
        for f in self._fixed:
            if f.tool != name:
                continue
            if f.args is not None and not all(
                k in arguments and _same(v, arguments[k]) for k, v in f.args.items()
            ):
                continue
            if f.error is not None:
                return ToolResult(name, arguments, "error", error=f.error)
            return ToolResult(name, arguments, "success", value=f.result)
        return None

    async def llm_call(
        self, request: dict[str, Any], call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]:
        if self._inner is not None:
            return await self._inner.llm_call(request, call)
        return await call(), False

    async def tool_call(
        self, name: str, arguments: dict[str, Any], call: Callable[[], Awaitable[ToolResult]]
    ) -> tuple[ToolResult, bool]:
        fixed = self.answer(name, arguments)
        if fixed is not None:
            return fixed, False
        if self._only and not (self._may_run is not None and self._may_run(name)):
            raise ReplayMiss(
                f"the case has no recorded result for tool {name!r} with arguments {arguments!r}, and "
                f"{name!r} is not idempotent, so it never runs in this case (recorded_tools_only); add its "
                "result under tool_results"
            )
        if self._inner is not None:
            return await self._inner.tool_call(name, arguments, call)
        return await call(), False
