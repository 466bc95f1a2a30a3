"""Errors a user can cause. The CLI turns each into a clean message and an exit code.

Every class here is small and says in its docstring what it means. Messages say what was
wrong, where, and what to do.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base class for errors a user can cause; never shown as a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(ShipyardError):
    """The shipyard.yaml (or another config file) is wrong; carries one line per problem."""

    def __init__(self, path: str, problems: list[str], *, hint: str | None = None) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}", hint=hint)


class EntryPointError(ShipyardError):
    """An agent entry point (`module:function`) cannot be imported or found."""


class MissingSecretError(ShipyardError):
    """A model's API-key environment variable is not set."""


class NotFoundError(ShipyardError):
    """An agent, version, run or record that the user named does not exist."""


class GateFailed(ShipyardError):
    """A gate or check ran and did not pass (exit code 1)."""

    exit_code = 1


class ConflictError(ShipyardError):
    """Someone else changed the same state first (e.g. two admins acting on one rollout); re-read and retry."""
