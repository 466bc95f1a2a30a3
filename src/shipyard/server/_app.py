"""The ASGI app: gateway routes, feedback, health, metrics, the admin API and the dashboard.

Plain Starlette routes behind one middleware, the request guard (Host allow-list, JSON-only and
same-origin writes: `_guard`); each handler checks its key, reads a bounded JSON body, runs one interaction through the runtime and the record steps
(journal first), and answers. Every error is JSON naming the field (see `_http`); an unexpected one
is a logged 500 (`_errors.ErrorBoundary`, outside the guard).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Match, Route

from shipyard.config import ShipyardConfig, parse_window
from shipyard.errors import NotFoundError, ShipyardError
from shipyard.observe import export_spans, log_event, log_feedback, rating_of, trace_tree_lines
from shipyard.server._auth import (
    ROLES,
    RetryLater,
    create_key,
    hash_key,
    prefix_of,
    presented_key,
    public_key_row,
)
from shipyard.server._budgets_api import budget_routes
from shipyard.server._cache_api import cache_routes
from shipyard.server._chat_params import check_chat_params
from shipyard.server._cost_api import cost_routes
from shipyard.server._dashboard import dashboard_routes, kpis_document
from shipyard.server._errors import ErrorBoundary
from shipyard.server._flags_api import flag_routes
from shipyard.server._guard import HostAllowList, RequestGuard
from shipyard.server._http import (
    MAX_COMMENT_CHARS,
    SCORE_MAX,
    SCORE_MIN,
    ApiError,
    check_id,
    dumps,
    endpoint,
    error_response,
    field,
    id_field,
    json_response,
    metadata_field,
    number_field,
    query_int,
    read_json,
    text_field,
)
from shipyard.server._idempotency import HEADER as IDEMPOTENCY_HEADER
from shipyard.server._idempotency import idempotent
from shipyard.server._incidents_api import incident_routes, observe_feedback
from shipyard.server._k8s_api import k8s_routes
from shipyard.server._openapi import openapi_document
from shipyard.server._reload import config_routes
from shipyard.server._rollout_api import _PARTS, chosen_version, rollout_routes
from shipyard.server._state import ServerState
from shipyard.server._steps import NotRecorded
from shipyard.store import InteractionRecord, error_reason


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.shipyard
    return state


# the gateway -----------------------------------------------------------------------------------------
def _agent(state: ServerState, name: str, param: str) -> None:
    if name not in state.cfg.agents:
        known = ", ".join(sorted(state.cfg.agents)) or "none"
        raise ApiError(
            404, f"no agent named {name!r} (served agents: {known})", type="not_found_error", param=param
        )
    if name in state.load_errors:
        raise ApiError(
            503,
            f"agent {name!r} could not be loaded: {state.load_errors[name]}",
            type="service_unavailable",
            param=param,
        )


async def _run(
    state: ServerState,
    agent: str,
    text: str,
    *,
    session_id: str | None,
    user_id: str | None,
    version: str | None,
    metadata: dict[str, Any] | None,
    history: list[dict[str, Any]] | None = None,
    keyed: bool = False,
    api_key: str | None = None,
) -> InteractionRecord:
    """One interaction through the runtime, then the record steps (journal before anything is sent)
    on the record as it is kept (content masked per `server.content_capture`); returns the record as
    it happened, which the response is made from. `keyed`: the request carries an Idempotency-Key,
    so a retry replays its answer. Rate limits (server/_rate_limits.py) are checked first (429) and
    the interaction's tokens counted after it."""
    limits = state.cfg.rate_limits
    counted = await state.rate_limiter.admit(limits, api_key=api_key, user_id=user_id)
    try:
        with state.reloader.lease() as rt:  # a config reload swaps the runtime; this request keeps its own
            outcome = await rt.interact(
                agent,
                text,
                session_id=session_id,
                user_id=user_id,
                version=version,
                metadata=metadata,
                history=history,
                api_key=api_key,
            )
    except NotFoundError as e:
        raise ApiError(404, e.message, type="not_found_error", param="version") from None
    except ShipyardError as e:  # the project is misconfigured (e.g. a prompt variable has no value)
        log_event("agent_unavailable", level="error", agent=agent, error=e.message)
        raise ApiError(503, f"agent {agent!r} cannot run: {e.message}", type="service_unavailable") from None
    record: InteractionRecord = outcome.full
    await state.rate_limiter.count_tokens(limits, counted, record.input_tokens + record.output_tokens)
    try:
        state.finish(outcome.kept)
    except NotRecorded as e:  # the agent ran, but nothing durable holds its record: say so, with its id
        retry = (
            f"A retry with the same {IDEMPOTENCY_HEADER} gets this answer again; the agent does not run twice"
            if keyed
            else f"A retry runs the agent again (send an {IDEMPOTENCY_HEADER} to make retries safe)"
        )
        raise ApiError(
            500,
            f"the interaction ran but its record could not be saved ({e.reason}); it is in the server "
            f"log (event record_step_failed). {retry}",
            type="internal_error",
            extra={"interaction_id": record.id, "trace_id": record.trace_id},
        ) from None
    if state.shadow_mirror is not None:  # only schedules a background replay: the answer never waits
        state.shadow_mirror.offer(record)
    await state.journal.keep_up()  # back-pressure: a store that lags behind traffic holds answers back
    return record


def _finish_reason(status: str) -> str:
    """`length` when a budget stopped the answer (a client sees it was cut short), else `stop`."""
    return "length" if status == "budget_exceeded" else "stop"


def _caller_key(request: Request, state: ServerState) -> str | None:
    """The prefix of the API key the (already checked) request came with; None in open mode."""
    if state.keys is None or state.keys.open:
        return None
    return prefix_of(presented_key(request.headers))


def _failure_status(record: InteractionRecord) -> int | None:
    """502 for a failed model or agent, 504 for a timeout; None when the interaction ran."""
    if record.status != "failed" or record.error is None:
        return None
    kind = str(record.metadata.get("error_kind", ""))
    return 504 if "timeout" in kind else 502


def _ids(record: InteractionRecord) -> dict[str, str]:
    return {"X-Interaction-Id": record.id, "X-Trace-Id": record.trace_id}


@endpoint("invoke")
# Idempotency-Key (server/_idempotency.py): no effect on requests without it; the version rule
# (choosing a version is admin-only) comes first, so no stored key can get around it
@idempotent(before=chosen_version)
async def invoke(request: Request, state: ServerState) -> Response:
    """POST /v1/agents/{agent}/invoke"""
    agent = request.path_params["agent"]
    _agent(state, agent, "agent")
    server = state.cfg.server
    body = await read_json(request, server.max_body_bytes)
    text = field(body, "input", str, required=True)
    record = await _run(
        state,
        agent,
        text,
        session_id=id_field(body, "session_id"),
        user_id=id_field(body, "user_id"),
        version=await chosen_version(request, state, body),
        metadata=metadata_field(body, server.max_metadata_bytes),
        keyed=IDEMPOTENCY_HEADER in request.headers,
        api_key=_caller_key(request, state),
    )
    out = {
        "output": record.output,
        "status": record.status,
        "interaction_id": record.id,
        "trace_id": record.trace_id,
        "session_id": record.session_id,
        "version": record.version,
    }
    failed = _failure_status(record)
    if failed is not None:
        kind = record.metadata.get("error_kind", "error")
        return error_response(failed, record.error or "the interaction failed", type=str(kind), extra=out)
    return json_response(out, headers=_ids(record))


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
                raise ApiError(
                    422,
                    f"field 'messages[{i}].content' parts must be objects with a text string",
                    param=f"messages[{i}].content",
                )
            parts.append(part.get("text", ""))
        return "".join(parts)
    raise ApiError(
        422,
        f"field 'messages[{i}].content' must be a string or an array of parts",
        param=f"messages[{i}].content",
    )


def _chat_input(messages: list[Any], max_messages: int) -> tuple[str, list[dict[str, Any]]]:
    """The last user message as the input; earlier user / assistant turns as history (at most
    `max_messages` messages in all; their bytes are bounded by the body limit)."""
    if len(messages) > max_messages:
        raise ApiError(
            422,
            f"field 'messages' has {len(messages)} messages; the limit is {max_messages} "
            "(server.max_history_messages)",
            param="messages",
        )
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(422, f"field 'messages[{i}]' must be an object", param=f"messages[{i}]")
        role = m.get("role")
        if role not in ("system", "user", "assistant", "tool", "developer"):
            raise ApiError(
                422,
                f"field 'messages[{i}].role' must be system, user, assistant or tool, got {role!r}",
                param=f"messages[{i}].role",
            )
        turns.append({"role": role, "content": _content(m, i)})
    last_user = next((i for i in range(len(turns) - 1, -1, -1) if turns[i]["role"] == "user"), None)
    if last_user is None:
        raise ApiError(422, "field 'messages' needs at least one message with role 'user'", param="messages")
    history = [t for t in turns[:last_user] if t["role"] in ("user", "assistant")]
    return turns[last_user]["content"], history


def _session_header(request: Request) -> str | None:
    value = request.headers.get("x-session-id")
    return None if value is None else check_id(value, "X-Session-Id", what="header")


@endpoint("invoke")
async def chat_completions(request: Request, state: ServerState) -> Response:
    """POST /v1/chat/completions: `model` names an agent."""
    server = state.cfg.server
    body = await read_json(request, server.max_body_bytes)
    check_chat_params(body)  # n: 3, tools, max_tokens...: 400 naming it, never silently dropped
    agent: str = check_id(field(body, "model", str, required=True), "model")
    messages = field(body, "messages", list, required=True)
    stream = field(body, "stream", bool) or False
    session = id_field(body, "session_id") or _session_header(request)
    _agent(state, agent, "model")
    text, history = _chat_input(messages, server.max_history_messages)
    record = await _run(
        state,
        agent,
        text,
        session_id=session,
        user_id=id_field(body, "user"),
        version=await chosen_version(request, state, body),
        metadata=metadata_field(body, server.max_metadata_bytes),
        history=history,
        api_key=_caller_key(request, state),
    )
    failed = _failure_status(record)
    if failed is not None:
        return error_response(
            failed,
            record.error or "the interaction failed",
            type=str(record.metadata.get("error_kind", "error")),
            extra={"interaction_id": record.id, "trace_id": record.trace_id},
        )
    created = int(record.created_at)
    cid = f"chatcmpl-{record.id}"
    extra = {
        "interaction_id": record.id,
        "trace_id": record.trace_id,
        "session_id": record.session_id,
        "version": record.version,
        "status": record.status,
    }
    usage = {
        "prompt_tokens": record.input_tokens,
        "completion_tokens": record.output_tokens,
        "total_tokens": record.input_tokens + record.output_tokens,
    }
    headers = {**_ids(record), "X-Session-Id": record.session_id}
    if stream:
        return StreamingResponse(
            _sse(cid, created, agent, record.output, usage, extra),
            headers=headers,
            media_type="text/event-stream",
        )
    return json_response(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": agent,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": record.output},
                    "finish_reason": _finish_reason(record.status),
                }
            ],
            "usage": usage,
            "shipyard": extra,
        },
        headers=headers,
    )


async def _sse(
    cid: str, created: int, model: str, output: str, usage: dict[str, int], extra: dict[str, Any]
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        data = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **more,
        }
        return b"data: " + dumps(data) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    words = output.split(" ")
    for i in range(0, len(words), 8):
        piece = " ".join(words[i : i + 8])
        yield chunk({"content": piece if i == 0 else " " + piece})
    yield chunk({}, _finish_reason(str(extra.get("status"))), usage=usage, shipyard=extra)
    yield b"data: [DONE]\n\n"


async def _in_store(state: ServerState, ref: str) -> None:
    """Before feedback is attached: an interaction still in the journal is moved to the store now;
    503 (Retry-After) when the store cannot take it now."""
    try:
        if await state.journal.afind_pending(ref) is not None or not await asyncio.to_thread(
            state.store.find_interaction, ref
        ):
            await state.journal.flush()
    except Exception as e:  # the store cannot be reached: the record waits safely in the journal
        raise RetryLater(
            f"interaction {ref!r} cannot be looked up now (the store is unreachable: "
            f"{error_reason(e, 200).splitlines()[0]})",
            param="interaction_id",
        ) from None


@endpoint("invoke")
async def feedback(request: Request, state: ServerState) -> Response:
    """POST /v1/feedback"""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    ref = id_field(body, "interaction_id") or id_field(body, "trace_id")
    if not ref:
        raise ApiError(
            422, "send 'interaction_id' or 'trace_id' (from the invoke response)", param="interaction_id"
        )
    thumbs_raw = body.get("thumbs")
    thumbs: int | None
    if thumbs_raw is None:
        thumbs = None
    elif thumbs_raw in ("up", 1) and not isinstance(thumbs_raw, bool):
        thumbs = 1
    elif thumbs_raw in ("down", -1) and not isinstance(thumbs_raw, bool):
        thumbs = -1
    else:
        raise ApiError(
            422, f"field 'thumbs' must be 1, -1, 'up' or 'down', got {thumbs_raw!r}", param="thumbs"
        )
    score = number_field(body, "score")
    if score is not None and not SCORE_MIN <= score <= SCORE_MAX:
        raise ApiError(
            422,
            f"field 'score' is a satisfaction score from {SCORE_MIN:g} (worst) to {SCORE_MAX:g} (best), "
            f"got {body['score']!r}; for a thumb send 'thumbs' (1, -1, 'up' or 'down')",
            param="score",
        )
    comment = text_field(body, "comment", MAX_COMMENT_CHARS)
    if thumbs is None and score is None and comment is None:
        raise ApiError(422, "feedback needs at least one of 'thumbs', 'score' or 'comment'", param="thumbs")
    if comment is not None:  # kept like the interaction's own content (server.content_capture)
        comment = state.rt.mask.text(comment)
    await _in_store(state, ref)
    try:
        record = await asyncio.to_thread(state.store.record_feedback, ref, thumbs, score, comment)
    except NotFoundError as e:
        letter = state.journal.dead_letter_of(ref)
        message = e.message
        if letter is not None:
            message = (
                f"interaction {ref!r} was answered, but the store refused its record "
                f"({letter.error_type}), so it cannot take feedback; it is kept as dead letter "
                f"{letter.id} (`shipyard store dead-letters show {letter.id}`)"
            )
        raise ApiError(404, message, type="not_found_error", param="interaction_id") from None
    except ShipyardError:
        raise
    except Exception as e:  # the store cannot be used right now
        raise RetryLater(f"feedback cannot be stored now: {error_reason(e, 200).splitlines()[0]}") from None
    state.metrics.observe_feedback(record, thumbs, score)
    state.window.add_feedback(record.id, record.feedback)
    await _recall_trace(state, record)
    log_feedback(record)
    observe_feedback(state, record)  # negative feedback may make an incident (server/_incidents_api.py)
    return json_response(
        {"interaction_id": record.id, "trace_id": record.trace_id, "feedback": record.feedback}
    )


async def _recall_trace(state: ServerState, record: InteractionRecord) -> None:
    """Negative feedback keeps the trace even when sampling had dropped it."""
    rating = rating_of(record.feedback)
    held = state.rt.sampler.recall(record.id) if rating is not None and rating < 3 else None
    if held is not None:
        spans, otel_spans = held
        await asyncio.to_thread(state.store.write_spans, spans)
        export_spans(otel_spans)


# health and metrics ---------------------------------------------------------------------------------
READYZ_STORE_TIMEOUT_S = 2.0  # a probe's answer never waits on a database that does not answer


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is alive."""
    return json_response({"status": "ok"})


def _ungated(state: ServerState, agent: str) -> str | None:
    """What /readyz says of an agent whose production requests this server refuses (its current
    version has not passed the production gate it requires, and no deployment chooses another)."""
    parts = _PARTS.get(state)
    gate = parts.assigner.serving(agent) if parts is not None else None
    if gate is None or gate.serves or parts is None or parts.assigner.deployment(agent) is not None:
        return None
    return f"ungated: production requests to {gate.version} get 503 until it passes its production gate"


async def readyz(request: Request) -> Response:
    """GET /readyz: every agent loaded and no stop signal came (draining). The store is reported, not
    required: while it is unreachable the journal holds the records and answers keep flowing, so a
    load balancer keeps sending traffic (a replica that stops being ready would stop it fleet-wide)."""
    state = _state(request)
    try:
        store_ok = await asyncio.wait_for(asyncio.to_thread(state.store.ping), READYZ_STORE_TIMEOUT_S)
    except TimeoutError:
        store_ok = False
    ready = not state.load_errors and not state.draining
    agents = {a: state.load_errors.get(a) or _ungated(state, a) or "ok" for a in sorted(state.cfg.agents)}
    body = {
        "status": "draining" if state.draining else "ready" if ready else "not_ready",
        "store": "ok" if store_ok else "unreachable",
        "agents": agents,  # an ungated agent is reported, not unready: every replica runs the same version
        "journal_pending": state.journal.pending,
    }
    return json_response(body, 200 if ready else 503)


@endpoint("read")
async def metrics(request: Request, state: ServerState) -> Response:
    """GET /metrics: Prometheus text format."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


# admin ----------------------------------------------------------------------------------------------
def _since(request: Request) -> float | None:
    raw = request.query_params.get("since")
    if raw is None:
        return None
    try:
        return time.time() - parse_window(raw)
    except ValueError as e:
        raise ApiError(422, f"query parameter 'since': {e}", param="since") from None


def _window(request: Request, default: str = "15m") -> float:
    raw = request.query_params.get("window", default)
    try:
        return parse_window(raw)
    except ValueError as e:
        raise ApiError(422, f"query parameter 'window': {e}", param="window") from None


@endpoint("read")
async def admin_interactions(request: Request, state: ServerState) -> Response:
    """GET /admin/interactions"""
    q = request.query_params
    records = await asyncio.to_thread(
        state.store.list_interactions,
        q.get("agent"),
        q.get("version"),
        q.get("session_id"),
        q.get("status"),
        q.get("traffic_source"),
        _since(request),
        None,
        query_int(request, "limit", 50),
    )
    return json_response({"interactions": [r.to_dict() for r in records]})


@endpoint("read")
async def admin_interaction(request: Request, state: ServerState) -> Response:
    """GET /admin/interactions/{id}"""
    ref = request.path_params["id"]
    record = await _find(state, ref)
    if record is None:
        raise ApiError(404, f"no interaction with id or trace id {ref!r}", type="not_found_error", param="id")
    return json_response({"interaction": record.to_dict(spans=True), "tree": trace_tree_lines(record)})


async def _find(state: ServerState, ref: str) -> InteractionRecord | None:
    """An interaction by id or trace id, with its spans: from the journal while it is still on its
    way to the store (so it can be read as soon as its answer is sent), else from the store."""
    pending = await state.journal.afind_pending(ref)  # in a thread when it must search the file
    if pending is not None:
        return pending
    found: InteractionRecord | None = await asyncio.to_thread(state.store.find_interaction, ref, spans=True)
    return found


def _trace_summary(r: InteractionRecord) -> dict[str, Any]:
    return {
        "trace_id": r.trace_id,
        "interaction_id": r.id,
        "session_id": r.session_id,
        "agent": r.agent,
        "version": r.version,
        "status": r.status,
        "latency_ms": r.latency_ms,
        "cost_usd": r.cost_usd,
        "tool_calls": len(r.tool_calls),
        "llm_calls": len(r.llm_calls),
        "created_at": r.created_at,
        "traffic_source": r.traffic_source,
        "error": r.error,
    }


@endpoint("read")
async def admin_traces(request: Request, state: ServerState) -> Response:
    """GET /admin/traces"""
    q = request.query_params
    records = await asyncio.to_thread(
        state.store.list_interactions,
        q.get("agent"),
        q.get("version"),
        q.get("session_id"),
        q.get("status"),
        None,
        _since(request),
        None,
        query_int(request, "limit", 50),
    )
    return json_response({"traces": [_trace_summary(r) for r in records]})


@endpoint("read")
async def admin_trace(request: Request, state: ServerState) -> Response:
    """GET /admin/traces/{trace_id}"""
    ref = request.path_params["trace_id"]
    record = await _find(state, ref)
    if record is None:
        raise ApiError(404, f"no trace {ref!r}", type="not_found_error", param="trace_id")
    return json_response(
        {
            "trace": _trace_summary(record),
            "spans": [s.to_dict() for s in record.spans],
            "tree": trace_tree_lines(record),
        }
    )


@endpoint("read")
async def admin_alerts(request: Request, state: ServerState) -> Response:
    """GET /admin/alerts"""
    return json_response(
        {"status": state.alerts.status(), "rules": [s.to_dict() for s in state.alerts.states()]}
    )


@endpoint("read")
async def admin_kpis(request: Request, state: ServerState) -> Response:
    """GET /admin/kpis: KPIs of this window and the previous one, overall and per version, plus a
    time series of `points` buckets for charts."""
    window = _window(request)
    agent = request.query_params.get("agent")
    points = query_int(request, "points", 30, low=2, high=200)
    now = time.time()
    # one pass over the window's samples, in a worker thread: health checks never wait behind it
    numbers = await asyncio.to_thread(kpis_document, state.window, window, now, agent=agent, points=points)
    return json_response({"window_s": window, "now": now, "status": state.alerts.status(), **numbers})


@endpoint("read")
async def admin_versions(request: Request, state: ServerState) -> Response:
    """GET /admin/versions"""
    seen = {row["version"]: row for row in await asyncio.to_thread(state.store.list_agent_versions)}
    parts = _PARTS.get(state)
    gates = parts.assigner.gates() if parts is not None else {}
    agents: dict[str, Any] = {}
    for name in sorted(state.cfg.agents):
        if name in state.load_errors:
            agents[name] = {"error": state.load_errors[name], "versions": []}
            continue
        agents[name] = {
            "versions": [
                {
                    "id": v.id,
                    "label": v.label,
                    "hash": v.hash,
                    "current": i == 0,
                    "model": v.model.name,
                    "first_seen": (seen.get(v.id) or {}).get("first_seen"),
                    "last_seen": (seen.get(v.id) or {}).get("last_seen"),
                }
                for i, v in enumerate(state.rt.versions(name))
            ],
            # the current version's production gate where no deployment chooses one (gated, ungated,
            # overridden; rollout/_serving.py)
            "serving_gate": gates[name].to_dict() if name in gates else None,
        }
    return json_response({"agents": agents})


@endpoint("admin")
async def admin_keys(request: Request, state: ServerState) -> Response:
    """GET /admin/keys"""
    rows = await asyncio.to_thread(state.store.list_api_keys)
    return json_response({"keys": [public_key_row(r) for r in rows]})


@endpoint("admin")
async def admin_create_key(request: Request, state: ServerState) -> Response:
    """POST /admin/keys {role, name?}: the key is in the answer, and nowhere else ever again."""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    role = field(body, "role", str, required=True)
    if role not in ROLES:
        raise ApiError(422, f"field 'role' must be one of {', '.join(ROLES)}, got {role!r}", param="role")
    created = await asyncio.to_thread(create_key, state.store, role, id_field(body, "name"))
    state.keys.remember({**created, "hash": hash_key(created["key"]), "revoked_at": None})
    log_event("api_key_created", key_id=created["id"], prefix=created["prefix"], role=role)
    return json_response(created, 201)


@endpoint("admin")
async def admin_revoke_key(request: Request, state: ServerState) -> Response:
    """DELETE /admin/keys/{ref}"""
    row = await asyncio.to_thread(state.store.revoke_api_key, request.path_params["ref"])
    state.keys.remember(row)  # refused from now on here; other replicas within AUTH_REFRESH_S
    log_event("api_key_revoked", key_id=row["id"], prefix=row["prefix"])
    return json_response(public_key_row(row))


async def openapi(request: Request) -> Response:
    """GET /openapi.json"""
    return json_response(openapi_document(sorted(_state(request).cfg.agents)))


ROUTES = [
    Route("/v1/agents/{agent}/invoke", invoke, methods=["POST"]),
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/feedback", feedback, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/admin/interactions", admin_interactions, methods=["GET"]),
    Route("/admin/interactions/{id}", admin_interaction, methods=["GET"]),
    Route("/admin/traces", admin_traces, methods=["GET"]),
    Route("/admin/traces/{trace_id}", admin_trace, methods=["GET"]),
    Route("/admin/alerts", admin_alerts, methods=["GET"]),
    Route("/admin/kpis", admin_kpis, methods=["GET"]),
    Route("/admin/versions", admin_versions, methods=["GET"]),
    Route("/admin/keys", admin_keys, methods=["GET"]),
    Route("/admin/keys", admin_create_key, methods=["POST"]),
    Route("/admin/keys/{ref}", admin_revoke_key, methods=["DELETE"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    *dashboard_routes(),  # /dashboard, /dashboard/traces/{id}, /admin/api/dashboard/...
    *rollout_routes(),  # /admin/rollouts/..., /admin/experiments/... (server/_rollout_api.py)
    *flag_routes(),  # /admin/flags/... (server/_flags_api.py)
    *cost_routes(),  # /admin/cost/report, /admin/api/dashboard/cost (server/_cost_api.py)
    *budget_routes(),  # /admin/budgets/... (server/_budgets_api.py)
    *config_routes(),  # /admin/config, /admin/config/reload (server/_reload.py)
    *k8s_routes(),  # /k8s/argo/analysis, /k8s/flagger/{hook} (server/_k8s_api.py)
    *cache_routes(),  # /admin/cache, /admin/cache/invalidate (server/_cache_api.py)
    *incident_routes(),  # /v1/incidents, /admin/incidents/..., /dashboard/incidents (server/_incidents_api.py)
]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(
            404, f"no route {request.url.path!r}; see /openapi.json", type="not_found_error"
        )
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        answer = error_response(
            405,
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}",
            type="invalid_request_error",
        )
        answer.headers["Allow"] = allowed
        return answer
    answer = error_response(exc.status_code, str(exc.detail))
    answer.headers.update(exc.headers or {})
    return answer


def _allowed_methods(request: Request) -> str:
    """The methods some route takes on this path (Starlette's own `Allow` names one route's only)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def create_app(cfg: ShipyardConfig, **state_options: Any) -> Starlette:
    """The ASGI app for a project. `state_options` go to `ServerState` (store, journal_fsync,
    log_stream, log_level, configure_logs, host, no_auth)."""
    state = ServerState(cfg, **state_options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    guard = Middleware(
        RequestGuard,  # Host allow-list, JSON-only writes, no cross-origin writes (server/_guard.py)
        allow=HostAllowList(state.host, cfg.server.allowed_hosts),
        open_mode=lambda: state.keys.open,
    )
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(ErrorBoundary), guard],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},  # the rest: ErrorBoundary (server/_errors.py)
    )
    app.state.shipyard = state
    return app
