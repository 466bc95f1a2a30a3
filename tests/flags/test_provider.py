"""The Shipyard provider through the real OpenFeature SDK: code that uses OpenFeature works unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from shipyard.flags import FlagStore, ShipyardProvider, parse_flag_set

DOC = {
    "flags": {
        "new_refund_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"starts_with": [{"var": "user_id"}, "beta-"]}, "on", None]},
            "metadata": {
                "owner": "support",
                "killSwitch": {"toolErrorRate": 0.2, "tools": ["process_refund"]},
            },
        },
        "greeting": {"state": "ENABLED", "variants": {"a": "Hello", "b": "Hi"}, "defaultVariant": "b"},
        "max_refund": {"state": "ENABLED", "variants": {"low": 50, "high": 500}, "defaultVariant": "high"},
        "ratio": {"state": "ENABLED", "variants": {"x": 0.25}, "defaultVariant": "x"},
        "settings": {"state": "ENABLED", "variants": {"x": {"tier": "small"}}, "defaultVariant": "x"},
        "half": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 50], ["off", 50]]},
        },
    }
}


@pytest.fixture
def store() -> Iterator[FlagStore]:
    s = FlagStore(parse_flag_set(DOC))
    api.set_provider(ShipyardProvider(s))
    yield s
    api.clear_providers()


def test_values_through_the_sdk(store: FlagStore) -> None:
    client = api.get_client()
    beta = EvaluationContext(targeting_key="beta-1", attributes={"user_id": "beta-1"})
    assert client.get_boolean_value("new_refund_flow", False, beta) is True
    assert (
        client.get_boolean_value("new_refund_flow", False, EvaluationContext("u-1", {"user_id": "u-1"}))
        is False
    )
    assert client.get_string_value("greeting", "") == "Hi"
    assert client.get_integer_value("max_refund", 0) == 500
    assert client.get_float_value("ratio", 0.0) == 0.25
    assert client.get_float_value("max_refund", 0.0) == 500.0
    assert client.get_object_value("settings", {}) == {"tier": "small"}


def test_details_carry_variant_reason_and_metadata(store: FlagStore) -> None:
    client = api.get_client()
    d = client.get_boolean_details(
        "new_refund_flow", False, EvaluationContext("beta-2", {"user_id": "beta-2"})
    )
    assert (d.value, d.variant, d.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert d.flag_metadata == {"owner": "support"}  # only scalar metadata passes through OpenFeature
    d = client.get_boolean_details("half", False, EvaluationContext("someone"))
    assert d.reason == Reason.SPLIT
    # the targeting key from the SDK's context is what fractional buckets on
    assert d.value == store.evaluate("half", False, {"targetingKey": "someone"}).value


def test_errors_come_back_as_sdk_errors_with_the_default(store: FlagStore) -> None:
    client = api.get_client()
    d = client.get_boolean_details("missing", True)
    assert (d.value, d.error_code, d.reason) == (True, ErrorCode.FLAG_NOT_FOUND, Reason.ERROR)
    d = client.get_boolean_details("greeting", False)
    assert (d.value, d.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    assert client.get_integer_value("ratio", 7) == 7  # 0.25 is not an integer


def test_a_change_in_the_store_emits_configuration_changed(store: FlagStore) -> None:
    seen: list[EventDetails] = []
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen.append)
    try:
        store.replace(parse_flag_set({"flags": {"greeting": DOC["flags"]["greeting"]}}))
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen.append)
    assert seen and seen[0].flags_changed == ["greeting"]
    assert api.get_client().get_string_value("max_refund", "gone") == "gone"
