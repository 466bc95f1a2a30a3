"""Rate limits on the gateway routes, per API key and per user (`rate_limits:` in shipyard.yaml).

rate_limits:
  backend: redis                       # memory (this process only) | redis (shared by every replica)
  redis_url: redis://127.0.0.1:6379/0  # or SHIPYARD_REDIS_URL
  on_unavailable: fail_closed          # Redis unreachable: fail_closed answers 503, fail_open lets requests in
  per_key: {requests_per_minute: 600, tokens_per_minute: 200000}
  per_user: {requests_per_minute: 30, tokens_per_minute: 20000}

A request over a limit is answered `429` with `Retry-After`. Tokens are counted after the interaction
(input + output from its record); once a minute's tokens reach the limit, the next request is refused.
"""

from typing import Literal, Self

from pydantic import Field, model_validator

from shipyard.config._schema_base import RedisCounters, StrictModel


class RateLimit(StrictModel):
    """The limits of one caller (one API key, or one user) in a sliding one-minute window."""

    requests_per_minute: int | None = Field(None, gt=0, description="requests in any 60 s")
    tokens_per_minute: int | None = Field(
        None, gt=0, description="input + output tokens in any 60 s (counted after each interaction)"
    )

    @model_validator(mode="after")
    def _some_limit(self) -> Self:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both (or leave the section out)")
        return self


class RateLimitsConfig(RedisCounters):
    """Rate limits and where their counters live. No limits: nothing is checked."""

    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="memory: counters in this process (one machine, one worker); redis: one set of "
        "counters shared by every replica and worker",
    )
    on_unavailable: Literal["fail_closed", "fail_open"] = Field(
        "fail_closed",
        description="when Redis cannot be reached: fail_closed answers 503 with Retry-After, fail_open "
        "lets the request through unlimited and logs it",
    )
    per_key: RateLimit | None = Field(
        None, description="limits of each API key (open mode: all callers as one)"
    )
    per_user: RateLimit | None = Field(
        None,
        description="limits of each user (the request's user_id / user; requests without one are not counted)",
    )

    @model_validator(mode="after")
    def _settings_used(self) -> Self:
        given = self.model_fields_set
        if self.backend == "memory":
            unused = [
                f for f in ("redis_url", "redis_timeout_s", "key_prefix", "on_unavailable") if f in given
            ]
            if unused:
                raise ValueError(
                    f"{', '.join(unused)}: used only with backend: redis (the memory backend cannot be "
                    "unreachable); set backend: redis or remove them"
                )
        if given and self.per_key is None and self.per_user is None:
            raise ValueError("rate_limits sets no limit: add per_key and/or per_user, or remove the section")
        return self

    @property
    def enabled(self) -> bool:
        return self.per_key is not None or self.per_user is not None
