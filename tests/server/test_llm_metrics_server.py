"""The server's /metrics shows what its model clients did: retries, give-ups, fallbacks, breaker."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from server_helpers import Served

from shipyard.llm import MockLLMServer, reset_breakers


@pytest.fixture
def outage() -> Iterator[str]:
    reset_breakers()
    with MockLLMServer({"default": "never answered"}, error_rate=1.0) as url:
        yield url
    reset_breakers()


def test_model_retries_and_fallbacks_are_counted_in_metrics(
    serve_project: Callable[..., Served], outage: str
) -> None:
    def edit(text: str) -> str:
        flaky = f"models:\n  flaky: {{provider: openai, base_url: '{outage}', max_retries: 1, backoff_base_s: 0}}\n"
        assert "model: {name: scripted-small}" in text
        return text.replace("models:\n", flaky, 1).replace(
            "model: {name: scripted-small}", "model: {name: flaky, fallbacks: [scripted-small]}", 1
        )

    served = serve_project(edit)
    with served.client() as c:
        r = c.post("/v1/agents/support/invoke", json={"input": "Where is my order 10001?"})
        assert r.status_code == 200 and r.json()["status"] == "completed"
        text = c.get("/metrics").text
    endpoint = outage.split("/")[2]
    assert f'shipyard_llm_retries_total{{endpoint="{endpoint}",model="flaky",outcome="http_5xx"}}' in text
    assert (
        f'shipyard_llm_gave_up_total{{endpoint="{endpoint}",model="flaky",reason="retries_exhausted"}}'
        in text
    )
    assert (
        'shipyard_llm_fallbacks_total{fallback="scripted-small",model="flaky",reason="unavailable"}' in text
    )
