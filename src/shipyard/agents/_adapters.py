"""Agents that live elsewhere (DESIGN.md §2): an HTTP endpoint (JSON in, JSON out), or a chat model
used as the agent. Each is an AgentSpec, so the runtime treats it like any other agent."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from shipyard.agents._contract import NO_TOOLS, STATUSES, AgentContext, AgentResult, AgentSpec, Status
from shipyard.config import ADAPTERS, AdapterConfig, AgentAdapter
from shipyard.cost._usage import parse_usage
from shipyard.errors import ShipyardError
from shipyard.types import Message, ToolSet, Usage

if TYPE_CHECKING:
    import httpx  # imported by the HTTP adapter when it is used

_MISSING = object()
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# the words endpoints use for a status, mapped onto AgentResult.status
STATUS_WORDS: dict[str, Status] = {
    **{s: s for s in STATUSES},  # type: ignore[misc]
    "ok": "completed", "success": "completed", "succeeded": "completed", "done": "completed",
    "escalate": "escalated", "handoff": "escalated", "handover": "escalated", "human": "escalated",
    "error": "failed", "failure": "failed", "fail": "failed",
}  # fmt: skip


def get_path(data: Any, path: str) -> Any:
    """The value at a dotted path (`data.answer`, `choices.0.message.content`), or _MISSING."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _usage(body: dict[str, Any]) -> dict[str, int] | None:
    """A usage block from the response (top level or under `metadata`), in Shipyard's names."""
    raw = body.get("usage")
    if not isinstance(raw, dict) and isinstance(body.get("metadata"), dict):
        raw = body["metadata"].get("usage")
    if not isinstance(raw, dict):
        return None

    if any(k in raw for k in _SHIPYARD_USAGE_PARTS):  # Shipyard's own names (Usage's fields)
        found = {k: int(v) for k in _SHIPYARD_USAGE if isinstance(v := raw.get(k, 0), int | float)}
    else:  # a provider's format (OpenAI, Anthropic, Gemini), read by shipyard.cost
        u = parse_usage(raw)
        found = {k: getattr(u, k) for k in _SHIPYARD_USAGE}
    # the cache-write and reasoning parts only when there are some
    return {k: v for k, v in found.items() if v or k not in ("cache_write_input_tokens", "reasoning_tokens")}


_SHIPYARD_USAGE = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "reasoning_tokens",
)
_SHIPYARD_USAGE_PARTS = _SHIPYARD_USAGE[2:]


def _failed(message: str, kind: str, **metadata: Any) -> AgentResult:
    return AgentResult(output=message, status="failed", metadata={"error_kind": kind, **metadata})


class HttpAgent:
    """Calls an agent over HTTP: POSTs `{input_field: input, session_field: session id}` and reads
    `output_field` (and `status_field`) from the JSON answer. One pooled client per event loop.
    A `usage` block in the answer (top level or under `metadata`; OpenAI's or Shipyard's names) is
    the remote agent's token use: the runtime prices it at the agent's configured model.

    Args:
        cfg: the adapter settings from shipyard.yaml.
        name: the agent's name (used in messages).
    """

    def __init__(self, cfg: AdapterConfig, name: str) -> None:
        if not cfg.url:
            raise ShipyardError(f"agent {name!r}: an 'http' adapter needs url", hint="set adapter.url")
        self.cfg = cfg
        self.name = name
        self.url: str = cfg.url
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _headers(self) -> dict[str, str]:
        """Configured headers with `${VAR}` taken from the environment (for secrets)."""
        out = {}
        for key, value in self.cfg.headers.items():
            missing = [v for v in _ENV.findall(value) if v not in os.environ]
            if missing:
                raise ShipyardError(
                    f"agent {self.name!r}: header {key!r} needs environment variable {missing[0]}, "
                    "which is not set",
                    hint=f"export {missing[0]}=... before starting shipyard",
                )
            out[key] = _ENV.sub(lambda m: os.environ[m.group(1)], value)
        return out

    def client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.cfg.timeout_s), headers=self._headers(),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )  # fmt: skip
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    async def __call__(self, user_input: str, ctx: AgentContext) -> AgentResult:
        import httpx

        payload: dict[str, Any] = {self.cfg.input_field: user_input}
        if self.cfg.session_field:
            payload[self.cfg.session_field] = ctx.session_id
        where = f"HTTP agent {self.name!r} at {self.url}"
        t0 = time.perf_counter()
        try:
            resp = await self.client().post(self.url, json=payload)
        except ShipyardError as e:
            return _failed(str(e), "config")
        except httpx.TimeoutException:
            return _failed(f"{where} did not answer within {self.cfg.timeout_s:g}s", "timeout")
        except httpx.HTTPError as e:
            return _failed(f"{where} cannot be reached: {type(e).__name__}: {e}", "unavailable")
        meta: dict[str, Any] = {
            "latency_ms": (time.perf_counter() - t0) * 1000,
            "http_status": resp.status_code,
        }
        if resp.status_code >= 400:
            snippet = resp.text[:200].strip()
            return _failed(f"{where} answered HTTP {resp.status_code}: {snippet}", "http_error", **meta)
        try:
            body = resp.json()
        except ValueError:
            kind = resp.headers.get("content-type", "no content type")
            return _failed(f"{where} answered with a body that is not JSON ({kind})", "bad_response", **meta)
        usage = _usage(body) if isinstance(body, dict) else None
        if usage:
            meta["usage"] = usage
        result = self._result(body, where, meta)
        if usage:  # priced at the agent's configured model by the runtime (tokens and cost of the record)
            result.usage = Usage(**usage)
        return result

    def _result(self, body: Any, where: str, meta: dict[str, Any]) -> AgentResult:
        """The agent's answer from a JSON body: its output field, and its status field if set."""
        output = get_path(body, self.cfg.output_field)
        if output is _MISSING or output is None:
            keys = ", ".join(body) if isinstance(body, dict) else type(body).__name__
            return _failed(
                f"{where} answered without the field {self.cfg.output_field!r} (it has: {keys})",
                "bad_response", **meta,
            )  # fmt: skip
        status: Status = "completed"
        if self.cfg.status_field:
            remote = get_path(body, self.cfg.status_field)
            if remote is not _MISSING:
                meta["remote_status"] = remote
                status = STATUS_WORDS.get(str(remote).strip().lower(), "completed")
        text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        return AgentResult(output=text, status=status, metadata=meta)


def http_agent(cfg: AdapterConfig, name: str) -> AgentSpec:
    """An agent served over HTTP (`adapter: {kind: http, url: ...}`); see HttpAgent."""
    return AgentSpec(name=name, fn=HttpAgent(cfg, name), is_async=True)


MAX_TOOL_ROUNDS = 8


def openai_chat_agent(
    name: str, *, tools: ToolSet | None = None, max_rounds: int = MAX_TOOL_ROUNDS
) -> AgentSpec:
    """A model as the agent: `ctx.llm.chat` with the rendered system prompt (if the version has a
    bundle), the conversation so far and the user's message, and the agent's tools; each tool call
    the model makes is run through `ctx.tools` (traced, schema-checked) and its result sent back,
    until the model answers with text.

    Args:
        name: the agent's name.
        tools: the tools the model may call (none by default). To give them from shipyard.yaml,
            point `entry:` at `openai_chat_agent("name", tools=registry)` in the project's code.
        max_rounds: the most model calls one interaction makes; a model still calling tools then
            fails the interaction (`error_kind: too_many_tool_rounds`).
    """
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")

    async def chat_agent(user_input: str, ctx: AgentContext) -> AgentResult:
        system = ctx.system_prompt or (ctx.prompts.render({}) if ctx.prompts is not None else "")
        messages: list[Message] = [
            *([{"role": "system", "content": system}] if system else []),
            *ctx.history,
            {"role": "user", "content": user_input},
        ]
        definitions = ctx.tools.definitions() or None
        for rounds in range(1, max_rounds + 1):
            reply = await ctx.llm.chat(messages, tools=definitions)
            meta = {"finish_reason": reply.finish_reason, "model": reply.model, "rounds": rounds}
            if not reply.tool_calls:
                if not reply.text:
                    return _failed("the model returned no text", "empty_response", **meta)
                return AgentResult(output=reply.text, metadata=meta)
            messages.append(reply.to_message())
            for call in reply.tool_calls:
                result = await ctx.tools.run(call)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result.content()}
                )
        return _failed(
            f"the model was still calling tools after {max_rounds} model calls",
            "too_many_tool_rounds",
            **meta,
        )

    return AgentSpec(name=name, fn=chat_agent, is_async=True, tools=tools if tools is not None else NO_TOOLS)


def _needs_url(cfg: AdapterConfig) -> None:
    if not cfg.url:
        raise ValueError("an 'http' adapter needs url")
    if cfg.tools is not None:
        raise ValueError("an 'http' adapter runs its tools itself; `tools` is for kind openai_chat")


def _openai_chat(cfg: AdapterConfig, name: str) -> AgentSpec:
    return openai_chat_agent(name)


def _model_as_agent_settings(cfg: AdapterConfig) -> None:
    if cfg.url is not None:
        raise ValueError("an 'openai_chat' adapter calls the agent's configured model; it takes no url")


BUILTIN_ADAPTERS: dict[str, AgentAdapter] = {
    "http": AgentAdapter(http_agent, _needs_url),
    "openai_chat": AgentAdapter(_openai_chat, _model_as_agent_settings),
}
"""Registered by `shipyard.agents._plugins` (the `agents` entry point)."""


def adapter_spec(cfg: AdapterConfig, name: str) -> AgentSpec:
    """The agent spec for an adapter config, built by the adapter kind its `kind` names."""
    if cfg.kind not in ADAPTERS:
        raise ShipyardError(f"agent {name!r}: {ADAPTERS.unknown_message(cfg.kind)}")
    spec: AgentSpec = ADAPTERS.get(cfg.kind).build(cfg, name)
    return spec
