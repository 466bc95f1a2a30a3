"""A small project on disk: a scripted model, a prompt bundle and agent code in a fresh module
(tests/support/order_shop.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from order_shop import shop_project

from shipyard.config import ShipyardConfig, load_config


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Callable[..., ShipyardConfig]]:
    """Write a project and return a loader; `extra` is appended to shipyard.yaml."""
    bundle = tmp_path / "prompts" / "shop"
    bundle.mkdir(parents=True)
    (bundle / "system_prompt.txt").write_text("You help {{ company }} customers.\n{{ safety_rules }}\n")
    (bundle / "safety_rules.txt").write_text("Never share other customers' orders.\n")
    (bundle / "tool_descriptions.yaml").write_text(
        "lookup:\n  description: Look up one order.\n  parameters: {order_id: The order number}\n"
    )
    (bundle / "version.txt").write_text("2.0.0\n")

    with shop_project(tmp_path, "shopagent") as module:

        def make(
            extra: str = "", entry: str = "shop", timeout: float = 60.0, guardrails: str = ""
        ) -> ShipyardConfig:
            """`guardrails` is the agent's `guardrails:` section (YAML, indented as under the agent);
            `timeout` the agent's timeout_s (a minute unless a test is about timeouts: a busy machine
            must not turn a slow answer into a failed one)."""
            (tmp_path / "shipyard.yaml").write_text(
                textwrap.dedent(f"""\
                models:
                  scripted: {{provider: scripted, rules: rules.yaml, prices: {{input: 1.0, output: 2.0}}}}
                  dead:
                    provider: openai
                    base_url: http://127.0.0.1:9/v1
                    max_retries: 1
                    backoff_base_s: 0.01
                    connect_timeout_s: 0.5
                agents:
                  shop:
                    entry: {module}:{entry}
                    prompts: prompts/shop
                    prompt_variables: {{company: Acme}}
                    timeout_s: {timeout}
                    model: {{name: scripted}}
                """)
                + (f"    guardrails:\n{guardrails}" if guardrails else "")
                + textwrap.dedent(extra)
            )
            return load_config(tmp_path / "shipyard.yaml")

        yield make
