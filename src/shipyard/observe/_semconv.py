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
FEATURE_FLAGS: Final = "shipyard.feature_flags"  # "flag=variant:reason" per evaluation

# metric names (OTel); Prometheus exposition replaces dots with underscores
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TOKEN_TYPE: Final = "gen_ai.token.type"
