"""POST /v1/chat/completions and OpenAI's request parameters: one the gateway would drop while the
client expects it to matter (`n: 3`, tools, a JSON response format, a token cap, an unknown name) is
refused with 400 in OpenAI's error format naming it; the documented ignored sampling knobs and the
values that ask for nothing pass."""

from __future__ import annotations

from typing import Any

import pytest
from server_helpers import Served

from shipyard.server._chat_params import DEFAULT_ONLY, IGNORED

ASK = {"model": "support", "messages": [{"role": "user", "content": "How long do refunds take?"}]}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 3}, "n"),
        ({"n": 0}, "n"),
        ({"n": True}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"max_tokens": 5}, "max_tokens"),
        ({"max_completion_tokens": 5}, "max_completion_tokens"),
        ({"logprobs": True}, "logprobs"),
        ({"stop": ["\n"]}, "stop"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"stream_options": {"include_obfuscation": True}}, "stream_options"),
        ({"best_of": 2}, "best_of"),  # not a chat completions parameter at all
        ({"temprature": 0}, "temprature"),  # a typo is not silently a no-op
    ],
)
def test_parameters_the_gateway_cannot_honour_are_refused_by_name(
    served: Served, extra: dict[str, Any], param: str
) -> None:
    with served.client() as c:
        r = c.post("/v1/chat/completions", json={**ASK, **extra})
        streamed = c.post("/v1/chat/completions", json={**ASK, **extra, "stream": True})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["code"] == 400
    assert f"'{param}'" in error["message"]
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == param


def test_ignored_sampling_knobs_and_values_that_ask_for_nothing_are_answered(served: Served) -> None:
    harmless = {
        **dict.fromkeys(IGNORED, 0.5),
        "n": 1,
        "tools": [],
        "tool_choice": "none",
        "parallel_tool_calls": False,
        "response_format": {"type": "text"},
        "max_tokens": None,
        "logprobs": False,
        "stop": None,
        "stream_options": {"include_usage": True},
        "modalities": ["text"],
    }
    assert set(harmless) - set(IGNORED) <= set(DEFAULT_ONLY)
    with served.client() as c:
        r = c.post("/v1/chat/completions", json={**ASK, **harmless})
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert len(choices) == 1 and "refund" in choices[0]["message"]["content"].lower()
