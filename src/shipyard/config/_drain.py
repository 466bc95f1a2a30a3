"""How a server stops on SIGTERM (`server.drain` in shipyard.yaml).

server:
  drain: {delay_s: 5, timeout_s: 20}

On SIGTERM (or SIGINT) `/readyz` answers 503 at once; the server keeps serving for `delay_s` (so a
load balancer or Kubernetes takes it out of rotation first), then stops accepting connections,
lets requests in flight finish for up to `timeout_s`, moves what the journal holds into the store
and exits 0. A second signal stops waiting.
"""

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class DrainConfig(StrictModel):
    """A server's graceful stop."""

    delay_s: float = Field(
        0.0,
        ge=0,
        le=300,
        description="after SIGTERM, keep serving (with /readyz unready) this long before closing the "
        "listening socket; on Kubernetes a few seconds, so endpoints drop the pod first",
    )
    timeout_s: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="how long requests in flight may take to finish once the socket is closed; then "
        "they are cancelled",
    )
