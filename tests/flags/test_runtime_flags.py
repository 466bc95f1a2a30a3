"""`ctx.flags` inside a real interaction: the runtime's flag store, with the session and user as context."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig, load_config
from shipyard.flags import FlagStore, parse_flag_set
from shipyard.runtime import Runtime

AGENT = """\
from shipyard import AgentContext, AgentResult, agent

@agent("flagged")
async def flagged(user_input: str, ctx: AgentContext) -> AgentResult:
    on = ctx.flags.enabled("new_refund_flow")
    return AgentResult(output=f"refund flow {'on' if on else 'off'}; tone {ctx.flags.string('tone', 'plain')}")
"""

FLAGS = {
    "flags": {
        "new_refund_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"starts_with": [{"var": "user_id"}, "beta-"]}, "on", None]},
        }
    }
}


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[ShipyardConfig]:
    module = f"flagged_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(AGENT)
    (tmp_path / "rules.yaml").write_text('default: "unused"\nrules: []\n')
    (tmp_path / "shipyard.yaml").write_text(
        f"agents:\n  flagged:\n    entry: {module}:flagged\n    model: {{name: scripted}}\n"
        "models:\n  scripted: {provider: scripted, rules: rules.yaml}\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield load_config(tmp_path / "shipyard.yaml")
    sys.path.remove(str(tmp_path))
    sys.modules.pop(module, None)


async def test_agents_read_flags_and_the_record_keeps_the_evaluations(cfg: ShipyardConfig) -> None:
    rt = Runtime(cfg)
    rt.flags = FlagStore(parse_flag_set(FLAGS))
    beta = await rt.invoke("flagged", "hi", session_id="s1", user_id="beta-7")
    other = await rt.invoke("flagged", "hi", session_id="s2", user_id="u-7")
    await rt.aclose()
    assert beta.output == "refund flow on; tone plain" and other.output == "refund flow off; tone plain"
    assert beta.metadata["flags"] == [
        {"flag": "new_refund_flow", "variant": "on", "reason": "TARGETING_MATCH"},
        {"flag": "tone", "variant": None, "reason": "ERROR", "error": "FLAG_NOT_FOUND"},
    ]
    assert other.metadata["flags"][0] == {"flag": "new_refund_flow", "variant": "off", "reason": "DEFAULT"}
    root = next(s for s in beta.spans if s.parent_id is None)
    assert list(root.attributes["shipyard.feature_flags"]) == [
        "new_refund_flow=on:TARGETING_MATCH",
        "tone=plain:ERROR",
    ]


async def test_without_a_flag_store_every_flag_has_its_default(cfg: ShipyardConfig) -> None:
    rt = Runtime(cfg)
    r = await rt.invoke("flagged", "hi", session_id="s1", user_id="beta-7")
    await rt.aclose()
    assert r.output == "refund flow off; tone plain" and "flags" not in r.metadata
