"""The tools a framework agent declares, known to Shipyard when the agent loads (without running it):
the agent's `spec.tools`. Guardrails (a `tool_policy`), eval suites (`must_not_call`, trajectories),
the launch checklist (kill switches), the prompt linter and the version id read them as they read an
`@agent`'s registered tools. Shipyard does not run them (the framework does, and each run is recorded
through `ctx.tools.observe`).

A framework's tools say nothing about their side effects, so each counts as having some (not
idempotent: risky for the checklist, never run in a shadow replay or a `recorded_tools_only` eval
case) unless the agent marks it: `shipyard_agent(..., idempotent=["lookup_order"])` (the same for
`langgraph_agent` and `adk_agent`), and `tags=` as `@tools.tool(tags=...)` does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.tools import ToolNotFound
from shipyard.types import ToolResult


@dataclass(frozen=True, slots=True)
class DeclaredTool:
    """A tool the agent's framework runs, as it declares it.

    Attributes:
        name: the name the model calls it by.
        description: what the framework tells the model it does.
        parameters: the JSON schema of its arguments, as the framework sends it to the model.
        idempotent: marked by the agent as changing nothing (see the module docstring).
        tags: the agent's tags for it (e.g. `money`, `write`), read by the launch checklist.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    idempotent: bool = False
    tags: tuple[str, ...] = ()

    def definition(self) -> dict[str, Any]:
        """The OpenAI-format tool definition."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class DeclaredTools:
    """A framework agent's declared tools as a tool set (`shipyard.types.ToolSet`): names,
    definitions and `get(name)` like a `ToolRegistry`; `call` refuses (the framework runs them).

    Args:
        tools: the tools, in the order the framework declares them (a repeated name keeps the first).
        framework: who runs them, for messages (e.g. "the OpenAI Agents SDK").
    """

    def __init__(self, tools: Iterable[DeclaredTool], framework: str) -> None:
        self._tools: dict[str, DeclaredTool] = {}
        for t in tools:
            self._tools.setdefault(t.name, t)
        self.framework = framework

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [t.definition() for t in self._tools.values()]

    def get(self, name: str) -> DeclaredTool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolNotFound(f"no tool named {name!r} (declared: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[DeclaredTool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Not run by Shipyard: an `error` result saying who runs it (`not_found` for an unknown name)."""
        if name not in self._tools:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult(
                name, arguments, "not_found", error=f"no tool named {name!r} (declared: {known})"
            )
        return ToolResult(
            name,
            arguments,
            "error",
            error=f"tool {name!r} is run by {self.framework} inside the agent's run, not by Shipyard",
        )


def declared_tools(
    found: Iterable[DeclaredTool],
    *,
    framework: str,
    agent: str,
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
) -> DeclaredTools:
    """The agent's declared tools, with the agent's marks applied.

    Args:
        found: the tools found in the framework's agent (graph, tree), in its order.
        framework: who runs them, for messages.
        agent: the Shipyard agent's name, for messages.
        idempotent: names of tools that change nothing (their results may be reused, and a replay may
            run them).
        tags: tool name -> its tags (e.g. `{"refund_order": ["money"]}`).

    Raises ShipyardError when a mark names a tool the agent does not have (a misspelt mark would
    leave the tool unmarked)."""
    tools = DeclaredTools(found, framework)
    marked_idempotent = set(idempotent) if not isinstance(idempotent, str) else {idempotent}
    tagged = {
        name: tuple(dict.fromkeys([v] if isinstance(v, str) else v)) for name, v in (tags or {}).items()
    }
    unknown = sorted((marked_idempotent | set(tagged)) - set(tools.names()))
    if unknown:
        raise ShipyardError(
            f"agent {agent!r} marks {', '.join(repr(n) for n in unknown)}, which "
            f"{'is not a tool' if len(unknown) == 1 else 'are not tools'} of it "
            f"(its tools: {', '.join(sorted(tools.names())) or 'none'})",
            hint="fix the name in idempotent= / tags=",
        )
    return DeclaredTools(
        (
            DeclaredTool(
                t.name,
                t.description,
                t.parameters,
                idempotent=t.idempotent or t.name in marked_idempotent,
                tags=tagged.get(t.name, t.tags),
            )
            for t in tools
        ),
        framework,
    )
