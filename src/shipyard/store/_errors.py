"""The store's user-facing error, and how to tell a refused record from a database that is down."""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from shipyard.errors import ShipyardError

# SQLSTATE classes about the data itself: 21 cardinality, 22 data exception (NUL bytes, numbers out
# of range, bad encodings), 23 integrity constraint, 54 program limit (e.g. an index row too big).
# Everything else (08 connection, 40 rollback, 53 resources, 57 shutdown, 42 schema...) is the
# database's state, which retrying can fix.
_REFUSED_SQLSTATE_CLASSES = frozenset({"21", "22", "23", "54"})
# Python errors raised while turning a value into a parameter (orjson's error is a TypeError).
_VALUE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)


class StoreError(ShipyardError):
    """The database cannot be opened or used (bad URL, server down, schema too new)."""


class StoreUrlError(StoreError):
    """The database URL itself is wrong: it cannot be parsed, or names no known backend or driver."""


def is_refusal(error: BaseException) -> bool:
    """True when a write failed because of the records it carried (the database refused them: writing
    them again fails again), False when it failed because the database could not be reached or used
    (down, locked, restarting: retrying can succeed).

    Args:
        error: what a write raised.
    """
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return False
        sqlstate = getattr(error.orig, "sqlstate", None)  # psycopg sets it for server-side errors
        if sqlstate:
            return str(sqlstate)[:2] in _REFUSED_SQLSTATE_CLASSES
        # no SQLSTATE: a driver-side check (psycopg refusing a NUL byte) or SQLite's own classes
        return isinstance(error, (DataError, IntegrityError))
    if isinstance(error, StatementError):  # a value could not become a parameter
        return isinstance(error.orig, _VALUE_ERRORS)
    return isinstance(error, _VALUE_ERRORS)


def error_reason(error: BaseException, limit: int = 2000) -> str:
    """Why a write failed, for people: the driver's message without the SQL statement or its
    parameters (they hold the record's content), at most `limit` characters, NUL bytes shown as
    `\\x00` so the reason itself can be stored.

    Args:
        error: what the write raised.
        limit: the longest reason kept.
    """
    orig = error.orig if isinstance(error, StatementError) and error.orig is not None else error
    return printable(f"{type(orig).__name__}: {orig}".strip(), limit)


def printable(text: str, limit: int) -> str:
    """`text` as the store can keep it in a short field: NUL bytes shown as `\\x00`, at most `limit`
    characters (cut with `...`)."""
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 3] + "..."
