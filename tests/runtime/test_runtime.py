"""The runtime: one interaction from input to a recorded, traced, priced result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.config import AgentVersionConfig, ShipyardConfig
from shipyard.cost import call_cost
from shipyard.errors import NotFoundError
from shipyard.llm import Usage
from shipyard.observe import semconv as sc
from shipyard.observe import trace_tree_lines
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord

Project = Callable[..., ShipyardConfig]


async def test_interaction_is_traced_priced_and_recorded(project: Project) -> None:
    cfg = project()
    rt = Runtime(cfg)
    seen: list[InteractionRecord] = []
    rt.sinks.append(seen.append)
    r = await rt.invoke("shop", "where is order 42?", session_id="s1", user_id="u1")
    await rt.aclose()
    assert r.status == "completed" and r.output == "Order 42 is shipped."
    assert seen == [r]
    assert r.session_id == "s1" and r.user_id == "u1" and r.traffic_source == "production"
    assert r.version.startswith("shop@2.0.0+")
    assert [t.name for t in r.tool_calls] == ["lookup"] and r.tool_calls[0].status == "success"
    assert r.tool_calls[0].arguments == {"order_id": "42"}
    assert len(r.llm_calls) == 2
    usage = Usage(r.input_tokens, r.output_tokens, r.cached_input_tokens)
    assert r.input_tokens > 0 and r.output_tokens > 0
    assert r.cost_usd == pytest.approx(call_cost(cfg.models["scripted"].prices, usage))

    names = [s.name for s in r.spans]
    assert (
        names.count("chat scripted") == 2 and "execute_tool lookup" in names and "invoke_agent shop" in names
    )
    root = next(s for s in r.spans if s.name == "invoke_agent shop")
    assert root.parent_id is None and {s.trace_id for s in r.spans} == {r.trace_id}
    assert all(s.parent_id == root.span_id for s in r.spans if s is not root)
    assert root.attributes[sc.AGENT_VERSION] == r.version and root.attributes[sc.CONVERSATION_ID] == "s1"
    chat = next(s for s in r.spans if s.name == "chat scripted")
    assert chat.attributes[sc.OPERATION] == "chat" and chat.attributes[sc.INPUT_TOKENS] > 0

    tree = trace_tree_lines(r)
    assert tree[0] == '[User Request] "where is order 42?"'
    assert any('[Tool Call] lookup(order_id="42")' in line and "Status: success" in line for line in tree)
    assert tree[-1].startswith("Total: ")


async def test_prompt_bundle_renders_and_describes_tools(project: Project) -> None:
    rt = Runtime(project())
    v = rt.resolve_version("shop")
    assert rt.system_prompt(v).startswith("You help Acme customers.\nNever share")
    [d] = rt.tool_definitions(v)
    assert d["function"]["description"] == "Look up one order."
    assert d["function"]["parameters"]["properties"]["order_id"]["description"] == "The order number"


async def test_agent_exception_is_a_failed_record_not_a_crash(project: Project) -> None:
    r = await Runtime(project()).invoke("shop", "please crash")
    assert r.status == "failed" and r.error == "RuntimeError: agent bug"
    assert r.metadata["error_kind"] == "agent_error"
    assert next(s for s in r.spans if s.name == "invoke_agent shop").status == "error"


async def test_timeout_is_a_failed_record(project: Project) -> None:
    r = await Runtime(project(timeout=0.2)).invoke("shop", "be slow")
    assert r.status == "failed" and r.metadata["error_kind"] == "timeout" and "0.2s" in (r.error or "")


async def test_unreachable_model_is_failed_with_every_attempt_traced(project: Project) -> None:
    cfg = project()
    cfg.agents["shop"].model.name = "dead"
    rt = Runtime(cfg)
    r = await rt.invoke("shop", "where is order 1?")
    await rt.aclose()
    assert r.status == "failed" and r.metadata["error_kind"].startswith("llm_")
    attempts = [s for s in r.spans if s.attributes.get(sc.ATTEMPT) is not None]
    assert len(attempts) == 2 and all(s.status == "error" for s in attempts)
    assert r.llm_calls[0].status == "error" and r.llm_calls[0].attempts == 2


async def test_sync_agent(project: Project) -> None:
    rt = Runtime(project(entry="shop_sync"))
    r = await rt.invoke("shop", "order 7")
    await rt.aclose()
    assert r.status == "completed" and r.output.startswith("sync: {'order_id': '7'")


async def test_versions_resolve_by_label_hash_and_id(project: Project, tmp_path: Path) -> None:
    cfg = project()
    rt = Runtime(cfg)
    v = rt.resolve_version("shop")
    assert rt.resolve_version("shop", "2.0.0") is v
    assert rt.resolve_version("shop", v.hash) is v
    assert rt.resolve_version("shop", v.id) is v
    with pytest.raises(NotFoundError, match=r"no version '9\.9'"):
        rt.resolve_version("shop", "9.9")
    with pytest.raises(NotFoundError, match="no agent named 'nope'"):
        await rt.invoke("nope", "hi")


def test_version_id_changes_with_each_component(project: Project, tmp_path: Path) -> None:
    base = Runtime(project()).resolve_version("shop")
    assert Runtime(project()).resolve_version("shop").id == base.id  # stable
    (tmp_path / "prompts/shop/system_prompt.txt").write_text("You help {{ company }} people.\n")
    prompt_changed = Runtime(project()).resolve_version("shop")
    assert prompt_changed.id != base.id and prompt_changed.components["code"] == base.components["code"]
    cfg = project()
    cfg.agents["shop"].model.temperature = 0.5
    model_changed = Runtime(cfg).resolve_version("shop")
    assert model_changed.components["model"] != prompt_changed.components["model"]
    assert model_changed.id != prompt_changed.id


async def test_other_versions_from_config(project: Project, tmp_path: Path) -> None:
    other = tmp_path / "prompts/shop-next"
    other.mkdir()
    for f in (tmp_path / "prompts/shop").iterdir():
        (other / f.name).write_text(f.read_text())
    (other / "version.txt").write_text("2.1.0\n")
    cfg = project()
    cfg.agents["shop"].versions = [AgentVersionConfig(prompts="prompts/shop-next")]
    rt = Runtime(cfg)
    labels = [v.label for v in rt.versions("shop")]
    assert labels == ["2.0.0", "2.1.0"]
    r = await rt.invoke("shop", "order 3", version="2.1.0")
    assert r.version.startswith("shop@2.1.0+") and r.status == "completed"


async def test_gen_ai_request_model_is_the_provider_model_id(project: Project) -> None:
    """`gen_ai.request.model` and the `chat {model}` span name are the model id the request sends (the
    models: entry's `model`), not the config key, which stays beside it as `shipyard.model.key`; the
    GenAI metrics label the id too, while the record (cost, KPIs) keeps the key."""
    from shipyard.config import load_config
    from shipyard.observe import Metrics

    cfg = project()
    assert cfg.path is not None
    text = Path(cfg.path).read_text()
    Path(cfg.path).write_text(
        text.replace("rules: rules.yaml,", "rules: rules.yaml, model: acme-small-2,", 1)
    )
    rt = Runtime(load_config(Path(cfg.path)))
    r = await rt.invoke("shop", "where is order 42?")
    await rt.aclose()
    assert r.status == "completed"
    chats = [s for s in r.spans if s.attributes.get(sc.OPERATION) == sc.OP_CHAT]
    assert len(chats) == 2 and {s.name for s in chats} == {"chat acme-small-2"}
    for s in chats:
        assert s.attributes[sc.REQUEST_MODEL] == "acme-small-2" == s.attributes[sc.RESPONSE_MODEL]
        assert s.attributes[sc.MODEL_KEY] == "scripted"
    root = next(s for s in r.spans if s.name == "invoke_agent shop")
    assert root.attributes[sc.REQUEST_MODEL] == "acme-small-2" and root.attributes[sc.MODEL_KEY] == "scripted"
    assert [(c.model, c.request_model) for c in r.llm_calls] == [("scripted", "acme-small-2")] * 2
    m = Metrics()
    m.observe_interaction(r)
    exposition = m.render().decode()
    assert 'gen_ai_request_model="acme-small-2"' in exposition
    assert 'gen_ai_request_model="scripted"' not in exposition
