"""Agents written with other frameworks (OpenAI Agents SDK, LangGraph / LangChain, Google ADK),
seen by Shipyard as if written against `ctx`. This package holds what every integration stands on:

- **the model proxy**: a framework that speaks OpenAI's chat-completions API gets a base URL whose
  every call goes through `ctx.llm` of the current interaction (traced, priced, retried, failed
  over, recorded and replayed). In process, through an httpx transport:

      client = openai.AsyncOpenAI(
          base_url=PROXY_BASE_URL, api_key="shipyard", http_client=async_http_client(), max_retries=0
      )

  or over loopback HTTP for frameworks that only take a URL: `base_url_for(ctx)`. Create the
  framework's clients with `max_retries=0`: Shipyard has already retried and failed over when it
  answers an error (error answers also carry `x-should-retry: false`). The model the framework
  names is not used; the agent version's configured model answers. Streaming is answered once
  the model has answered (see `shipyard.integrations._proxy`).
- **tools the framework runs**, recorded as Shipyard tool calls: `ctx.tools.observe(...)`; and
  **declared** when the agent loads (`_declared.DeclaredTools` as its `spec.tools`: names,
  descriptions, JSON schemas, found in the agent / graph / tree without running it), so guardrails,
  eval suites and the launch checklist know them. They count as having side effects unless the agent
  marks them (`idempotent=[...]`, `tags={...}` on `shipyard_agent`, `langgraph_agent`, `adk_agent`).
- **warm-up**: `AgentSpec.warmup`, run by the server before /readyz and by an eval run before timing.
- **the framework's own spans**: `Interaction.spans` opens spans in the interaction's trace, and
  `Interaction.span_parent` says which of them the `chat` / `execute_tool` spans opened now go under.

One module per framework, imported only by agents written with it:
- `shipyard.integrations.langgraph`: `chat_model(...)` where the graph had `ChatOpenAI(...)`, and
  `langgraph_agent("name", graph)` on the compiled graph (its ToolNodes' calls become tool calls).
- `shipyard.integrations.openai_agents`: `shipyard_agent("name", starting_agent)`, or
  `Runner.run(..., run_config=run_config())` in your own agent function (tools observed, the SDK's
  traces turned into spans of the interaction instead of going to OpenAI).
- `shipyard.integrations.adk`: `adk_agent("name", root_agent)` (or your `Runner` / `App`): every
  model of the agent tree answered through the proxy, every tool ADK runs observed, ADK's
  OpenTelemetry spans kept in the interaction's trace (`_otel.framework_spans`).

Frameworks are not dependencies of Shipyard: nothing here imports them."""

from shipyard.integrations._loopback import base_url_for
from shipyard.integrations._transport import (
    PROXY_BASE_URL,
    ProxyTransport,
    SyncProxyTransport,
    async_http_client,
    http_client,
    proxy_transport,
    sync_proxy_transport,
)

__all__ = [
    "PROXY_BASE_URL",
    "ProxyTransport",
    "SyncProxyTransport",
    "async_http_client",
    "base_url_for",
    "http_client",
    "proxy_transport",
    "sync_proxy_transport",
]
