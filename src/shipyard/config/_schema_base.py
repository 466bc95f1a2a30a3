"""The base of every config section, and how a problem pydantic found is said to the user.

The config's modules do without `from __future__ import annotations`: with it, each field's annotation
is a string that pydantic turns back into a type when the class is made (a `compile` and an `eval` per
field: ~300 fields, ~1% of `shipyard run`'s CPU). A name defined further down (or only for type
checkers) is written in quotes; a validator returns `Self`."""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import ErrorDetails

MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
"""`package.module:name`, how shipyard.yaml points at Python objects (an agent's entry, its tools)."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True, defer_build=True)


def section(default: dict[str, Any] | None = None, **field: Any) -> Any:
    """The default of a field that holds a section model (`embedding: EmbeddingConfig = section()`):
    the mapping `default` (`{}`: every key its default), validated as any value of the field is,
    by the validator of the model holding it. Not `Field(default_factory=EmbeddingConfig)`: calling
    the class builds that model's own validator, a second pydantic schema of the section, the first
    time a file leaves it out (for the starter's shipyard.yaml, 29 of them: half of its load).
    `field`: more `Field` arguments (`description`, `alias`)."""
    value = dict(default or {})
    return Field(default_factory=value.copy, validate_default=True, **field)


def empty_list() -> list[Any]:
    """The `default_factory` of a list field (`Field(default_factory=empty_list)`): `[]`, as `list`
    gives. A Python function because pydantic reads a factory's signature (does it take the validated
    data?) when it builds a schema, and `list`'s is parsed from its text with `tokenize` and `ast`
    each time: for the config's two dozen list fields, ~0.5% of `shipyard run`'s CPU."""
    return []


class RedisCounters(StrictModel):
    """Where a section that keeps counters in Redis across replicas (budgets, rate limits) finds it;
    read only with `backend: redis`."""

    redis_url: str | None = Field(
        None,
        description="with backend redis (SHIPYARD_REDIS_URL overrides it); default redis://127.0.0.1:6379/0",
    )
    key_prefix: str = Field("shipyard", min_length=1, description="prefix of every Redis key (per project)")
    redis_timeout_s: float = Field(
        0.5, gt=0, le=30, description="a Redis call slower than this counts as Redis unreachable"
    )


def problem_message(error: ErrorDetails, *, unknown: str, missing: str) -> str:
    """What is wrong, in words, for one of a ValidationError's errors (no place: the caller says
    where). `unknown`: what to say of a key the model does not have; `missing`: of a required one
    left out; a validator's ValueError is its own message, without pydantic's "Value error, "."""
    if error["type"] == "extra_forbidden":
        return unknown
    if error["type"] == "missing":
        return missing
    return error["msg"].removeprefix("Value error, ")
