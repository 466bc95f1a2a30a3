"""The `shipyard.yaml` schema and its loading; errors name the file, the field path and the line."""

from shipyard.config._adapters import ADAPTERS, AdapterConfig, AgentAdapter
from shipyard.config._alerts import (
    ALERT_METRICS,
    BUILTIN_ALERT_RULES,
    DEFAULT_ALERT_RULES,
    EVENT_METRICS,
    AlertRule,
    AlertsConfig,
    parse_window,
)
from shipyard.config._flags import FlagsConfig
from shipyard.config._gates import GatesConfig, RegressionPolicy, StagePolicy
from shipyard.config._guardrails import (
    GUARDRAIL_KINDS,
    GuardrailConfig,
    GuardrailKind,
    GuardrailsConfig,
)
from shipyard.config._guardrails import (
    Stage as GuardrailStage,
)
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
from shipyard.config._models import PROVIDERS, BreakerConfig, ModelConfig, ModelPrices, ModelProvider
from shipyard.config._reload import ReloadConfig
from shipyard.config._schema import (
    AgentConfig,
    AgentModelSettings,
    AgentVersionConfig,
    ServerConfig,
    ShipyardConfig,
    StoreConfig,
)
from shipyard.config._schema_base import MODULE_ATTR, StrictModel

__all__ = [
    "ADAPTERS",
    "ALERT_METRICS",
    "BUILTIN_ALERT_RULES",
    "DEFAULT_ALERT_RULES",
    "EVENT_METRICS",
    "GUARDRAIL_KINDS",
    "MODULE_ATTR",
    "PROVIDERS",
    "AdapterConfig",
    "AgentAdapter",
    "AgentConfig",
    "AgentModelSettings",
    "AgentVersionConfig",
    "AlertRule",
    "AlertsConfig",
    "BreakerConfig",
    "FlagsConfig",
    "GatesConfig",
    "GuardrailConfig",
    "GuardrailKind",
    "GuardrailStage",
    "GuardrailsConfig",
    "Lines",
    "LoadedConfig",
    "ModelConfig",
    "ModelPrices",
    "ModelProvider",
    "RegressionPolicy",
    "ReloadConfig",
    "ServerConfig",
    "ShipyardConfig",
    "StagePolicy",
    "StoreConfig",
    "StrictModel",
    "find_config",
    "format_validation_error",
    "line_of",
    "load_config",
    "load_config_file",
    "load_yaml_with_lines",
    "parse_model",
    "parse_window",
]
