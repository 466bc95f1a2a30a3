"""Validation at the edge: nothing the API accepts can fail the store (SQLite and PostgreSQL), bad
input is refused before the agent runs, and what the agent did is recorded whatever fails after it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from server_helpers import Served
from testdb import KINDS, fresh_database
from waiting import wait_until

from shipyard.guardrails import Decision, Guardrail, GuardrailInput, guardrail_kind
from shipyard.server import _steps
from shipyard.store import Store


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store the served app writes to: a SQLite file, or a fresh schema in the local PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        s = Store(url)
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def served_on(store: Store, serve_project: Callable[..., Served]) -> Callable[..., Served]:
    """Serve the demo project on `store` (`store` is set up first, so it outlives the server)."""
    return functools.partial(serve_project, store=store)


def wait_stored(s: Served, ids: list[str]) -> None:
    """Wait until every interaction id is in the store."""
    missing = list(ids)

    def stored() -> bool:
        missing[:] = [i for i in missing if s.state.store.get_interaction(i) is None]
        return not missing

    wait_until(stored, f"{len(ids)} records in the store")


def post(c: Any, path: str, body: bytes | dict[str, Any], **headers: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()  # orjson stops at 254 levels
    return c.post(path, content=raw, headers={"content-type": "application/json", **headers})


INVOKE = "/v1/agents/support/invoke"
CHAT = "/v1/chat/completions"
USER_MSG = [{"role": "user", "content": "Where is my order 10001?"}]
NUL = "\u0000"

# (path, body, param): each is well-formed JSON the store could not hold as sent
REFUSED = [
    (INVOKE, {"input": f"hi{NUL}"}, "input"),
    (INVOKE, {"input": "hi", "session_id": f"s{NUL}1"}, "session_id"),
    (INVOKE, {"input": "hi", "session_id": "s" * 3000}, "session_id"),
    (INVOKE, {"input": "hi", "session_id": "tab\there"}, "session_id"),
    (INVOKE, {"input": "hi", "user_id": f"u{NUL}"}, "user_id"),
    (INVOKE, {"input": "hi", "version": f"1.0{NUL}"}, "version"),
    (INVOKE, {"input": "hi", "metadata": {"note": f"a{NUL}b"}}, "metadata.note"),
    (INVOKE, {"input": "hi", "metadata": {f"k{NUL}": 1}}, "metadata"),
    (INVOKE, {"input": "hi", "metadata": {"tags": ["ok", f"x{NUL}"]}}, "metadata.tags[1]"),
    (
        CHAT,
        {"model": "support", "messages": [{"role": "user", "content": f"hi{NUL}"}]},
        "messages[0].content",
    ),
    (
        CHAT,
        {"model": "support", "messages": [{"role": "user", "content": [{"type": "text", "text": NUL}]}]},
        "messages[0].content[0].text",
    ),
    (CHAT, {"model": "support", "messages": USER_MSG, "user": f"u{NUL}"}, "user"),
    (CHAT, {"model": f"support{NUL}", "messages": USER_MSG}, "model"),
    (CHAT, {"model": "support", "messages": USER_MSG, "session_id": "s" * 257}, "session_id"),
    ("/v1/feedback", {"interaction_id": f"x{NUL}", "thumbs": 1}, "interaction_id"),
    ("/v1/feedback", {"interaction_id": "x", "comment": f"bad{NUL}"}, "comment"),
    ("/v1/feedback", {"interaction_id": "x", "comment": "c" * 10_001}, "comment"),
    ("/admin/keys", {"role": "read", "name": f"n{NUL}"}, "name"),
]


def test_nul_and_oversized_fields_are_refused_and_saving_goes_on(served_on: Callable[..., Served]) -> None:
    """With PostgreSQL, each of these was answered 200 and then failed the store write forever."""
    s = served_on()
    with s.client() as c:
        for path, body, param in REFUSED:
            r = post(c, path, body)
            assert r.status_code == 422, (path, body, r.text)
            err = r.json()["error"]
            assert err["param"] == param and err["message"], (path, err)
        # the session header of chat completions is an id too
        r = post(c, CHAT, {"model": "support", "messages": USER_MSG}, **{"x-session-id": "h" * 300})
        assert r.status_code == 422 and r.json()["error"]["param"] == "X-Session-Id"
        r = post(c, CHAT, {"model": "support", "messages": USER_MSG}, **{"x-session-id": b"a\x85b"})
        assert r.status_code == 422 and r.json()["error"]["param"] == "X-Session-Id"
        # query and path parameters go to the store as well: a NUL there is a 4xx, never a 500
        for path, params, param in [
            ("/admin/interactions", {"session_id": NUL}, "session_id"),
            ("/admin/interactions", {"agent": "a" * 300}, "agent"),
            ("/admin/traces", {"version": f"v{NUL}"}, "version"),
            ("/admin/interactions/a%00b", {}, "id"),
            ("/admin/traces/a%00b", {}, "trace_id"),
            ("/admin/api/dashboard/traces", {"session_id": NUL}, "session_id"),
            ("/admin/experiments/support/report", {"id": NUL}, "id"),
            ("/admin/flags/x%00y", {}, "name"),
        ]:
            r = c.get(path, params=params)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["error"]["param"] == param
        assert s.state.store.list_interactions(limit=None) == []  # nothing refused ever ran

        # the next 50 good requests are all stored, and feedback works
        ids = []
        for i in range(50):
            r = post(
                c, INVOKE, {"input": "Where is my order 10001?", "session_id": f"good-{i}", "user_id": "ü-1"}
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()["interaction_id"])
        wait_stored(s, ids)
        fb = post(c, "/v1/feedback", {"interaction_id": ids[0], "thumbs": "up", "comment": "fine"})
        assert fb.status_code == 200, fb.text
        listed = c.get("/admin/interactions", params={"session_id": "good-7"}).json()["interactions"]
        assert [r["id"] for r in listed] == [ids[7]]
    assert s.state.store.get_interaction(ids[0]).feedback["comment"] == "fine"
    assert s.state.journal.failures == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"input": "\\ud800"}', "body"),  # a lone UTF-16 surrogate: orjson refuses it as malformed
        (b'{"input": "ok", "metadata": {"k": "\\udfff x"}}', "body"),
        (b'{"input": "\xed\xa0\x80"}', "body"),  # a surrogate encoded in UTF-8 bytes is invalid UTF-8
        (b'{"input": "ok", "metadata": {"n": 1e400}}', "body"),  # infinity: JSONB has none
    ],
)
def test_lone_surrogates_and_infinities_are_malformed_json(served: Served, body: bytes, param: str) -> None:
    with served.client() as c:
        r = post(c, INVOKE, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_metadata_is_bounded_before_the_agent_runs(serve_project: Callable[..., Served]) -> None:
    """254+ levels used to give a 500 after the agent's tools ran (the refund happened, nothing was
    recorded): now too deep, too many keys or too large is refused before anything runs."""
    s = serve_project(lambda text: text + "\nserver: {max_metadata_bytes: 2000}\n")
    refund = "I want a refund for order 10001, it arrived broken."
    with s.client() as c:
        for metadata, param in [
            (_nested(300), "metadata"),
            (_nested(11), "metadata"),
            ({f"k{i}": i for i in range(300)}, "metadata"),
            ({"blob": "x" * 3000}, "metadata"),
        ]:
            r = post(c, INVOKE, {"input": refund, "metadata": metadata})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["param"].startswith(param)
        r = post(c, CHAT, {"model": "support", "messages": USER_MSG, "metadata": _nested(300)})
        assert r.status_code == 422 and r.json()["error"]["param"].startswith("metadata")
        assert s.state.journal.pending == 0 and s.state.journal.stored == 0  # no agent ran
        ok = post(c, INVOKE, {"input": "Where is my order 10001?", "metadata": _nested(10)})
        assert ok.status_code == 200, ok.text
        wait_stored(s, [ok.json()["interaction_id"]])
    stored = s.state.store.get_interaction(ok.json()["interaction_id"])
    assert stored.metadata["a"]["a"]["a"]


def test_chat_history_is_bounded(serve_project: Callable[..., Served]) -> None:
    s = serve_project(lambda text: text + "\nserver: {max_history_messages: 5}\n")
    turns = [{"role": "user", "content": f"turn {i}"} for i in range(6)]
    with s.client() as c:
        r = post(c, CHAT, {"model": "support", "messages": turns})
        assert r.status_code == 422 and r.json()["error"]["param"] == "messages"
        assert post(c, CHAT, {"model": "support", "messages": turns[:5]}).status_code == 200


# an agent whose result the store could not take as it is, after its tools ran
AGENTS = """\
from shipyard.agents import AgentResult, agent
from shipyard.demo.agent import support
from shipyard.demo._tools import TOOLS


def _nested(depth):
    value = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@agent("deep_meta", tools=TOOLS)
async def deep_meta(user_input, ctx):
    result = await support(user_input, ctx)
    return AgentResult(result.output, result.status, {"debug": _nested(300), "big": 2**70, "nul": "a\\x00b"})


@agent("half_emoji", tools=TOOLS)
async def half_emoji(user_input, ctx):  # e.g. an HTTP agent's JSON parsed by the stdlib
    result = await support(user_input, ctx)
    return AgentResult(result.output + " \\ud83d", result.status)


@agent("list_meta", tools=TOOLS)
async def list_meta(user_input, ctx):
    result = await support(user_input, ctx)
    return AgentResult(result.output, result.status, ["not", "a", "mapping"])
"""


def _with_agents(text: str) -> str:
    extra = ""
    for name in ("deep_meta", "list_meta", "half_emoji"):
        extra += (
            f"  {name}:\n    entry: edge_agents:{name}\n    prompts: prompts/support/v1.0\n"
            "    prompt_variables: {company_name: Brightside Goods}\n    model: {name: scripted-small}\n"
        )
    return text.replace("agents:\n", "agents:\n" + extra, 1)


@pytest.fixture
def odd_agents(served_on: Callable[..., Served], tmp_path: Path) -> Served:
    (tmp_path / "edge_agents.py").write_text(AGENTS)
    return served_on(_with_agents)


def _tools_of(s: Served, interaction_id: str) -> list[str]:
    return [t.name for t in s.state.store.get_interaction(interaction_id).tool_calls]


def test_a_record_that_cannot_be_encoded_is_stored_sanitized_with_its_tool_calls(odd_agents: Served) -> None:
    s = odd_agents
    with s.client() as c:
        r = post(c, "/v1/agents/deep_meta/invoke", {"input": "Where is my order 10001?"})
        assert r.status_code == 200, r.text
        rid = r.json()["interaction_id"]
        wait_stored(s, [rid])
        assert c.get(f"/admin/interactions/{rid}").status_code == 200
    stored = s.state.store.get_interaction(rid, spans=True)
    assert "lookup_order" in _tools_of(s, rid) and stored.spans
    assert "could not be encoded" in stored.metadata["record_error"]
    assert stored.metadata["big"] == str(2**70) and stored.metadata["nul"] == "a\ufffdb"
    assert "record_sanitized" in s.logs.getvalue()


def test_an_answer_with_a_lone_surrogate_is_sent_and_stored(odd_agents: Served) -> None:
    s = odd_agents
    with s.client() as c:
        r = post(c, "/v1/agents/half_emoji/invoke", {"input": "Where is my order 10001?"})
        assert r.status_code == 200, r.text
        assert r.json()["output"].endswith(" \ufffd")  # the half emoji: a replacement character
        rid = r.json()["interaction_id"]
        wait_stored(s, [rid])
    stored = s.state.store.get_interaction(rid)
    assert stored.output.endswith(" \ufffd") and "lookup_order" in _tools_of(s, rid)


def test_a_record_that_cannot_be_built_is_still_recorded_with_its_tool_calls(odd_agents: Served) -> None:
    s = odd_agents
    with s.client() as c:
        r = post(c, "/v1/agents/list_meta/invoke", {"input": "Where is my order 10001?"})
        assert r.status_code == 200, r.text
        assert "10001" in r.json()["output"]
        rid = r.json()["interaction_id"]
        wait_stored(s, [rid])
    assert "lookup_order" in _tools_of(s, rid)
    assert "could not be built" in s.state.store.get_interaction(rid).metadata["record_error"]


@guardrail_kind("edge_test_crash")
class Crashes(Guardrail):
    """A third-party guardrail with a bug."""

    def check(self, inp: GuardrailInput) -> Decision:
        raise RuntimeError("the output guardrail crashed")


def test_a_failing_step_after_the_agent_still_records_the_interaction(
    served_on: Callable[..., Served],
) -> None:
    s = served_on(
        lambda text: text.replace("      output:\n", "      output:\n        - kind: edge_test_crash\n")
    )
    assert s.state.rt.guardrails("support").output[0].kind == "edge_test_crash"
    with s.client() as c:
        r = post(c, INVOKE, {"input": "Where is my order 10001?"})
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["type"] == "pipeline_error" and "guardrail crashed" in err["message"]
    wait_stored(s, [err["interaction_id"]])
    stored = s.state.store.get_interaction(err["interaction_id"])
    assert stored.status == "failed" and "lookup_order" in _tools_of(s, stored.id)


def test_record_steps_run_each_on_its_own(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(state: Any, record: Any) -> None:
        raise ValueError("a third-party record step has a bug")

    steps = list(_steps.RECORD_STEPS)
    monkeypatch.setattr(_steps, "RECORD_STEPS", [steps[0], ("broken", broken), *steps[1:]])
    with served.client() as c:
        r = post(c, INVOKE, {"input": "Where is my order 10001?"})
        assert r.status_code == 200, r.text
        rid = r.json()["interaction_id"]
        wait_stored(served, [rid])
        metrics = c.get("/metrics").text
    assert 'shipyard_interactions_total{agent="support",status="completed"' in metrics  # after the broken one
    assert served.state.window.kpis(3600).interactions == 1
    events = [orjson.loads(line) for line in served.logs.getvalue().splitlines()]
    assert any(e["event"] == "record_step_failed" and e["step"] == "broken" for e in events)


def test_a_journal_that_cannot_write_answers_500_with_the_interaction_id(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(state: Any, record: Any) -> None:
        raise OSError(28, "No space left on device")

    steps = list(_steps.RECORD_STEPS)
    monkeypatch.setattr(_steps, "RECORD_STEPS", [("journal", disk_full), *steps[1:]])
    with served.client() as c:
        r = post(c, INVOKE, {"input": "Where is my order 10001?"})
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    assert err["interaction_id"] and err["trace_id"] and "No space left" in err["message"]
    events = [orjson.loads(line) for line in served.logs.getvalue().splitlines()]
    # the other steps still ran: the interaction's tool calls are in the log under its id
    assert any(
        e["event"] == "interaction" and e["tool_calls"] and e["interaction_id"] == err["interaction_id"]
        for e in events
    )


def test_an_interaction_can_be_read_as_soon_as_its_answer_is_sent(
    serve_project: Callable[..., Served],
) -> None:
    # the mover waits (a batch fills, or 10 minutes pass): the record is only in the journal
    s = serve_project(lambda text: text + "\nstore: {flush_interval_ms: 600000}\n")
    with s.client() as c:
        out = post(c, INVOKE, {"input": "Where is my order 10001?"}).json()
        assert s.state.journal.is_pending(out["interaction_id"])
        one = c.get(f"/admin/interactions/{out['interaction_id']}")
        assert one.status_code == 200, one.text
        assert one.json()["interaction"]["trace_id"] == out["trace_id"]
        trace = c.get(f"/admin/traces/{out['trace_id']}")
        assert trace.status_code == 200, trace.text
        assert any("lookup_order" in line for line in trace.json()["tree"])
        by_trace = c.get(f"/admin/interactions/{out['trace_id']}")
        assert by_trace.json()["interaction"]["id"] == out["interaction_id"]
