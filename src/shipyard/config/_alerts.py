"""Alert rules (`alerts:` in shipyard.yaml). Owned by the observability work."""

from __future__ import annotations

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class AlertsConfig(StrictModel):
    """`alerts:` the rules the server evaluates periodically."""

    rules: list[dict[str, object]] = Field(default_factory=list)
