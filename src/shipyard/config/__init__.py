"""The `shipyard.yaml` schema and its loading; errors name the file, the field path and the line."""

from shipyard.config._load import find_config, load_config, load_yaml_with_lines, parse_model
from shipyard.config._schema import (
    AgentConfig,
    AgentModelSettings,
    AgentVersionConfig,
    ModelConfig,
    ModelPrices,
    ServerConfig,
    ShipyardConfig,
    StoreConfig,
    StrictModel,
)

__all__ = [
    "AgentConfig",
    "AgentModelSettings",
    "AgentVersionConfig",
    "ModelConfig",
    "ModelPrices",
    "ServerConfig",
    "ShipyardConfig",
    "StoreConfig",
    "StrictModel",
    "find_config",
    "load_config",
    "load_yaml_with_lines",
    "parse_model",
]
