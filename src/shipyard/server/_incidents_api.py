"""Incidents in the server: the complaint API, the admin API, the review queue page, and the watcher
that turns the server's traffic into incidents (loop/_incidents.py).

    POST /v1/incidents                      a complaint about an interaction (role invoke)
    GET  /admin/incidents                   list (role read): ?agent=&state=&review=1&limit=
    GET  /admin/incidents/{id}              one, with provenance and its interaction (role read)
    POST /admin/incidents/{id}/review       {action: accept|edit|reject, expectation?, note?, by?} (admin)
    POST /admin/incidents/{id}/triage       {state, note?, by?} (admin)
    GET  /dashboard/incidents               the review queue page

The watcher gets every record from the record steps (server/_steps.py: after the journal, never
waiting; the records of one turn of the event loop together, right after their responses are sent:
`RecordHandover`), negative feedback from POST /v1/feedback, and alert transitions from the alert engine.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from shipyard.errors import ConflictError
from shipyard.observe import log_event
from shipyard.server._http import (
    MAX_COMMENT_CHARS,
    ApiError,
    endpoint,
    field,
    id_field,
    json_response,
    query_int,
    read_json,
    text_field,
)
from shipyard.store import INCIDENT_STATES, InteractionRecord

REVIEW_ACTIONS = ("accept", "edit", "reject")


# the watcher ---------------------------------------------------------------------------------------
async def start_incidents(state: Any) -> list[asyncio.Task[None]]:
    """Start the incident watcher of a server (`state.incidents`); its task closes it on stop."""
    from shipyard.loop import IncidentWatcher

    watcher = IncidentWatcher(state.cfg.incidents, state.store)
    handover = RecordHandover(watcher)
    state.incidents = watcher
    state.incident_handover = handover

    def on_alert(transition: Any) -> None:
        rule = next((st.rule for st in state.alerts.states() if st.rule.name == transition.rule), None)
        watcher.alert(transition, getattr(rule, "agent", None))

    listeners = getattr(state.alerts, "listeners", None)
    if listeners is not None:
        listeners.append(on_alert)

    async def hold() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            handover.flush()  # the last answers' records
            state.incidents = state.incident_handover = None
            await asyncio.to_thread(watcher.close)

    return [asyncio.get_running_loop().create_task(hold())]


class RecordHandover:
    """The records of one turn of the event loop, handed to the watcher together, by a callback the
    loop runs next (after that turn's responses were sent, before it reads new requests).

    A put that finds the watcher's thread waiting wakes it: a GIL hand-off and two context switches
    per record, the costliest record step of a loaded server (an exact-cache hit paid ~9% of its
    server CPU for it). Put back to back, only the first of a turn's records can find it waiting.
    Off the event loop (a thread), a record is handed over at once.

    Args:
        watcher: the incident watcher (loop/_incidents.py).
    """

    __slots__ = ("_loop", "_records", "watcher")

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        self._records: list[InteractionRecord] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, record: InteractionRecord) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or (self._records and loop is not self._loop):
            self.watcher.submit(record)
            return
        if not self._records:
            self._loop = loop
            loop.call_soon(self.flush)
        self._records.append(record)

    def flush(self) -> None:
        """Hand every waiting record to the watcher now."""
        records, self._records = self._records, []
        for record in records:
            self.watcher.submit(record)


def observe_record(state: Any, record: InteractionRecord) -> None:
    """A record step: hand the record to the watcher (a queue put right after the response, never
    waits; see RecordHandover)."""
    watcher = getattr(state, "incidents", None)
    if watcher is not None:
        watcher.settings = state.cfg.incidents  # a reloaded config's rules apply from now on
        handover = getattr(state, "incident_handover", None)
        if handover is not None and handover.watcher is watcher:
            handover.add(record)
        else:
            watcher.submit(record)


def observe_feedback(state: Any, record: InteractionRecord) -> None:
    """Feedback was stored on `record`: negative feedback (and feedback rules) may make an incident."""
    watcher = getattr(state, "incidents", None)
    if watcher is not None:
        watcher.feedback(record)


def _incident_json(inc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inc.items() if k != "tokens"}


async def _stored_interaction(state: Any, ref: str) -> InteractionRecord:
    """The interaction `ref` names, from the store (moving it there from the journal first)."""
    found = await asyncio.to_thread(state.store.find_interaction, ref)
    if found is None and state.journal is not None:
        await state.journal.flush()
        found = await asyncio.to_thread(state.store.find_interaction, ref)
    if found is None:
        raise ApiError(
            404,
            f"no interaction with id or trace id {ref!r}; the ids are in the invoke response",
            type="not_found_error",
            param="interaction_id",
        )
    return found


# routes ---------------------------------------------------------------------------------------------
@endpoint("invoke")
async def complain(request: Request, state: Any) -> Response:
    """POST /v1/incidents"""
    from shipyard.loop import complaint_signal

    body = await read_json(request, state.cfg.server.max_body_bytes)
    ref = id_field(body, "interaction_id") or id_field(body, "trace_id")
    if not ref:
        raise ApiError(
            422, "send 'interaction_id' or 'trace_id' (from the invoke response)", param="interaction_id"
        )
    comment = text_field(body, "comment", MAX_COMMENT_CHARS)
    if not comment or not comment.strip():
        raise ApiError(422, "field 'comment' is required: say what went wrong", param="comment")
    expected = text_field(body, "expected", MAX_COMMENT_CHARS)
    by = id_field(body, "by") or "complaint"
    mask = state.rt.mask.text if state.rt is not None else (lambda t: t)
    comment = mask(comment)
    expected = mask(expected) if expected else None
    record = await _stored_interaction(state, ref)
    signal = complaint_signal(record, comment, expected, by=by)
    hit = await asyncio.to_thread(
        state.store.record_incident, signal, min_similarity=state.cfg.incidents.similarity
    )
    inc = await asyncio.to_thread(state.store.get_incident, hit.incident_id, occurrences=0)
    log_event("incident_complaint", incident_id=inc["id"], interaction_id=record.id, created=hit.created)
    return json_response(
        {
            "incident_id": inc["id"],
            "created": hit.created,
            "state": inc["state"],
            "count": inc["count"],
            "interaction_id": record.id,
            "trace_id": record.trace_id,
        },
        201 if hit.created else 200,
    )


@endpoint("read")
async def list_incidents(request: Request, state: Any) -> Response:
    """GET /admin/incidents"""
    q = request.query_params
    states = [s for s in (q.get("state") or "").split(",") if s]
    bad = [s for s in states if s not in INCIDENT_STATES]
    if bad:
        raise ApiError(
            422,
            f"query parameter 'state': unknown {bad[0]!r}; use {', '.join(INCIDENT_STATES)}",
            param="state",
        )
    review = q.get("review")
    if review not in (None, "", "0", "1", "true", "false"):
        raise ApiError(422, f"query parameter 'review' must be 1 or 0, got {review!r}", param="review")
    limit = query_int(request, "limit", 100, low=1, high=1000)
    await asyncio.to_thread(_sync_fixed, state)
    found = await asyncio.to_thread(
        state.store.list_incidents,
        q.get("agent") or None,
        states or None,
        review=None if review in (None, "") else review in ("1", "true"),
        limit=limit,
    )
    return json_response({"incidents": [_incident_json(i) for i in found]})


def _sync_fixed(state: Any) -> None:
    """Mark fixed the in-suite incidents whose case has passed since (loop/_promote.py)."""
    from shipyard.loop import sync_fixed

    try:
        sync_fixed(state.store, state.cfg)
    except Exception as e:  # the list is still worth answering with
        log_event("incident_sync_failed", level="warning", error=f"{type(e).__name__}: {e}"[:300])


async def _detail(state: Any, ref: str) -> dict[str, Any]:
    inc = await asyncio.to_thread(state.store.get_incident, ref)
    out = _incident_json(inc)
    record = (
        await asyncio.to_thread(state.store.get_interaction, inc["interaction_id"])
        if inc["interaction_id"]
        else None
    )
    out["interaction"] = (
        {
            "id": record.id,
            "trace_id": record.trace_id,
            "status": record.status,
            "version": record.version,
            "input": record.input,
            "output": record.output,
            "error": record.error,
            "feedback": record.feedback,
            "tool_calls": [
                {
                    "name": t.name,
                    "arguments": t.arguments,
                    "status": t.status,
                    "result": t.result,
                    "error": t.error,
                }
                for t in record.tool_calls
            ],
        }
        if record is not None
        else None
    )
    return out


@endpoint("read")
async def show_incident(request: Request, state: Any) -> Response:
    """GET /admin/incidents/{id}"""
    return json_response(await _detail(state, request.path_params["id"]))


def _expectation(body: dict[str, Any], by: str) -> dict[str, Any] | None:
    raw = body.get("expectation")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(
            422,
            "field 'expectation' must be an object {expected?, assert?, trajectory?}",
            param="expectation",
        )
    unknown = set(raw) - {"expected", "assert", "trajectory"}
    if unknown:
        raise ApiError(
            422, f"field 'expectation' has unknown keys {sorted(unknown)}; use expected, assert, trajectory",
            param="expectation",
        )  # fmt: skip
    import time

    return {**raw, "by": by, "at": time.time()}


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = field(body, name, str, required=True)
    if value not in choices:
        raise ApiError(422, f"field {name!r} must be one of {', '.join(choices)}, got {value!r}", param=name)
    return str(value)


async def _change_incident(change: functools.partial[dict[str, Any]]) -> dict[str, Any]:
    """Run a state change of an incident off the loop; a concurrent change is a 409."""
    try:
        return await asyncio.to_thread(change)
    except ConflictError as e:
        raise ApiError(409, e.message, type="conflict_error") from None


@endpoint("admin")
async def review_incident(request: Request, state: Any) -> Response:
    """POST /admin/incidents/{id}/review"""
    from shipyard.loop import review

    body = await read_json(request, state.cfg.server.max_body_bytes)
    action = _choice(body, "action", REVIEW_ACTIONS)
    by = id_field(body, "by") or "reviewer"
    note = text_field(body, "note", MAX_COMMENT_CHARS) or ""
    expectation = _expectation(body, by)
    ref = request.path_params["id"]
    inc = await _change_incident(
        functools.partial(review, state.store, ref, action, by=by, expectation=expectation, note=note)
    )
    log_event("incident_reviewed", incident_id=inc["id"], action=action, by=by, state=inc["state"])
    return json_response(_incident_json(inc))


@endpoint("admin")
async def triage_incident(request: Request, state: Any) -> Response:
    """POST /admin/incidents/{id}/triage"""
    body = await read_json(request, state.cfg.server.max_body_bytes)
    to = _choice(body, "state", INCIDENT_STATES)
    by = id_field(body, "by") or "admin"
    note = text_field(body, "note", MAX_COMMENT_CHARS) or ""
    ref = request.path_params["id"]
    inc = await _change_incident(
        functools.partial(state.store.transition_incident, ref, to, by=by, note=note)
    )
    return json_response(_incident_json(inc))


async def incidents_page(request: Request) -> Response:
    """GET /dashboard/incidents"""
    from shipyard.server._dashboard import _asset

    nonce = secrets.token_urlsafe(16)
    boot = json.dumps({"page": "incidents", "api": "/admin/incidents"})
    html = (
        _asset("dashboard.html")
        .replace("<title>Shipyard · health</title>", "<title>Shipyard · review queue</title>")
        .replace("/*__CSS__*/", _asset("dashboard.css") + _asset("incidents.css"))
        .replace("/*__JS__*/", _asset("incidents.js"))
        .replace("__BOOT__", boot.replace("<", "\\u003c").replace("&", "\\u0026"))
        .replace("__NONCE__", nonce)
    )
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def incident_routes() -> list[BaseRoute]:
    return [
        Route("/v1/incidents", complain, methods=["POST"]),
        Route("/admin/incidents", list_incidents, methods=["GET"]),
        Route("/admin/incidents/{id}", show_incident, methods=["GET"]),
        Route("/admin/incidents/{id}/review", review_incident, methods=["POST"]),
        Route("/admin/incidents/{id}/triage", triage_incident, methods=["POST"]),
        Route("/dashboard/incidents", incidents_page, methods=["GET"]),
    ]


def incident_openapi_paths() -> dict[str, Any]:
    """The OpenAPI paths of `incident_routes()` (merged into the server's document)."""
    obj: dict[str, Any] = {"type": "object"}

    def ok(description: str = "OK") -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": obj}}}

    def err(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    auth = {"401": err("missing or unknown API key"), "403": err("the key's role does not allow this")}
    body_errors = {
        "400": err("malformed JSON"),
        "413": err("body over the size limit"),
        "422": err("a field is wrong"),
    }
    ident = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    text = {"type": "string"}
    complaint = {
        "type": "object",
        "required": ["comment"],
        "properties": {
            "interaction_id": text,
            "trace_id": text,
            "comment": {**text, "description": "what went wrong"},
            "expected": {**text, "description": "what the answer should have been (a human correction)"},
            "by": text,
        },
    }
    expectation = {
        "type": "object",
        "properties": {"expected": text, "assert": {"type": "array", "items": obj}, "trajectory": obj},
    }
    review_req = {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {"type": "string", "enum": list(REVIEW_ACTIONS)},
            "expectation": expectation,
            "note": text,
            "by": text,
        },
    }
    triage_req = {
        "type": "object",
        "required": ["state"],
        "properties": {"state": {"type": "string", "enum": list(INCIDENT_STATES)}, "note": text, "by": text},
    }
    secured: dict[str, Any] = {"security": [{"apiKey": []}]}
    return {
        "/v1/incidents": {
            "post": {
                "summary": "Complain about an interaction: it becomes (or joins) an incident",
                **secured,
                "requestBody": {"required": True, "content": {"application/json": {"schema": complaint}}},
                "responses": {
                    "201": ok("a new incident"),
                    "200": ok("grouped onto an existing incident"),
                    **auth,
                    **body_errors,
                    "404": err("no such interaction"),
                    "503": err("the store cannot be reached now"),
                },
            }
        },
        "/admin/incidents": {
            "get": {
                "summary": "Incidents, most recently seen first",
                **secured,
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("agent", "state", "review")
                ]
                + [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
                "responses": {"200": ok(), **auth, "422": err("a query parameter is wrong")},
            }
        },
        "/admin/incidents/{id}": {
            "get": {
                "summary": "One incident with its provenance and interaction",
                **secured,
                "parameters": ident,
                "responses": {
                    "200": ok(),
                    **auth,
                    "404": err("no such incident"),
                    "422": err("ambiguous id"),
                },
            }
        },
        "/admin/incidents/{id}/review": {
            "post": {
                "summary": "Accept, edit the expectation of, or reject a queued incident",
                **secured,
                "parameters": ident,
                "requestBody": {"required": True, "content": {"application/json": {"schema": review_req}}},
                "responses": {
                    "200": ok(),
                    **auth,
                    **body_errors,
                    "404": err("no such incident"),
                    "409": err("changed meanwhile"),
                },
            }
        },
        "/admin/incidents/{id}/triage": {
            "post": {
                "summary": "Move an incident along its lifecycle",
                **secured,
                "parameters": ident,
                "requestBody": {"required": True, "content": {"application/json": {"schema": triage_req}}},
                "responses": {
                    "200": ok(),
                    **auth,
                    **body_errors,
                    "404": err("no such incident"),
                    "409": err("changed meanwhile"),
                },
            }
        },
        "/dashboard/incidents": {
            "get": {
                "summary": "The review queue page",
                "responses": {
                    "200": {
                        "description": "HTML page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
