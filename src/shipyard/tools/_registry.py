"""Python functions as tools: JSON schema from type hints, OpenAI-format definitions, argument
checks before the call with an error the agent (and the trace) can read."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from shipyard.errors import ShipyardError
from shipyard.types import ToolResult


class ToolNotFound(ShipyardError):
    """The model asked for a tool that is not registered."""


class ToolArgumentError(ValueError):
    """The arguments given to a tool do not fit its schema; the message lists each problem."""

    def __init__(self, tool: str, problems: list[str]) -> None:
        self.tool = tool
        self.problems = problems
        super().__init__(f"invalid arguments for tool {tool!r}: " + "; ".join(problems))


@dataclass(slots=True)
class Tool:
    """A registered tool. `idempotent`: calling it again with the same arguments changes nothing and
    gives the same result, so its results may be reused (`cache.tools` in shipyard.yaml, for a TTL)
    and an eval replay or a shadow run may call it for real."""

    name: str
    description: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    idempotent: bool = False
    is_async: bool = False
    tags: tuple[str, ...] = ()
    _definition: dict[str, Any] | None = field(default=None, repr=False)

    def schema(self) -> dict[str, Any]:
        """JSON schema of the arguments."""
        s = self.params.model_json_schema()
        s.pop("title", None)
        for prop in s.get("properties", {}).values():
            prop.pop("title", None)
        s.setdefault("properties", {})
        s["additionalProperties"] = False
        return s

    def definition(self) -> dict[str, Any]:
        """The OpenAI-format tool definition."""
        if self._definition is None:
            self._definition = {
                "type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.schema()},
            }
        return self._definition

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check arguments against the schema; returns them coerced; raises ToolArgumentError."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(
                self.name, [f"arguments must be a JSON object, got {type(arguments).__name__}"]
            )
        try:
            model = self.params.model_validate(arguments)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                loc = ".".join(str(x) for x in err["loc"]) or "(arguments)"
                msg = "unexpected argument" if err["type"] == "extra_forbidden" else err["msg"]
                if err["type"] == "missing":
                    msg = "required argument is missing"
                problems.append(f"{loc}: {msg}")
            raise ToolArgumentError(self.name, problems) from None
        return {k: getattr(model, k) for k in self.params.model_fields}

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        """Validate and call; never raises for bad arguments or a failing tool."""
        t0 = time.perf_counter()
        try:
            args = self.validate(arguments)
        except ToolArgumentError as e:
            return ToolResult(self.name, arguments, "invalid_arguments", error=str(e))
        try:
            if self.is_async:
                value = await self.fn(**args)
            else:
                value = self.fn(**args)
                if inspect.isawaitable(value):
                    value = await value
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a tool's own failure is a result the agent sees, not a crash
            return ToolResult(
                self.name,
                arguments,
                "error",
                error=f"{type(e).__name__}: {e}",
                duration_ms=(time.perf_counter() - t0) * 1000,
            )
        return ToolResult(
            self.name, arguments, "success", value=value, duration_ms=(time.perf_counter() - t0) * 1000
        )


def _params_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    sig = inspect.signature(fn)
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    for pname, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args / **kwargs cannot be described by a schema")
        ann = hints.get(pname, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[pname] = (ann, default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    idempotent: bool = False,
    tags: Iterable[str] = (),
) -> Tool:
    """Describe a Python function as a tool. The description defaults to its docstring."""
    tname = name or fn.__name__
    doc = description if description is not None else inspect.getdoc(fn) or ""
    return Tool(
        name=tname,
        description=doc.strip(),
        fn=fn,
        params=_params_model(fn, tname),
        idempotent=idempotent,
        is_async=inspect.iscoroutinefunction(fn),
        tags=tuple(tags),
    )


class ToolRegistry:
    """A named set of tools. `@registry.tool()` registers a function."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool
        return tool

    def tool(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        idempotent: bool = False,
        tags: Iterable[str] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register the function as a tool and return it unchanged."""

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add(make_tool(fn, name=name, description=description, idempotent=idempotent, tags=tags))
            return fn

        return deco

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolNotFound(f"no tool named {name!r} (registered: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI-format definitions, of all tools or of those named."""
        chosen = self._tools.values() if names is None else [self.get(n) for n in names]
        return [t.definition() for t in chosen]

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        return ToolRegistry(self.get(n) for n in names)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call a tool by name; an unknown name is a `not_found` result, not an exception."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult(
                name, arguments, "not_found", error=f"no tool named {name!r} (registered: {known})"
            )
        return await tool.invoke(arguments)
