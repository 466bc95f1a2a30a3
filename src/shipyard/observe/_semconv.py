"""Names other tools read (DESIGN.md §6): OpenTelemetry GenAI semantic conventions and Shipyard's own.

One table, so a rename is a one-line change."""

from __future__ import annotations

from typing import Final

# span names (format with the agent / model / tool / guardrail name)
SPAN_AGENT: Final = "invoke_agent {}"
SPAN_CHAT: Final = "chat {}"
SPAN_TOOL: Final = "execute_tool {}"
SPAN_GUARDRAIL: Final = "apply_guardrail {}"
SPAN_ATTEMPT: Final = "attempt {}"

# gen_ai.operation.name values
OP_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_TOOL: Final = "execute_tool"
OP_GUARDRAIL: Final = "apply_guardrail"

# attributes
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
OUTPUT_TYPE: Final = "gen_ai.output.type"  # text | json, from response_format
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_VERSION: Final = "gen_ai.agent.version"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
HTTP_STATUS: Final = "http.response.status_code"

# Shipyard's own
COST_USD: Final = "shipyard.cost_usd"
USER_ID: Final = "shipyard.user_id"
TRAFFIC_SOURCE: Final = "shipyard.traffic_source"
INTERACTION_ID: Final = "shipyard.interaction_id"
STATUS: Final = "shipyard.status"
TOOL_STATUS: Final = "shipyard.tool.status"
TOOL_CACHED: Final = "shipyard.tool.cached"
ATTEMPT: Final = "shipyard.attempt"
ATTEMPT_OUTCOME: Final = "shipyard.attempt.outcome"
REPLAYED: Final = "shipyard.replayed"
GUARDRAIL_VERDICT: Final = "shipyard.guardrail.verdict"
GUARDRAIL_KIND: Final = "shipyard.guardrail.kind"
GUARDRAIL_STAGE: Final = "shipyard.guardrail.stage"  # input | output
GUARDRAIL_REASON: Final = "shipyard.guardrail.reason"
FEATURE_FLAGS: Final = "shipyard.feature_flags"  # "flag=variant:reason" per evaluation
REQUEST_TOOL_CHOICE: Final = "shipyard.request.tool_choice"  # auto | none | required | JSON of a named one
REQUEST_PARALLEL_TOOL_CALLS: Final = "shipyard.request.parallel_tool_calls"

# chat request options (shipyard.types.ChatOptions keys) -> the span attribute that records each
CHAT_OPTION_ATTRIBUTES: Final[dict[str, str]] = {
    "temperature": REQUEST_TEMPERATURE,
    "max_tokens": REQUEST_MAX_TOKENS,
    "top_p": REQUEST_TOP_P,
    "frequency_penalty": REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": REQUEST_PRESENCE_PENALTY,
    "seed": REQUEST_SEED,
    "stop": REQUEST_STOP_SEQUENCES,
    "tool_choice": REQUEST_TOOL_CHOICE,
    "response_format": OUTPUT_TYPE,
    "parallel_tool_calls": REQUEST_PARALLEL_TOOL_CALLS,
}

# span events on a `chat {model}` span (retries, give-ups, fallbacks, circuit breaker changes)
EVENT_LLM_RETRY: Final = "shipyard.llm.retry"
EVENT_LLM_GIVE_UP: Final = "shipyard.llm.give_up"
EVENT_LLM_FALLBACK: Final = "shipyard.llm.fallback"
EVENT_LLM_BREAKER: Final = "shipyard.llm.breaker"
LLM_WAIT_S: Final = "shipyard.llm.retry.wait_s"
LLM_GIVE_UP_REASON: Final = "shipyard.llm.give_up.reason"
LLM_FALLBACK_FROM: Final = "shipyard.llm.fallback.from"
LLM_FALLBACK_TO: Final = "shipyard.llm.fallback.to"
LLM_BREAKER_FROM: Final = "shipyard.llm.breaker.from"
LLM_BREAKER_TO: Final = "shipyard.llm.breaker.to"

# metric names (OTel); Prometheus exposition replaces dots with underscores
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TOKEN_TYPE: Final = "gen_ai.token.type"
