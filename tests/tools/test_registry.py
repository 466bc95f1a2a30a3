"""Tools: schemas from type hints, OpenAI definitions, argument checks before the call."""

from __future__ import annotations

from typing import Literal

import pytest

from shipyard.tools import ToolArgumentError, ToolNotFound, ToolRegistry

reg = ToolRegistry()
calls: list[tuple[str, int]] = []


@reg.tool(idempotent=True)
def lookup(order_id: str, limit: int = 3) -> dict[str, object]:
    """Look up an order."""
    calls.append((order_id, limit))
    return {"order_id": order_id, "limit": limit}


@reg.tool(name="refund")
async def process_refund(order_id: str, amount: float, mode: Literal["card", "credit"] = "card") -> str:
    """Refund an order."""
    if amount > 100:
        raise ValueError("amount above order total")
    return f"refunded {amount} to {mode}"


def test_definition_is_openai_format_with_schema_from_hints() -> None:
    [d] = reg.definitions(["lookup"])
    assert d["type"] == "function"
    fn = d["function"]
    assert fn["name"] == "lookup" and fn["description"] == "Look up an order."
    params = fn["parameters"]
    assert params["type"] == "object"
    assert params["properties"]["order_id"] == {"type": "string"}
    assert (
        params["properties"]["limit"]["type"] == "integer" and params["properties"]["limit"]["default"] == 3
    )
    assert params["required"] == ["order_id"]
    assert params["additionalProperties"] is False
    refund = reg.get("refund").definition()["function"]["parameters"]
    assert refund["properties"]["mode"]["enum"] == ["card", "credit"]
    assert reg.get("lookup").idempotent and not reg.get("refund").idempotent


async def test_valid_call_runs_and_coerces() -> None:
    r = await reg.call("lookup", {"order_id": "10001", "limit": "5"})
    assert r.ok and r.value == {"order_id": "10001", "limit": 5}
    assert '"limit": 5' in r.content()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "order_id: required argument is missing"),
        ({"order_id": "1", "limit": "many"}, "limit: Input should be a valid integer"),
        ({"order_id": "1", "colour": "red"}, "colour: unexpected argument"),
    ],
)
async def test_bad_arguments_are_a_result_the_agent_sees(args: dict[str, object], fragment: str) -> None:
    before = len(calls)
    r = await reg.call("lookup", args)
    assert r.status == "invalid_arguments" and fragment in (r.error or "")
    assert '"status": "invalid_arguments"' in r.content()
    assert len(calls) == before  # the function never ran


async def test_tool_exception_is_an_error_result() -> None:
    r = await reg.call("refund", {"order_id": "1", "amount": 500})
    assert r.status == "error" and "amount above order total" in (r.error or "")
    ok = await reg.call("refund", {"order_id": "1", "amount": 5, "mode": "credit"})
    assert ok.value == "refunded 5.0 to credit"


async def test_unknown_tool() -> None:
    r = await reg.call("nope", {})
    assert r.status == "not_found" and "lookup" in (r.error or "")
    with pytest.raises(ToolNotFound):
        reg.get("nope")


def test_validate_raises_with_every_problem() -> None:
    with pytest.raises(ToolArgumentError) as e:
        reg.get("refund").validate({"amount": "x", "mode": "cash"})
    assert len(e.value.problems) == 3


def test_duplicate_and_varargs_are_refused() -> None:
    r = ToolRegistry()
    r.tool()(lookup)
    with pytest.raises(ValueError, match="twice"):
        r.tool()(lookup)

    def bad(*args: int) -> None: ...

    with pytest.raises(TypeError, match="args"):
        r.tool()(bad)
