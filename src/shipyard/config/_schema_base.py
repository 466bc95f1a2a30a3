"""The base of every config section, and how a problem pydantic found is said to the user."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails

MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
"""`package.module:name`, how shipyard.yaml points at Python objects (an agent's entry, its tools)."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


def problem_message(error: ErrorDetails, *, unknown: str, missing: str) -> str:
    """What is wrong, in words, for one of a ValidationError's errors (no place: the caller says
    where). `unknown`: what to say of a key the model does not have; `missing`: of a required one
    left out; a validator's ValueError is its own message, without pydantic's "Value error, "."""
    if error["type"] == "extra_forbidden":
        return unknown
    if error["type"] == "missing":
        return missing
    return error["msg"].removeprefix("Value error, ")
