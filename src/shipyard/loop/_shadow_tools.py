"""Tools in shadow: what production recorded is replayed; nothing with side effects ever runs.

A shadow replay's `CallInterceptor`. For each tool call of the replayed agent:

- a call production recorded (same tool, same arguments, each recorded call used once) gets the
  recorded result, whatever the tool;
- any other call of an idempotent tool (`@tool(idempotent=True)`: a read) runs;
- any other call of a tool with side effects (not idempotent, or not a registered tool at all) never
  runs: its arguments are checked against the tool's schema and recorded, and the call gets the
  stub declared for it (`shadow.tool_stubs`), else a tool error saying it was not run in shadow.

Model calls are made for real: the point is to see what the candidate's model does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shipyard.llm import ChatResponse
from shipyard.store import ToolCallRecord
from shipyard.tools import Tool, ToolArgumentError, ToolRegistry
from shipyard.types import ToolResult, ToolSet

NOT_RUN = "shadow: {tool} has side effects and is never run in shadow"


def _same(recorded: Any, called: Any) -> bool:
    """A recorded argument equals the one called with (`10001` matches `"10001"`)."""
    if recorded == called:
        return True
    if isinstance(recorded, dict) and isinstance(called, dict):
        return recorded.keys() == called.keys() and all(_same(recorded[k], called[k]) for k in recorded)
    return not isinstance(recorded, dict | list) and str(recorded) == str(called)


class ShadowTools:
    """The interceptor of one shadow run of one recorded interaction.

    Args:
        recorded: the tool calls production recorded for the interaction.
        tools: the replayed version's tools (a ToolRegistry tells which are idempotent; with any
            other ToolSet every tool counts as having side effects).
        stubs: tool name -> the value a side-effecting call gets when production has no record of it.

    After the run, `ran` lists the tools that really ran (idempotent ones, not recorded) and
    `withheld` the side-effecting calls that were answered from a record or a stub instead."""

    __slots__ = ("_pool", "_stubs", "_tools", "ran", "withheld")

    def __init__(self, recorded: Sequence[ToolCallRecord], tools: ToolSet, stubs: dict[str, Any]) -> None:
        self._pool = list(recorded)
        self._tools = tools
        self._stubs = stubs
        self.ran: list[str] = []
        self.withheld: list[ToolResult] = []

    def _tool(self, name: str) -> Tool | None:
        if isinstance(self._tools, ToolRegistry) and name in self._tools:
            return self._tools.get(name)
        return None

    def _take(self, name: str, arguments: dict[str, Any]) -> ToolCallRecord | None:
        for i, rec in enumerate(self._pool):
            if rec.name == name and _same(rec.arguments, arguments):
                return self._pool.pop(i)
        return None

    async def llm_call(
        self, request: dict[str, Any], call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]:
        return await call(), False

    async def tool_call(
        self, name: str, arguments: dict[str, Any], call: Callable[[], Awaitable[ToolResult]]
    ) -> tuple[ToolResult, bool]:
        tool = self._tool(name)
        if tool is None or not tool.idempotent:
            problem = self._invalid(tool, name, arguments)
            if problem is not None:
                self.withheld.append(problem)
                return problem, True
        rec = self._take(name, arguments)
        if rec is not None:
            result = ToolResult(
                name,
                arguments,
                rec.status,
                value=rec.result,
                error=rec.error,
                duration_ms=rec.duration_ms,
                cached=rec.cached,
            )
            if tool is None or not tool.idempotent:
                self.withheld.append(result)
            return result, True
        if tool is not None and tool.idempotent:
            self.ran.append(name)
            return await call(), False
        if name in self._stubs:
            result = ToolResult(name, arguments, "success", value=self._stubs[name])
        else:
            result = ToolResult(
                name,
                arguments,
                "error",
                error=NOT_RUN.format(tool=name)
                + " and production recorded no call with these arguments (declare one in shadow.tool_stubs)",
            )
        self.withheld.append(result)
        return result, True

    @staticmethod
    def _invalid(tool: Tool | None, name: str, arguments: dict[str, Any]) -> ToolResult | None:
        """The result of a side-effecting call whose arguments do not fit the tool's schema."""
        if tool is None:
            return None
        try:
            tool.validate(arguments)
        except ToolArgumentError as e:
            return ToolResult(name, arguments, "invalid_arguments", error=str(e))
        return None
