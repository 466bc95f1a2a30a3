"""Ids by unique prefix: what every command that takes a stored id (a trace, an interaction, an
incident) accepts, so a user can type the first characters a table shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from shipyard.errors import ShipyardError

MAX_CANDIDATES = 5
"""How many matching ids an ambiguous prefix's error names."""


class AmbiguousPrefixError(ShipyardError):
    """An id prefix the user gave starts more than one stored id (exit 2; the message lists them)."""


def ids_with_prefix(conn: Connection, columns: Sequence[Any], ref: str) -> list[str]:
    """The distinct values of `columns` (string columns) that start with `ref`, sorted; at most
    `MAX_CANDIDATES` + 1, enough to tell one from several and to name a few. `%` and `_` in `ref`
    match themselves. An empty `ref` matches nothing."""
    if not ref:
        return []
    found: set[str] = set()
    for column in columns:
        query = select(column).where(column.startswith(ref, autoescape=True)).distinct()
        found.update(str(v) for v in conn.execute(query.limit(MAX_CANDIDATES + 1)).scalars())
    return sorted(found)[: MAX_CANDIDATES + 1]


def unique_prefix(found: Sequence[str], ref: str, what: str, hint: str) -> str | None:
    """The one id in `found` (from `ids_with_prefix`), None when there is none.

    Args:
        found: the ids that start with `ref`.
        ref: the prefix the user gave.
        what: what the ids name, for the message ("trace or interaction id").
        hint: what to do, for the message.

    Raises AmbiguousPrefixError naming the candidates when there are several.
    """
    if len(found) <= 1:
        return found[0] if found else None
    shown = ", ".join(found[:MAX_CANDIDATES]) + (", ..." if len(found) > MAX_CANDIDATES else "")
    more = "more than " if len(found) > MAX_CANDIDATES else ""
    raise AmbiguousPrefixError(
        f"{what} prefix {ref!r} is ambiguous: it starts {more}{min(len(found), MAX_CANDIDATES)} ids ({shown})",
        hint=hint,
    )
