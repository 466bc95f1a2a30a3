"""The `shipyard.yaml` schema and its loading; errors name the file, the field path and the line."""

from shipyard.config._adapters import ADAPTERS, AdapterConfig, AgentAdapter
from shipyard.config._alerts import (
    ALERT_METRICS,
    EVENT_METRICS,
    AlertRule,
    AlertsConfig,
    builtin_alert_rules,
    default_alert_rules,
    parse_window,
)
from shipyard.config._budgets import DEFAULT_GRACEFUL_ANSWER, BudgetLimit, BudgetsConfig
from shipyard.config._evals import EvalsConfig, UserSimulatorConfig
from shipyard.config._flags import FlagsConfig
from shipyard.config._gates import GatesConfig, RegressionPolicy, SafetyPolicy, StagePolicy
from shipyard.config._guardrails import (
    DEFAULT_BLOCKED_REPLY,
    DEFAULT_ESCALATED_REPLY,
    GUARDRAIL_KINDS,
    GuardrailConfig,
    GuardrailKind,
    GuardrailsConfig,
)
from shipyard.config._guardrails import (
    Stage as GuardrailStage,
)
from shipyard.config._incidents import INCIDENT_SOURCES, IncidentRule, IncidentsConfig, RuleFilter
from shipyard.config._load import (
    Lines,
    LoadedConfig,
    find_config,
    format_validation_error,
    line_of,
    load_config,
    load_config_file,
    load_yaml_with_lines,
    parse_model,
)
from shipyard.config._models import (
    PROVIDERS,
    BreakerConfig,
    DatedPrices,
    ModelConfig,
    ModelPrices,
    ModelProvider,
    PriceRates,
)
from shipyard.config._pipeline import PIPELINE_STAGES, PipelineConfig, ProductionStage
from shipyard.config._rate_limits import RateLimit, RateLimitsConfig
from shipyard.config._reload import ReloadConfig
from shipyard.config._retention import check_ledger_max_age
from shipyard.config._routing import TIERS, RoutingConfig, routing_problems
from shipyard.config._schema import (
    AgentConfig,
    AgentModelSettings,
    AgentVersionConfig,
    ContentCaptureConfig,
    ServerConfig,
    ShipyardConfig,
    StoreConfig,
)
from shipyard.config._schema_base import MODULE_ATTR, StrictModel, empty_list
from shipyard.config._shadow import ShadowConfig, ShadowMirrorConfig

__all__ = [
    "ADAPTERS",
    "ALERT_METRICS",
    "DEFAULT_BLOCKED_REPLY",
    "DEFAULT_ESCALATED_REPLY",
    "DEFAULT_GRACEFUL_ANSWER",
    "EVENT_METRICS",
    "GUARDRAIL_KINDS",
    "INCIDENT_SOURCES",
    "MODULE_ATTR",
    "PIPELINE_STAGES",
    "PROVIDERS",
    "TIERS",
    "AdapterConfig",
    "AgentAdapter",
    "AgentConfig",
    "AgentModelSettings",
    "AgentVersionConfig",
    "AlertRule",
    "AlertsConfig",
    "BreakerConfig",
    "BudgetLimit",
    "BudgetsConfig",
    "ContentCaptureConfig",
    "DatedPrices",
    "EvalsConfig",
    "FlagsConfig",
    "GatesConfig",
    "GuardrailConfig",
    "GuardrailKind",
    "GuardrailStage",
    "GuardrailsConfig",
    "IncidentRule",
    "IncidentsConfig",
    "Lines",
    "LoadedConfig",
    "ModelConfig",
    "ModelPrices",
    "ModelProvider",
    "PipelineConfig",
    "PriceRates",
    "ProductionStage",
    "RateLimit",
    "RateLimitsConfig",
    "RegressionPolicy",
    "ReloadConfig",
    "RoutingConfig",
    "RuleFilter",
    "SafetyPolicy",
    "ServerConfig",
    "ShadowConfig",
    "ShadowMirrorConfig",
    "ShipyardConfig",
    "StagePolicy",
    "StoreConfig",
    "StrictModel",
    "UserSimulatorConfig",
    "builtin_alert_rules",
    "check_ledger_max_age",
    "default_alert_rules",
    "empty_list",
    "find_config",
    "format_validation_error",
    "line_of",
    "load_config",
    "load_config_file",
    "load_yaml_with_lines",
    "parse_model",
    "parse_window",
    "routing_problems",
]
