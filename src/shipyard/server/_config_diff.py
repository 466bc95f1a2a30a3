"""What a config reload changes, what only a restart can change, and where an error is in the file.

Used by `server/_reload.py`: a reload keeps the running value of every `RESTART_ONLY` setting and
reports the ones the file changed; the fields that did change are listed by dotted path; an error of
loading an agent's version names the shipyard.yaml field at fault and its line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from shipyard.config import Lines, ShipyardConfig, line_of
from shipyard.errors import ConfigError, EntryPointError, MissingSecretError, ShipyardError
from shipyard.prompts import PromptBundleError, PromptVariableError

# Settings read once, when the server starts: a reload keeps their running value and reports the change.
RESTART_ONLY: tuple[str, ...] = (
    "server.host",  # the listening socket, the auth mode that depends on it
    "server.port",
    "server.workers",
    "server.header_timeout_s",  # uvicorn's protocol and connection limit
    "server.body_timeout_s",
    "server.keep_alive_s",
    "server.max_connections",
    "server.allowed_hosts",  # the request guard, built with the app
    "server.require_gate",  # the rollout assigner's gate rule, checked against the address at start
    "server.content_capture",  # the process's logging
    "server.otlp_endpoint",  # the process-wide trace exporter
    "server.otlp_file",
    "server.otlp_file_max_mb",
    "server.otlp_file_backups",
    "server.drain",  # the stop signal handling and uvicorn's graceful-shutdown deadline
    "store",  # the store, the journal and its mover
    "flags",  # the flag store, its file watcher and Redis channel (the flag file itself reloads)
    "alerts.interval_s",  # the alert loop's period
    "alerts.webhook_timeout_s",  # the webhooks' HTTP client
    "incidents.queue_size",  # the incident watcher's queue (its rules and sources reload)
    "rate_limits.backend",  # the rate limiter's counters (its limits and on_unavailable reload)
    "rate_limits.redis_url",
    "rate_limits.key_prefix",
    "rate_limits.redis_timeout_s",
)

_PROBLEM = re.compile(r"^line (\d+)(?:, column \d+)?: (?:([\w.\-\[\]]+): )?")


# what changed -------------------------------------------------------------------------------------
def _get(model: Any, parts: Sequence[str]) -> Any:
    for p in parts:
        model = getattr(model, p)
    return model


def _dumped(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _with(model: BaseModel, parts: Sequence[str], value: Any) -> Any:
    """A copy of `model` with the field at `parts` set to `value` (private attributes kept)."""
    head, *rest = parts
    new = value if not rest else _with(getattr(model, head), rest, value)
    return model.model_copy(update={head: new})


def keep_running_settings(
    running: ShipyardConfig, new: ShipyardConfig
) -> tuple[ShipyardConfig, list[dict[str, Any]]]:
    """`new` with every RESTART_ONLY setting at its running value, and the ones the file changed:
    `[{"field", "at_start", "in_file"}]` (`at_start`: the value in the file the server started
    with; a command-line flag such as `--port` may have overridden it)."""
    pending: list[dict[str, Any]] = []
    out = new
    for name in RESTART_ONLY:
        parts = name.split(".")
        current = _get(running, parts)
        was, now = _dumped(current), _dumped(_get(new, parts))
        if was != now:
            pending.append({"field": name, "at_start": was, "in_file": now})
            out = _with(out, parts, current)
    return out, pending


def _leaves(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _leaves(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value
    return out


def changed_fields(old: ShipyardConfig, new: ShipyardConfig) -> list[str]:
    """The dotted paths whose values differ (a list is one value: `agents.support.versions`)."""
    a = _leaves(old.model_dump(mode="json"), "", {})
    b = _leaves(new.model_dump(mode="json"), "", {})
    missing = object()
    return sorted(k for k in a.keys() | b.keys() if a.get(k, missing) != b.get(k, missing))


# errors, located in the file -----------------------------------------------------------------------
def config_error(e: ConfigError) -> dict[str, Any]:
    """A ConfigError as a result's error: the file, and the first problem's line and field."""
    out: dict[str, Any] = {"message": str(e), "file": e.path, "problems": list(e.problems)}
    m = _PROBLEM.match(e.problems[0]) if e.problems else None
    if m:
        out["line"] = int(m.group(1))
        if m.group(2):
            out["field"] = m.group(2)
    return out


def error_text(e: BaseException) -> str:
    return str(e) if isinstance(e, ShipyardError) else f"{type(e).__name__}: {e}"


def _field_of(e: BaseException) -> str | None:
    """The agent setting an error of loading a version is about."""
    if isinstance(e, EntryPointError):
        return "entry"
    if isinstance(e, PromptVariableError):
        return "prompt_variables"
    if isinstance(e, PromptBundleError):
        return "prompts"
    if isinstance(e, MissingSecretError):
        return "model"
    return None


def _failing_version(cfg: ShipyardConfig, agent: str) -> int | None:
    """Which version of `agent` does not build: 0 its own settings, i its `versions[i - 1]`."""
    from shipyard.runtime import build_version

    agent_cfg = cfg.agents[agent]
    for i, override in enumerate([None, *agent_cfg.versions]):
        try:
            build_version(cfg, agent, agent_cfg, override)
        except Exception:
            return i
    return None


def agent_error(
    cfg: ShipyardConfig, lines: Lines, agent: str, index: int | None, e: BaseException
) -> dict[str, Any]:
    """A version of `agent` failed to load: the error with the shipyard.yaml field and line of the
    setting at fault (`agents.A.versions.I.prompts`, else the agent's own `agents.A.prompts`)."""
    if index is None:
        index = _failing_version(cfg, agent)
    setting = _field_of(e)
    path: tuple[str | int, ...] = ("agents", agent)
    if index and getattr(cfg.agents[agent].versions[index - 1], setting or "", None) is not None:
        path = (*path, "versions", index - 1)
    if setting is not None:
        path = (*path, setting)
    out: dict[str, Any] = {
        "message": f"agent {agent!r}: {error_text(e)}",
        "file": str(cfg.path),
        "field": ".".join(str(p) for p in path),
        "line": line_of(path, lines),
        "agent": agent,
    }
    if isinstance(e, ConfigError):  # a file the version reads (tool_descriptions.yaml, a rules file)
        out["problems"] = list(e.problems)
        out["source"] = config_error(e)
    return out
