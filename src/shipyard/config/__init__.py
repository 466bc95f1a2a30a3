"""The `shipyard.yaml` schema and its loading; errors name the file, the field path and the line."""

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
from shipyard.config._load import (
    Lines,
    find_config,
    format_validation_error,
    load_config,
    load_yaml_with_lines,
    parse_model,
)
from shipyard.config._schema import (
    AdapterConfig,
    AgentConfig,
    AgentModelSettings,
    AgentVersionConfig,
    BreakerConfig,
    ModelConfig,
    ModelPrices,
    ServerConfig,
    ShipyardConfig,
    StoreConfig,
)
from shipyard.config._schema_base import StrictModel

__all__ = [
    "ALERT_METRICS",
    "BUILTIN_ALERT_RULES",
    "DEFAULT_ALERT_RULES",
    "EVENT_METRICS",
    "AdapterConfig",
    "AgentConfig",
    "AgentModelSettings",
    "AgentVersionConfig",
    "AlertRule",
    "AlertsConfig",
    "BreakerConfig",
    "FlagsConfig",
    "GatesConfig",
    "Lines",
    "ModelConfig",
    "ModelPrices",
    "RegressionPolicy",
    "ServerConfig",
    "ShipyardConfig",
    "StagePolicy",
    "StoreConfig",
    "StrictModel",
    "find_config",
    "format_validation_error",
    "load_config",
    "load_yaml_with_lines",
    "parse_model",
    "parse_window",
]
