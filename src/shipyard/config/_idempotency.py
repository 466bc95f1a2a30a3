"""Idempotency keys of the gateway (`server.idempotency` in shipyard.yaml).

server:
  idempotency: {ttl_s: 86400, wait_s: 10}
"""

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class IdempotencyConfig(StrictModel):
    """How `Idempotency-Key` on `POST /v1/agents/{agent}/invoke` behaves."""

    ttl_s: float = Field(
        86_400.0, gt=0, le=30 * 86_400, description="how long a key's answer is kept (seconds)"
    )
    wait_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="how long a retry waits for the first request with its key to finish before it is "
        "answered 409 (0: at once)",
    )
