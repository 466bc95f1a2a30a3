"""Redaction at rest: traffic full of personal data through a real served app, then every sink is
searched for it: the SQLite store and the journal (every file under .shipyard/), span attributes (in
the store and the admin API), an OTLP export to a local receiver, the dashboard's API and the logs.
With content capture off (the default) and with it on, personal data is masked wherever it is kept;
only `unmasked_pii: true` keeps it. The user's own answer is not changed by it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pii_agent
import pytest
from server_helpers import Served
from waiting import wait_until

from shipyard.observe import flush_export, set_span_exporter


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps the raw bodies it is sent (protobuf keeps strings as UTF-8)."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        Receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.bodies.clear()
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    set_span_exporter(None)
    server.shutdown()


def _project(capture: str, otlp: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        text = text.replace("agents:\n", "agents:\n" + pii_agent.AGENT_YAML, 1)
        return text + f"\nserver:\n  content_capture: {capture}\n  otlp_endpoint: {otlp}\n"

    return edit


def _traffic(served: Served) -> dict[str, Any]:
    """One invoke and one streamed chat completion, both full of personal data; every sink filled."""
    with served.client() as c:
        r = c.post(
            "/v1/agents/clerk/invoke",
            json={"input": pii_agent.MESSAGE, "metadata": {"callback": pii_agent.PHONE}},
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        streamed = c.post(
            "/v1/chat/completions",
            json={
                "model": "clerk",
                "stream": True,
                "messages": [{"role": "user", "content": pii_agent.MESSAGE}],
            },
        )
        assert streamed.status_code == 200
        answer["streamed"] = streamed.text
        ids = [answer["interaction_id"], streamed.headers["X-Interaction-Id"]]
        store = served.state.store
        assert store is not None
        wait_until(
            lambda: all(store.find_interaction(i) is not None for i in ids), "the records reach the store"
        )
        rated = c.post(
            "/v1/feedback",
            json={
                "interaction_id": ids[0],
                "thumbs": "down",
                "comment": f"wrong! write to {pii_agent.EMAIL}",
            },
        )
        assert rated.status_code == 200, rated.text
        assert flush_export()
        wait_until(lambda: Receiver.bodies, "the spans reach the OTLP receiver")
        trace = answer["trace_id"]
        answer["api"] = "\n".join(
            c.get(path).text
            for path in (
                f"/admin/interactions/{ids[0]}",
                f"/admin/interactions/{ids[1]}",
                "/admin/interactions?agent=clerk",
                f"/admin/traces/{trace}",
                "/admin/traces",
                f"/admin/api/dashboard/traces/{trace}",
                "/admin/api/dashboard/traces",
                "/admin/api/dashboard/overview",
            )
        )
    return answer


def _streamed_text(sse: str) -> str:
    """The answer a chat-completions stream carried, its chunks joined."""
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def _at_rest(root: Path) -> bytes:
    """Every byte Shipyard keeps under .shipyard/: the SQLite database and its WAL, the journal."""
    files = [p for p in (root / ".shipyard").rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" or "sqlite" in p.name for p in files) and any(
        "journal" in str(p) for p in files
    )
    return b"".join(p.read_bytes() for p in files)


def _found(blob: str | bytes) -> list[str]:
    text = blob.decode(errors="replace") if isinstance(blob, bytes) else blob
    text = text.replace("\\u0040", "@")  # a JSON encoder may escape characters
    return [v for v in pii_agent.ALL if v in text]


@pytest.mark.parametrize("capture", ["false", "{enabled: true}"])
def test_personal_data_is_masked_in_every_sink(
    serve_project: Callable[..., Served], receiver: str, capture: str
) -> None:
    served = serve_project(_project(capture, receiver))
    answer = _traffic(served)
    # the user's own answer is what the agent said (no output guardrail is configured for it)
    assert pii_agent.EMAIL in answer["output"] and pii_agent.CARD in answer["output"]
    assert pii_agent.CARD in _streamed_text(answer["streamed"])

    stored = served.state.store.find_interaction(answer["interaction_id"], spans=True)  # type: ignore[union-attr]
    assert stored is not None
    # content is kept, with personal data replaced by placeholders
    assert "[EMAIL]" in stored.input and "[SSN]" in stored.input and "[SECRET]" in stored.input
    assert "[CARD]" in stored.output and "[ADDRESS]" in stored.output and "[IBAN]" in stored.output
    find, notify = stored.tool_calls
    assert find.arguments == {"email": "[EMAIL]"} and find.result["phone"] == "[PHONE]"
    assert notify.status == "error" and "[EMAIL]" in str(notify.error) and "[IP_ADDRESS]" in str(notify.error)
    assert stored.metadata["callback"] == "[PHONE]"
    assert stored.feedback is not None and stored.feedback["comment"] == "wrong! write to [EMAIL]"
    tool_span = next(s for s in stored.spans if s.name == "execute_tool find_customer")
    if capture == "false":  # an opt-in (content) attribute of the GenAI conventions
        assert "gen_ai.tool.call.arguments" not in tool_span.attributes
    else:
        assert "[EMAIL]" in tool_span.attributes["gen_ai.tool.call.arguments"]

    assert _found(_at_rest(served.cfg.root)) == []
    assert _found(b"".join(Receiver.bodies)) == [] and b"[EMAIL]" in b"".join(Receiver.bodies)
    assert _found(answer["api"]) == [] and "[EMAIL]" in answer["api"]
    logs = served.logs.getvalue()
    assert _found(logs) == []
    [logged] = [
        e
        for e in map(json.loads, logs.splitlines())
        if e.get("interaction_id") == answer["interaction_id"] and "input" in e
    ]
    if capture == "false":
        assert logged["input"].startswith("[redacted: ")  # logs keep only the length
    else:
        assert "[EMAIL]" in logged["input"]  # capture on: logs carry the content, still masked


def test_unmasked_pii_keeps_personal_data_only_when_asked(
    serve_project: Callable[..., Served], receiver: str
) -> None:
    served = serve_project(_project("{enabled: true, unmasked_pii: true}", receiver))
    answer = _traffic(served)
    stored = served.state.store.find_interaction(answer["interaction_id"])  # type: ignore[union-attr]
    assert stored is not None and stored.input == pii_agent.MESSAGE
    assert set(_found(_at_rest(served.cfg.root))) == set(pii_agent.ALL)
    assert pii_agent.EMAIL in served.logs.getvalue()


def test_a_streamed_answer_carries_the_output_guardrails_redaction(served: Served) -> None:
    """Output checks run on the whole answer before the first chunk is sent, so a value the `pii`
    check masks cannot reach the client split across chunks."""
    text = "Please call me back on +1 415 555 0134 about my order 10002"
    with served.client() as c:
        r = c.post(
            "/v1/chat/completions",
            json={"model": "support", "stream": True, "messages": [{"role": "user", "content": text}]},
        )
    assert r.status_code == 200
    streamed = _streamed_text(r.text)
    assert "[PHONE]" in streamed and "555" not in streamed and "0134" not in streamed
