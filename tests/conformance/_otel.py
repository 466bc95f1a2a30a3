"""OpenTelemetry conformance: a real OTLP/HTTP receiver (protobuf decoded with opentelemetry-proto)
and the semantic-conventions registry (vendored YAML, data/otel/SOURCE.md), so what Shipyard
exports is checked against the conventions' own definitions, not against our reading of them."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from shipyard.llm import MockLLMServer

REGISTRY_DIR = Path(__file__).parent / "data" / "otel"
OWN_NAMESPACE = "shipyard."


# --- the receiver ----------------------------------------------------------------------------------


@dataclass
class Event:
    name: str
    attributes: dict[str, Any]


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: int
    attributes: dict[str, Any]
    events: list[Event]
    error: bool


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


class Receiver:
    """An OTLP/HTTP trace endpoint on loopback; `spans` holds every span it was sent, decoded."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ok = self.path == "/v1/traces"
                if ok:
                    req = ExportTraceServiceRequest()
                    req.ParseFromString(body)
                    receiver._add(req)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def _add(self, req: ExportTraceServiceRequest) -> None:
        got = [
            Span(
                trace_id=s.trace_id.hex(),
                span_id=s.span_id.hex(),
                parent_id=s.parent_span_id.hex() or None,
                name=s.name,
                kind=s.kind,
                attributes={kv.key: _value(kv.value) for kv in s.attributes},
                events=[Event(e.name, {kv.key: _value(kv.value) for kv in e.attributes}) for e in s.events],
                error=s.status.code == 2,  # STATUS_CODE_ERROR
            )
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
        with self._changed:
            self.spans += got
            self.requests += 1
            self._changed.notify_all()

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


# --- the registry ----------------------------------------------------------------------------------


@dataclass
class Attribute:
    name: str
    deprecated: bool = False
    members: set[str] | None = None  # an enum's values (None: any value of its type)


@dataclass
class Requirement:
    """What a span or event definition asks of an attribute: required, conditionally_required,
    recommended or opt_in."""

    level: str
    condition: str = ""


@dataclass
class Registry:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path = REGISTRY_DIR) -> Registry:
        reg = cls()
        for path in sorted(folder.rglob("*.yaml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for raw in doc.get("attributes") or []:  # file_format: definition/2
                reg._attribute(raw.get("key"), raw)
            for group in doc.get("groups") or []:
                reg.groups[group["id"]] = group
                for raw in group.get("attributes") or []:
                    if "id" in raw:
                        reg._attribute(raw["id"], raw)
        return reg

    def _attribute(self, name: str | None, raw: dict[str, Any]) -> None:
        if not name:
            return
        kind = raw.get("type")
        members = None
        if isinstance(kind, dict) and "members" in kind:
            members = {str(m["value"]) for m in kind["members"]}
        self.attributes[name] = Attribute(name, bool(raw.get("deprecated")), members)

    def requirements(self, group_id: str) -> dict[str, Requirement]:
        """A span or event definition's attributes with their requirement levels, `extends` followed
        (the definition's own entries override what it extends)."""
        group = self.groups[group_id]
        out = self.requirements(group["extends"]) if group.get("extends") else {}
        for raw in group.get("attributes") or []:
            name = raw.get("ref") or raw.get("id")
            level = raw.get("requirement_level")
            if level is None:
                if name not in out:
                    out[name] = Requirement("recommended")
                continue
            if isinstance(level, dict):
                ((key, condition),) = level.items()
                out[name] = Requirement(key, str(condition))
            else:
                out[name] = Requirement(str(level))
        return out

    def event(self, name: str) -> str:
        """The id of the event definition named `name`."""
        for gid, g in self.groups.items():
            if g.get("type") == "event" and g.get("name") == name:
                return gid
        raise KeyError(name)


# which definition a span follows, by its gen_ai.operation.name (client spans for model calls)
SPAN_DEFINITIONS = {
    "chat": "span.gen_ai.inference.client",
    "invoke_agent": "span.gen_ai.invoke_agent.internal",
    "execute_tool": "span.gen_ai.execute_tool.internal",
}
# what a span of each operation is named after (`{operation} {attribute}`)
SPAN_NAME_FROM = {
    "chat": "gen_ai.request.model",
    "invoke_agent": "gen_ai.agent.name",
    "execute_tool": "gen_ai.tool.name",
}
OPT_IN = "opt_in"


def check_names(registry: Registry, where: str, attributes: dict[str, Any]) -> list[str]:
    """Every attribute outside Shipyard's own namespace is a current (not deprecated) registry
    attribute, and an enum attribute has one of its values (`gen_ai.operation.name` included)."""
    problems = []
    for key, value in attributes.items():
        if key.startswith(OWN_NAMESPACE):
            continue
        attr = registry.attributes.get(key)
        if attr is None:
            problems.append(f"{where}: {key} is not in the registry")
        elif attr.deprecated:
            problems.append(f"{where}: {key} is deprecated")
        elif attr.members is not None and key == "gen_ai.operation.name" and str(value) not in attr.members:
            problems.append(f"{where}: {key}={value!r} is not one of the registry's {sorted(attr.members)}")
    return problems


def check_span(registry: Registry, span: Span, *, content_capture: bool) -> list[str]:
    """A span against the registry and, for a GenAI operation, against its span definition."""
    where = f"span {span.name!r}"
    problems = check_names(registry, where, span.attributes)
    for e in span.events:
        problems += check_names(registry, f"{where} event {e.name!r}", e.attributes)
    op = span.attributes.get("gen_ai.operation.name")
    if op is None or op not in SPAN_DEFINITIONS:
        return problems
    wanted = f"{op} {span.attributes.get(SPAN_NAME_FROM[op], '')}"
    if span.name != wanted:
        problems.append(f"{where}: the name should be {wanted!r}")
    for name, req in registry.requirements(SPAN_DEFINITIONS[op]).items():
        present = name in span.attributes
        if req.level == "required" and not present:
            problems.append(f"{where}: required {name} is missing")
        elif req.level == OPT_IN and present and not content_capture:
            problems.append(f"{where}: opt-in {name} is set with content capture off")
        elif name == "server.port" and "server.address" in span.attributes and not present:
            problems.append(f"{where}: server.port is required when server.address is set")
        elif name == "error.type" and span.error and not present:
            problems.append(f"{where}: error.type is required on a failed operation")
        elif name == "gen_ai.request.model" and not present:
            problems.append(f"{where}: gen_ai.request.model is available but missing")
    port = span.attributes.get("server.port")
    if port is not None and not isinstance(port, int):
        problems.append(f"{where}: server.port is {port!r}, not an int")
    if ":" in str(span.attributes.get("server.address", "")):
        problems.append(f"{where}: server.address {span.attributes['server.address']!r} carries a port")
    return problems


def check_wire(span: Span, sent: set[str]) -> list[str]:
    """A model call's `gen_ai.request.model` (on its `chat` span and on each attempt) is a model id
    the provider was sent (`sent`: the `model` of every request the mock servers received), not
    Shipyard's config key for it. A call that never reached a server (every attempt failed before
    the request was read) has nothing on the wire to compare with."""
    a = span.attributes
    if a.get("gen_ai.operation.name") != "chat" and "shipyard.attempt" not in a:
        return []
    if span.error:
        return []
    requested = a.get("gen_ai.request.model")
    if requested in sent:
        return []
    return [
        f"span {span.name!r}: gen_ai.request.model {requested!r} is not a model id sent on the wire {sorted(sent)}"
    ]


def check_flag_event(registry: Registry, span: Span, event: Event) -> list[str]:
    """A `feature_flag.evaluation` event against the event definition."""
    where = f"span {span.name!r} event {event.name!r}"
    problems = []
    reqs = registry.requirements(registry.event("feature_flag.evaluation"))
    for name, req in reqs.items():
        if req.level == "required" and name not in event.attributes:
            problems.append(f"{where}: required {name} is missing")
    has_variant = "feature_flag.result.variant" in event.attributes
    if not has_variant and "feature_flag.result.value" not in event.attributes:
        problems.append(f"{where}: neither a variant nor a value")
    reason = registry.attributes["feature_flag.result.reason"].members or set()
    if event.attributes.get("feature_flag.result.reason") not in reason:
        problems.append(
            f"{where}: reason {event.attributes.get('feature_flag.result.reason')!r} not in {reason}"
        )
    for key in event.attributes:
        if key not in reqs and not key.startswith(OWN_NAMESPACE):
            problems.append(f"{where}: {key} is not an attribute of the event")
    return problems


# --- Shipyard's side: `shipyard run` / `shipyard eval run` exporting to the receiver ---------------

AGENT = '''\
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()


@tools.tool(idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id, "status": "shipped"}


async def answer(user_input: str, ctx: AgentContext) -> AgentResult:
    ctx.flags.enabled("new_flow")  # a flag of the project's flag file
    ctx.flags.string("no_such_flag", "x")  # an evaluation that fails: FLAG_NOT_FOUND
    messages = [{"role": "user", "content": user_input}]
    for _ in range(4):
        reply = await ctx.llm.chat(messages, tools=ctx.tools.definitions())
        if not reply.tool_calls:
            return AgentResult(output=reply.text or "")
        messages.append(reply.to_message())
        for call in reply.tool_calls:
            res = await ctx.tools.run(call)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": res.content()})
    return AgentResult(output="gave up", status="failed")


@agent("shop", tools=tools)
async def shop(user_input: str, ctx: AgentContext) -> AgentResult:
    return await answer(user_input, ctx)


@agent("shop_down", tools=tools)
async def shop_down(user_input: str, ctx: AgentContext) -> AgentResult:
    return await answer(user_input, ctx)
'''

FLAGS = {
    "flags": {
        "new_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 50], ["off", 50]]},
        }
    }
}

SUITE = """\
name: otel
cases:
  - id: order
    input: where is order 12345
    expected: shipped
  - id: hello
    input: hello
    expected: Hello
"""


# the provider model ids the project's models ask for: not their config keys (`flaky`, `down`), so a
# span that reports the key instead of the id sent fails `check_wire`
GOOD_MODEL = "shop-large-v1"
DOWN_MODEL = "shop-down-v1"


def write_project(
    folder: Path, good_url: str, down_url: str, *, content_capture: bool, guardrail: bool = True
) -> Path:
    """A project with an agent on a flaky OpenAI-compatible endpoint (`shop`: retries happen; with
    `guardrail`, a tool_call check of its tool) and one on an endpoint that only fails (`shop_down`),
    a flag file, and a small eval suite."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "otel_agent.py").write_text(AGENT)
    (folder / "flags.json").write_text(json.dumps(FLAGS))
    (folder / "evals").mkdir(exist_ok=True)
    (folder / "evals" / "otel.yaml").write_text(SUITE)
    fast = "backoff_base_s: 0.001, backoff_max_s: 0.002, retry_after_max_s: 1"
    (folder / "shipyard.yaml").write_text(
        "models:\n"
        f"  flaky: {{provider: openai, base_url: '{good_url}', model: {GOOD_MODEL}, max_retries: 8, {fast}}}\n"
        f"  down: {{provider: openai, base_url: '{down_url}', model: {DOWN_MODEL}, max_retries: 1, {fast},"
        " breaker: {min_calls: 1000}}\n"
        "agents:\n"
        "  shop: {entry: otel_agent:shop, model: {name: flaky}"
        + (
            ", guardrails: {tool_call: [{kind: tool_policy, name: lookups, tools: [lookup], max_calls: 5}]}"
            if guardrail
            else ""
        )
        + "}\n"
        "  shop_down: {entry: otel_agent:shop_down, model: {name: down}}\n"
        f"server: {{content_capture: {'true' if content_capture else 'false'}}}\n"
    )
    return folder


@dataclass
class Exercise:
    """What one project's commands exported, and their interaction records (`shipyard run --json`)."""

    spans: list[Span]
    records: list[dict[str, Any]]
    exit_codes: list[int]
    eval_exit: int
    # `model` of the requests the mock servers received (None: no server was watched)
    sent_models: set[str] | None = None


def exercise(
    project: Path,
    receiver: Receiver,
    command: list[str],
    env: dict[str, str] | None = None,
    servers: tuple[MockLLMServer, ...] = (),
) -> Exercise:
    """`shipyard run` (a question with a tool call, a greeting, and a call to the failing endpoint)
    and `shipyard eval run`, each a process of its own exporting to `receiver`; what `servers`
    (mock servers in this process) were asked for is kept as `sent_models`."""
    import json
    import os
    import subprocess

    for s in servers:
        if s.app is not None:
            s.app.recent.clear()
    run_env = {**os.environ, **(env or {}), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    run_env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    records, codes = [], []
    for agent, text in (("shop", "where is order 12345"), ("shop", "hello"), ("shop_down", "order 7")):
        done = subprocess.run(
            [*command, "run", agent, text, "--json"],
            cwd=project,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        codes.append(done.returncode)
        try:
            records.append(json.loads(done.stdout))
        except json.JSONDecodeError:
            raise RuntimeError(
                f"shipyard run {agent} printed no record:\n{done.stdout}\n{done.stderr}"
            ) from None
    evaluated = subprocess.run(
        [*command, "eval", "run", "--agent", "shop", "--suite", "evals/otel.yaml"],
        cwd=project,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    sent = (
        {str(r.get("model")) for s in servers if s.app is not None for r in s.app.recent} if servers else None
    )
    return Exercise(list(receiver.spans), records, codes, evaluated.returncode, sent)


@dataclass
class Findings:
    """Spans checked and what disagrees with the conventions."""

    spans: int = 0
    agreed: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        share = 100 * self.agreed / self.spans if self.spans else 0.0
        return f"{self.agreed}/{self.spans} spans conform ({share:.1f}%)"


def findings(registry: Registry, ex: Exercise, *, content_capture: bool) -> Findings:
    """Every exported span against the registry and its definition; plus, per interaction, one
    GenAI `chat` span per model call, and every flag evaluation as a conforming event."""
    out = Findings()
    by_trace: dict[str, list[Span]] = {}
    for s in ex.spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    for s in ex.spans:
        problems = check_span(registry, s, content_capture=content_capture)
        if ex.sent_models is not None:
            problems += check_wire(s, ex.sent_models)
        for e in s.events:
            if e.name == "feature_flag.evaluation":
                problems += check_flag_event(registry, s, e)
        out.spans += 1
        out.agreed += not problems
        out.problems += problems
    for r in ex.records:
        spans = by_trace.get(r["trace_id"], [])
        if not spans:
            out.problems.append(f"trace {r['trace_id']} ({r['agent']}) never reached the collector")
            continue
        chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
        if len(chats) != len(r["llm_calls"]):
            out.problems.append(
                f"trace {r['trace_id']}: {len(chats)} spans count as GenAI chat operations for "
                f"{len(r['llm_calls'])} model call(s)"
            )
        events = [e for s in spans for e in s.events if e.name == "feature_flag.evaluation"]
        if len(events) != 2:
            out.problems.append(f"trace {r['trace_id']}: {len(events)} feature_flag.evaluation events, not 2")
    return out


def main() -> None:
    """Print the agreement figures: `python tests/conformance/_otel.py [shipyard command ...]`."""
    import shlex
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parents[1] / "support"))
    from order_shop import RULES

    args = sys.argv[1:]
    guardrail = "--no-guardrail" not in args  # for a build whose config has no tool_call checks
    command = [a for a in args if a != "--no-guardrail"] or [str(Path(sys.executable).parent / "shipyard")]
    registry = Registry.load()
    rules = yaml.safe_load(RULES)
    servers = (MockLLMServer(rules, error_rate=0.4, seed=3), MockLLMServer(rules, error_rate=1.0, seed=1))
    with tempfile.TemporaryDirectory() as tmp, servers[0] as good, servers[1] as down:
        for capture in (False, True):
            with Receiver().running() as receiver:
                project = write_project(
                    Path(tmp) / f"p{int(capture)}", good, down, content_capture=capture, guardrail=guardrail
                )
                ex = exercise(project, receiver, command, servers=servers)
            f = findings(registry, ex, content_capture=capture)
            print(f"otel (content capture {'on' if capture else 'off'}, {shlex.join(command[-1:])}): {f}")
            for p in sorted(set(f.problems)):
                print(f"  - {p}")


if __name__ == "__main__":
    main()
