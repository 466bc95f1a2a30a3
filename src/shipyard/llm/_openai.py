"""OpenAI-compatible chat completions over HTTP (OpenAI, Gemini's OpenAI endpoint, vLLM, Ollama, the mock).

aiohttp rather than httpx: on the same loopback call it costs about half the CPU per request
(see benchmarks/bench_mock_llm.py), and the gateway's CPU budget per request is small.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, Unpack

import orjson

from shipyard.cost._usage import usage_from_openai_chat
from shipyard.llm._breaker import CircuitBreaker, breaker_for, endpoint_of
from shipyard.llm._events import LLMEvent, emit, listening
from shipyard.llm._types import Attempt, ChatOptions, ChatResponse, LLMError, Message, ToolCall, Usage

if TYPE_CHECKING:
    import aiohttp  # imported when a client is made: a project on the scripted model never needs it

_KIND = {
    "http_429": "rate_limited",
    "http_5xx": "unavailable",
    "connect_error": "unavailable",
    "circuit_open": "unavailable",
    "timeout": "timeout",
    "bad_response": "bad_response",
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP-date; None when absent
    or unreadable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def parse_logprobs(raw: Any) -> list[float] | None:
    """OpenAI `choices[].logprobs` -> the reply's token log-probabilities (None when not returned)."""
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list):
        return None
    values = [
        t["logprob"] for t in content if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
    ]
    return [float(v) for v in values] or None


def parse_tool_calls(raw: list[dict[str, Any]] | None) -> list[ToolCall]:
    """OpenAI `tool_calls` -> ToolCall list. Arguments that are not a JSON object are kept raw and
    given as `{"__invalid_json__": raw}` so the agent (and the trace) can see what the model sent."""
    calls: list[ToolCall] = []
    for i, tc in enumerate(raw or ()):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if isinstance(args, dict):  # some servers (Ollama) send an object, not a string
            parsed: dict[str, Any] = args
            raw_args = orjson.dumps(args).decode()
        else:
            raw_args = args if isinstance(args, str) else ""
            try:
                value = orjson.loads(raw_args) if raw_args.strip() else {}
            except orjson.JSONDecodeError:
                value = None
            parsed = value if isinstance(value, dict) else {"__invalid_json__": raw_args}
        calls.append(
            ToolCall(
                id=tc.get("id") or f"call_{i + 1}",
                name=fn.get("name") or "",
                arguments=parsed,
                raw_arguments=raw_args,
            )
        )
    return calls


def parse_usage(raw: dict[str, Any] | None) -> Usage:
    """OpenAI `usage` -> Usage, read by `shipyard.cost` (where each provider's format is written
    once): cache reads from `prompt_tokens_details.cached_tokens`, reasoning from
    `completion_tokens_details.reasoning_tokens`."""
    return usage_from_openai_chat(raw)


_EPHEMERAL = {"type": "ephemeral"}


def prefix_key(model: str, messages: list[Message], tools: list[dict[str, Any]] | None) -> str:
    """A stable name for a request's cacheable prefix (the model, the system messages before the
    first other message, the tool definitions): OpenAI's `prompt_cache_key`, which routes requests
    sharing it to the same cache."""
    import hashlib

    system = []
    for m in messages:
        if m.get("role") not in ("system", "developer"):
            break
        system.append(m.get("content"))
    raw = orjson.dumps([model, system, tools or []], option=orjson.OPT_SORT_KEYS)
    return "sy-" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def prompt_cache_hints(
    style: str, model: str, messages: list[Message], tools: list[dict[str, Any]] | None
) -> tuple[list[Message], list[dict[str, Any]] | None]:
    """The messages and tools as sent with provider prompt-cache hints: tools sorted by name (a
    stable prefix); with `anthropic`, a `cache_control` breakpoint on the last tool and on the last
    leading system message (its text as a content part)."""
    if tools:
        tools = sorted(tools, key=lambda t: str((t.get("function") or {}).get("name", "")))
    if style != "anthropic":
        return messages, tools
    if tools:
        tools = [*tools[:-1], {**tools[-1], "cache_control": _EPHEMERAL}]
    last_system = -1
    for i, m in enumerate(messages):
        if m.get("role") != "system":
            break
        last_system = i
    if last_system >= 0:
        m = messages[last_system]
        content = m.get("content")
        if isinstance(content, str):
            parts: Any = [{"type": "text", "text": content, "cache_control": _EPHEMERAL}]
        elif isinstance(content, list) and content and isinstance(content[-1], dict):
            parts = [*content[:-1], {**content[-1], "cache_control": _EPHEMERAL}]
        else:
            parts = content
        messages = [*messages[:last_system], {**m, "content": parts}, *messages[last_system + 1 :]]
    return messages, tools


def _error_text(body: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, or the start of the body."""
    try:
        data = orjson.loads(body)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    except orjson.JSONDecodeError:
        pass
    return body[:200].decode("utf-8", "replace").strip() or "(empty body)"


class OpenAIChatClient:
    """A chat client for any OpenAI-compatible `/chat/completions` endpoint.

    Retries (each attempt is kept on the response or the error, and reported as an LLMEvent):

    - HTTP 5xx, timeouts and connection errors are faults: retried up to `max_retries` times, and
      counted by the circuit breaker.
    - HTTP 429 is back-pressure: retried up to `max_rate_limit_retries` times, an allowance of its
      own, and never counted by the breaker. With 20% 5xx and 20% 429 and the defaults (3 and 5) a
      call fails about 0.4% of the time (one shared allowance of 3 would make it 0.4**4 = 2.6%).
    - A `Retry-After` header (seconds or an HTTP date) sets the wait, exactly, up to
      `retry_after_max_s`. When the endpoint asks for longer, the client does not wait: it gives up
      on this model at once (`gave_up="retry_after_too_long"`), so the next fallback model answers.
      Without the header, waits are uniform in [0, min(backoff_max_s, backoff_base_s * 2**n)]
      (full jitter), n counting this call's retries.
    - Other 4xx and unreadable answers are not retried.

    Args:
        base_url: the API root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8100/v1`.
        model: the provider's model id sent in each request.
        name: what Shipyard calls this model (the config key); defaults to `model`. Responses and
            attempts carry this name, so prices and traces find it.
        api_key: sent as `Authorization: Bearer ...` when given.
        headers: extra headers for every request.
        timeout_s: total time allowed for one attempt.
        connect_timeout_s: time allowed to connect (part of `timeout_s`).
        max_retries: retries after faults (5xx, connection errors, timeouts).
        max_rate_limit_retries: retries after 429 answers.
        backoff_base_s, backoff_max_s: the jittered waits when no `Retry-After` is given.
        retry_after_max_s: the longest `Retry-After` the client waits for (see above).
        breaker: this model's circuit breaker; "shared" (default) uses the process-wide one of
            (`base_url`, `model`, `name`) with default settings (see `breaker_for`), None disables it.
        max_connections: connection pool size per event loop.
        extra_body: fields merged into every request body (e.g. provider-specific options).
        prompt_cache: the provider prompt-cache hints sent (`prompt_cache_hints`): "openai"
            (`prompt_cache_key`, the hash of the stable prefix), "anthropic" (`cache_control`
            breakpoints on the system prompt and the last tool, for gateways that pass them on to
            Claude), or "none". With hints on, tool definitions are sent sorted by name, so the
            prefix is the same whatever order an agent lists its tools in.
        provider: the `gen_ai.provider.name` to report.
        seed: seeds the jitter (tests).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        name: str | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 3,
        max_rate_limit_retries: int = 5,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        retry_after_max_s: float = 20.0,
        breaker: CircuitBreaker | Literal["shared"] | None = "shared",
        max_connections: int = 100,
        extra_body: dict[str, Any] | None = None,
        provider: str = "openai",
        seed: int | None = None,
        prompt_cache: Literal["openai", "anthropic", "none"] = "none",
    ) -> None:
        self.prompt_cache = prompt_cache
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.name = name or model
        self.provider = provider
        self.endpoint = endpoint_of(self.base_url)
        self.max_retries = max_retries
        self.max_rate_limit_retries = max_rate_limit_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.extra_body = dict(extra_body or {})
        self.breaker = breaker_for(self.base_url, model, name=self.name) if breaker == "shared" else breaker
        # Every header is set once, on the session: aiohttp adds only what is missing (Host,
        # Accept-Encoding) on its fast path. (Skipping one of its automatic headers instead, as
        # `skip_auto_headers` does, costs a header-dict copy per request.)
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "shipyard",
            **(headers or {}),
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        import aiohttp
        import yarl

        self._url = yarl.URL(self.url)  # parsed once: aiohttp takes a URL as it is
        # what `chat` catches, looked up once (not an `import aiohttp` per call)
        self._connect_errors = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
        self._client_error = aiohttp.ClientError
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s)
        self._max_connections = max_connections
        self._rng = random.Random(seed)
        # how retry waits happen (tests may observe them)
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"OpenAIChatClient(name={self.name!r}, model={self.model!r}, base_url={self.base_url!r})"

    # connection pool ---------------------------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            import aiohttp

            self._drop_dead_sessions()
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=30, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers=self._headers,
                raise_for_status=False,
                # model APIs authenticate by header: cookies (a CDN's bot-management ones) are
                # neither kept nor sent, so no request pays for filtering a jar
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._sessions[loop] = session
        return session

    def _drop_dead_sessions(self) -> None:
        """Forget sessions whose event loop has closed (nothing can be awaited on them any more)."""
        for loop, session in list(self._sessions.items()):
            if loop.is_closed():
                del self._sessions[loop]
                connector = session.connector
                session.detach()
                if connector is not None:
                    connector._close()  # the loop is gone: just mark closed, no awaiting possible

    async def aclose(self) -> None:
        """Close this event loop's connection pool (and forget pools of closed loops)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()
        self._drop_dead_sessions()

    # calls -------------------------------------------------------------------------------------
    def _body(
        self, messages: list[Message], tools: list[dict[str, Any]] | None, options: ChatOptions
    ) -> bytes:
        """The request body: model, messages, tools, every option that is set, then `extra_body`."""
        if self.prompt_cache != "none":
            messages, tools = prompt_cache_hints(self.prompt_cache, self.model, messages, tools)
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        if self.prompt_cache == "openai":
            body["prompt_cache_key"] = prefix_key(self.model, messages, tools)
        for key, value in options.items():
            if value is not None:
                body[key] = value
        if self.extra_body:
            body.update(self.extra_body)
        return orjson.dumps(body)

    def _attempt(
        self, start_ns: int, outcome: str, status: int | None = None, error: str | None = None
    ) -> Attempt:
        return Attempt(
            self.name,
            self.provider,
            self.endpoint,
            start_ns,
            time.time_ns(),
            outcome,
            status,
            error,
            model_id=self.model,
        )

    def _backoff_s(self, retry: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * (2**retry)))

    def _give_up(self, attempts: list[Attempt], reason: str, message: str, kind: str) -> LLMError:
        """The error that ends this model's try; `reason` goes on the last attempt and to listeners."""
        attempts[-1].gave_up = reason
        if listening():
            emit(LLMEvent("give_up", self.name, self.endpoint, reason))
        return LLMError(f"{self.name}: {message}", attempts, kind=kind)

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse:
        """One chat completion, retried as the class docstring says. Every option that is set
        (`ChatOptions`) is sent in the body under its OpenAI name. Raises LLMError carrying every
        attempt (kind "unavailable", "rate_limited", "timeout", "bad_response" or "error")."""
        body = self._body(messages, tools, options)
        session = self._session()
        attempts: list[Attempt] = []
        breaker = self.breaker
        faults = limited = 0  # retries used of each allowance
        while True:
            if breaker is not None and not breaker.allow():
                attempts.append(self._attempt(time.time_ns(), "circuit_open", error="circuit open"))
                raise self._give_up(
                    attempts,
                    "circuit_open",
                    f"circuit open for {self.base_url} (too many of its recent calls failed); "
                    "not calling it until the cooldown passes",
                    "unavailable",
                )
            start = time.time_ns()
            retry_after: float | None = None
            status: int | None = None
            try:
                async with session.post(self._url, data=body) as resp:
                    status = resp.status
                    payload = await resp.read()
                    if status >= 400:
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except asyncio.CancelledError:  # the caller gave up (an agent timeout): no verdict
                if breaker is not None:
                    breaker.release()
                raise
            except TimeoutError:
                outcome, error = "timeout", f"no answer within {self._timeout.total}s"
            except self._connect_errors as e:  # aiohttp's ClientConnectionError, ClientPayloadError
                outcome, error = "connect_error", f"{type(e).__name__}: {e}"
            except self._client_error as e:  # aiohttp.ClientError, e.g. an invalid URL: retrying cannot help
                attempts.append(self._attempt(start, "error", error=f"{type(e).__name__}: {e}"))
                if breaker is not None:
                    breaker.release()
                raise self._give_up(
                    attempts,
                    "not_retryable",
                    f"request to {self.url} failed: {type(e).__name__}: {e}",
                    "error",
                ) from None
            else:
                if status < 300:
                    try:
                        result = self._parse(payload)
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                        attempts.append(self._attempt(start, "bad_response", status, str(e)))
                        if breaker is not None:
                            attempts[-1].breaker = breaker.record_success()
                        raise self._give_up(
                            attempts,
                            "not_retryable",
                            f"unreadable response from {self.url}: {e}",
                            "bad_response",
                        ) from None
                    attempts.append(self._attempt(start, "ok", status))
                    if breaker is not None:
                        attempts[-1].breaker = breaker.record_success()
                    result.attempts = attempts
                    return result
                error = f"HTTP {status}: {_error_text(payload)}"
                if status == 429:
                    outcome = "http_429"
                elif status >= 500:
                    outcome = "http_5xx"
                else:
                    attempts.append(self._attempt(start, "http_4xx", status, error))
                    if breaker is not None:
                        # the endpoint answered; the request was wrong
                        attempts[-1].breaker = breaker.record_success()
                    raise self._give_up(
                        attempts, "not_retryable", f"{self.url} rejected the request ({error})", "error"
                    )
            attempt = self._attempt(start, outcome, status, error)
            attempts.append(attempt)
            if outcome == "http_429":
                if breaker is not None:
                    breaker.release()  # back-pressure, not a fault
                if limited >= self.max_rate_limit_retries:
                    raise self._give_up(
                        attempts,
                        "rate_limit_retries_exhausted",
                        f"still rate limited after {len(attempts)} attempt(s) on {self.url}; last: {error}",
                        "rate_limited",
                    )
                limited += 1
            else:
                if breaker is not None:
                    attempt.breaker = breaker.record_failure()
                if faults >= self.max_retries:
                    raise self._give_up(
                        attempts,
                        "retries_exhausted",
                        f"gave up after {len(attempts)} attempt(s) on {self.url}; last: {error}",
                        _KIND.get(outcome, "error"),
                    )
                faults += 1
            if retry_after is not None and retry_after > self.retry_after_max_s:
                raise self._give_up(
                    attempts,
                    "retry_after_too_long",
                    f"{self.url} asked to retry after {retry_after:g}s, longer than retry_after_max_s "
                    f"({self.retry_after_max_s:g}s); not waiting ({error})",
                    _KIND.get(outcome, "error"),
                )
            wait = retry_after if retry_after is not None else self._backoff_s(faults + limited - 1)
            attempt.wait_s = wait
            if listening():
                emit(LLMEvent("retry", self.name, self.endpoint, outcome, wait_s=wait))
            await self._sleep(wait)

    def _parse(self, payload: bytes) -> ChatResponse:
        data = orjson.loads(payload)
        choice = data["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        tool_calls = parse_tool_calls(message.get("tool_calls"))
        return ChatResponse(
            text=content,
            tool_calls=tool_calls,
            usage=parse_usage(data.get("usage")),
            model=self.name,
            provider=self.provider,
            finish_reason=choice.get("finish_reason") or ("tool_calls" if tool_calls else "stop"),
            response_id=data.get("id"),
            response_model=data.get("model"),
            logprobs=parse_logprobs(logprobs) if (logprobs := choice.get("logprobs")) else None,
        )
