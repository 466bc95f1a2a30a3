"""Guardrail kinds by name, and an agent's configured checks built from shipyard.yaml."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from shipyard.config import (
    DEFAULT_BLOCKED_REPLY,
    DEFAULT_ESCALATED_REPLY,
    GUARDRAIL_KINDS,
    GuardrailConfig,
    GuardrailsConfig,
)
from shipyard.guardrails._types import Guardrail

G = TypeVar("G", bound=type[Guardrail])


def guardrail_kind(name: str, *, override: bool = False) -> Callable[[G], G]:
    """Register a guardrail kind (a `Guardrail` subclass) under the name `kind:` gives in
    shipyard.yaml. Built-ins and plugins register the same way (`shipyard.plugins` entry points);
    a taken name is an error unless `override=True` (see `shipyard.plugins.Registry.add`)."""

    def deco(cls: G) -> G:
        cls.kind = name
        GUARDRAIL_KINDS.add(name, cls, override=override)
        return cls

    return deco


def guardrail_kinds() -> list[str]:
    """Every registered guardrail kind."""
    return GUARDRAIL_KINDS.names()


@dataclass(frozen=True, slots=True)
class AgentGuardrails:
    """One agent's checks, built once, in order per stage: `input` before the agent, `tool_call`
    before each tool it calls, `tool_result` on each tool's result, `output` after it; and what a
    request a guardrail blocked or escalated answers (when the check gives no reply of its own)."""

    input: tuple[Guardrail, ...] = ()
    tool_call: tuple[Guardrail, ...] = ()
    tool_result: tuple[Guardrail, ...] = ()
    output: tuple[Guardrail, ...] = ()
    blocked_reply: str = DEFAULT_BLOCKED_REPLY
    escalated_reply: str = DEFAULT_ESCALATED_REPLY

    def tool_names(self) -> frozenset[str]:
        """Every tool the checks name in their options."""
        return frozenset().union(
            *(g.tool_names() for g in (*self.input, *self.tool_call, *self.tool_result, *self.output))
        )


NO_GUARDRAILS = AgentGuardrails()


def _build(entry: GuardrailConfig) -> Guardrail:
    cls = cast(type[Guardrail], GUARDRAIL_KINDS.get(entry.kind))
    return cls(entry.label, entry.options)


def build_guardrails(cfg: GuardrailsConfig) -> AgentGuardrails:
    """The checks `cfg` configures (already validated when the config loaded)."""
    if not (cfg.input or cfg.tool_call or cfg.tool_result or cfg.output) and (
        cfg.blocked_reply == DEFAULT_BLOCKED_REPLY and cfg.escalated_reply == DEFAULT_ESCALATED_REPLY
    ):
        return NO_GUARDRAILS
    return AgentGuardrails(
        input=tuple(_build(g) for g in cfg.input),
        tool_call=tuple(_build(g) for g in cfg.tool_call),
        tool_result=tuple(_build(g) for g in cfg.tool_result),
        output=tuple(_build(g) for g in cfg.output),
        blocked_reply=cfg.blocked_reply,
        escalated_reply=cfg.escalated_reply,
    )
