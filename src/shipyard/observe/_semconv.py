"""Names other tools read (DESIGN.md §6): OpenTelemetry GenAI semantic conventions and Shipyard's own.

One table, so a rename is a one-line change."""

from __future__ import annotations

from typing import Final

# span names (format with the agent / model / tool / guardrail name)
SPAN_AGENT: Final = "invoke_agent {}"
SPAN_CHAT: Final = "chat {}"
SPAN_TOOL: Final = "execute_tool {}"
SPAN_GUARDRAIL: Final = "apply_guardrail {}"
SPAN_ATTEMPT: Final = "POST"  # one HTTP request of a model call (HTTP semconv: `{method}`)

# gen_ai.operation.name values
OP_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_TOOL: Final = "execute_tool"
OP_GUARDRAIL: Final = "apply_guardrail"  # not a GenAI registry operation: under SHIPYARD_OPERATION

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
CACHE_WRITE_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"  # part of input tokens
REASONING_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"  # part of output tokens
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_VERSION: Final = "gen_ai.agent.version"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"  # opt-in content, as the two below
INPUT_MESSAGES: Final = "gen_ai.input.messages"  # JSON, the conventions' input-messages schema
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"  # JSON, the conventions' output-messages schema
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_STATUS: Final = "http.response.status_code"
HTTP_METHOD: Final = "http.request.method"
HTTP_RESEND_COUNT: Final = "http.request.resend_count"  # on an attempt after the first

# Shipyard's own
# the operation of a span the GenAI registry has no operation name for (`apply_guardrail`): GenAI-aware
# backends read `gen_ai.operation.name` for model, agent and tool operations only
SHIPYARD_OPERATION: Final = "shipyard.operation.name"
# the model's key under `models:` in shipyard.yaml; `gen_ai.request.model` is the provider's model id
MODEL_KEY: Final = "shipyard.model.key"
COST_USD: Final = "shipyard.cost_usd"
USER_ID: Final = "shipyard.user_id"
TRAFFIC_SOURCE: Final = "shipyard.traffic_source"
INTERACTION_ID: Final = "shipyard.interaction_id"
STATUS: Final = "shipyard.status"
TOOL_STATUS: Final = "shipyard.tool.status"
TOOL_CACHED: Final = "shipyard.tool.cached"
# the cache_lookup span (`shipyard.operation.name` = cache_lookup): which cache answered (exact |
# semantic), whether it hit, the semantic similarity of the best candidate and why candidates failed
SPAN_CACHE: Final = "cache_lookup {}"
OP_CACHE: Final = "cache_lookup"
CACHE_KIND: Final = "shipyard.cache.kind"
CACHE_HIT: Final = "shipyard.cache.hit"
CACHE_SIMILARITY: Final = "shipyard.cache.similarity"
CACHE_REJECTED: Final = "shipyard.cache.rejected"  # negation | number | entity | content | flags
CACHE_SAVED_USD: Final = "shipyard.cache.saved_usd"
ATTEMPT: Final = "shipyard.attempt"
ATTEMPT_OUTCOME: Final = "shipyard.attempt.outcome"
REPLAYED: Final = "shipyard.replayed"
# the reply's mean token log-probability and token count, when the provider returned logprobs
LOGPROB_MEAN: Final = "shipyard.response.logprob_mean"
LOGPROB_TOKENS: Final = "shipyard.response.logprob_tokens"
GUARDRAIL_VERDICT: Final = "shipyard.guardrail.verdict"
GUARDRAIL_KIND: Final = "shipyard.guardrail.kind"
GUARDRAIL_STAGE: Final = "shipyard.guardrail.stage"  # input | tool_call | tool_result | output
GUARDRAIL_REASON: Final = "shipyard.guardrail.reason"
GUARDRAIL_SCORE: Final = "shipyard.guardrail.score"  # the check's confidence, 0..1, when it has one
GUARDRAIL_LATENCY_MS: Final = "shipyard.guardrail.latency_ms"
FEATURE_FLAGS: Final = "shipyard.feature_flags"  # "flag=variant:reason" per evaluation
REQUEST_TOOL_CHOICE: Final = "shipyard.request.tool_choice"  # auto | none | required | JSON of a named one
REQUEST_PARALLEL_TOOL_CALLS: Final = "shipyard.request.parallel_tool_calls"
# model routing, on the `chat {model}` span: the tier that answered and why (`shipyard.routing`)
ROUTING_TIER: Final = "shipyard.routing.tier"  # small | medium | large
ROUTING_DECIDED_BY: Final = "shipyard.routing.decided_by"  # step, rule, rules, learned, sticky, ...
ROUTING_REASONS: Final = "shipyard.routing.reasons"  # the reasons, in words
ROUTING_CONFIDENCE: Final = "shipyard.routing.confidence"  # 0..1, when the router scored this call
ROUTING_ESCALATED: Final = "shipyard.routing.escalated"  # this call moved the session up a tier
ROUTING_STEP: Final = "shipyard.routing.step"  # the agent's name for the step, when it gave one
ROUTING_SAVING_USD: Final = "shipyard.routing.saving_usd"  # the reference tier's price minus the cost

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

# feature flags (OTel feature-flag semantic conventions): one event per evaluation
EVENT_FLAG_EVALUATION: Final = "feature_flag.evaluation"
FLAG_KEY: Final = "feature_flag.key"
FLAG_PROVIDER: Final = "feature_flag.provider.name"
FLAG_VARIANT: Final = "feature_flag.result.variant"
FLAG_VALUE: Final = "feature_flag.result.value"  # only when there is no variant (the caller's default)
FLAG_REASON: Final = (
    "feature_flag.result.reason"  # static | default | targeting_match | split | disabled | error
)
FLAG_CONTEXT_ID: Final = "feature_flag.context.id"  # the targeting key
FLAG_VERSION: Final = "feature_flag.version"  # the flag set's revision
FLAG_ERROR_MESSAGE: Final = "feature_flag.error.message"
FLAG_PROVIDER_NAME: Final = "shipyard"

# metric names (OTel); Prometheus exposition replaces dots with underscores
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TOKEN_TYPE: Final = "gen_ai.token.type"
