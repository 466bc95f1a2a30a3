"""Guardrail kinds by name, and an agent's configured checks built from shipyard.yaml."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from shipyard.config import GUARDRAIL_KINDS, GuardrailConfig, GuardrailsConfig
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
    """One agent's checks, built once: `input` run before the agent, `output` after it, in order."""

    input: tuple[Guardrail, ...] = ()
    output: tuple[Guardrail, ...] = ()


NO_GUARDRAILS = AgentGuardrails()


def _build(entry: GuardrailConfig) -> Guardrail:
    cls = cast(type[Guardrail], GUARDRAIL_KINDS.get(entry.kind))
    return cls(entry.label, entry.options)


def build_guardrails(cfg: GuardrailsConfig) -> AgentGuardrails:
    """The checks `cfg` configures (already validated when the config loaded)."""
    if not cfg.input and not cfg.output:
        return NO_GUARDRAILS
    return AgentGuardrails(
        input=tuple(_build(g) for g in cfg.input), output=tuple(_build(g) for g in cfg.output)
    )
