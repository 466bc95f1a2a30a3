"""Rollouts on the server: the assigner and the controller's periodic tick, the admin API
(`/admin/rollouts/...`, `/admin/experiments/...`) and the admin-only choice of a version (`X-Shipyard-Version`
header or `version` field).

Reads need the `read` role, changes the `admin` role. Errors are JSON naming the field: 404 unknown
agent or version, 409 a lost race (someone changed the rollout since it was read), 422 refused input
(a version without a passing production gate, overlapping rollouts, a weight outside 0-100, promoting
a failed canary). Canaries, blue-green and experiments take `"override_gate": "REASON"`: an admin
starts one without a passing gate, and the reason is recorded with the actor (the `by` field, and the
prefix of the key that made the request).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.errors import ConflictError, GateFailed, NotFoundError, ShipyardError
from shipyard.server._auth import grants, prefix_of, presented_key
from shipyard.server._dashboard import DashboardPanel, register_panel
from shipyard.server._http import (
    ApiError,
    Handler,
    check_id,
    endpoint,
    error_response,
    field,
    id_field,
    json_response,
    number_field,
    read_json,
)

if TYPE_CHECKING:
    from shipyard.observe import LoopSupervisor
    from shipyard.rollout import RolloutAssigner, RolloutController
    from shipyard.server._state import ServerState

PREVIEW_HEADER = "x-shipyard-version"
TICK_S = 5.0  # how often the server ticks every running rollout


@dataclass(slots=True)
class Rollouts:
    """A server's rollout parts."""

    assigner: RolloutAssigner
    controller: RolloutController


_PARTS: weakref.WeakKeyDictionary[Any, Rollouts] = weakref.WeakKeyDictionary()


def rollouts(state: ServerState) -> Rollouts:
    found = _PARTS.get(state)
    if found is None:
        raise ApiError(503, "rollouts are not started on this server", type="service_unavailable")
    return found


async def start_rollouts(state: ServerState) -> list[asyncio.Task[None]]:
    """Install the assigner on the runtime and start its refresh and the controller's tick loop.
    Called once from `ServerState.start`; returns the background tasks (cancelled on stop)."""
    from shipyard.rollout import REDIS_ENV, RolloutAssigner, RolloutController, eval_gate

    redis_url = os.environ.get(REDIS_ENV)
    loop = asyncio.get_running_loop()
    assigner = RolloutAssigner(
        state.store,
        known_versions=lambda agent: (v.id for v in state.rt.versions(agent)),
        redis_url=redis_url,
        agents=lambda: [a for a in state.cfg.agents if a not in state.load_errors],
        require_gate=require_gate(state.cfg.server.require_gate, state.host),
    )
    await asyncio.to_thread(assigner.refresh)
    state.rt.assigner = assigner
    for agent in sorted(state.cfg.agents):
        gate = assigner.serving(agent)
        if gate is not None and not gate.gated:
            warn_ungated(gate)

    def changed(agent: str) -> None:  # the controller changed a deployment: refresh at once
        loop.call_soon_threadsafe(assigner.notify)

    controller = RolloutController(
        state.store,
        # through `state.rt` and `state.cfg` at each use: a config reload swaps them (server/_reload.py)
        lambda agent, ref: state.rt.resolve_version(agent, ref).id,
        redis_url=redis_url,
        eval_gate=lambda agent, version, suites: eval_gate(state.cfg, state.store)(agent, version, suites),
        on_change=changed,
        shadow_max_age_s=lambda: state.cfg.shadow.require_before_canary_s,
    )
    _PARTS[state] = Rollouts(assigner, controller)
    register_panel(DashboardPanel("rollouts", "Rollouts", _deployments_panel))
    register_panel(DashboardPanel("serving-gates", "Production gate of each served version", _serving_panel))
    register_panel(DashboardPanel("rollout-decisions", "Rollout decisions", _decisions_panel))
    return [
        loop.create_task(assigner.run(loops=state.loops)),
        loop.create_task(_tick_loop(controller, state.loops)),
    ]


def require_gate(setting: bool | None, host: str) -> bool | None:
    """`server.require_gate` as this server applies it (see rollout/_serving.py): on anything but
    loopback it is always on, and turning it off there is refused, like `--no-auth`."""
    from shipyard.server._guard import is_loopback

    if is_loopback(host):
        return setting
    if setting is False:
        raise ShipyardError(
            f"server.require_gate: false serves ungated versions as production traffic, which is allowed "
            f"on loopback only, not on {host}",
            hint="remove server.require_gate from shipyard.yaml, or bind 127.0.0.1",
        )
    return True


def warn_ungated(gate: Any) -> None:
    """One warning line naming an agent's current version that has no passed production gate: what
    its production traffic gets (refused where the gate is required, served here otherwise)."""
    from shipyard.observe import log_event

    if gate.required:
        said = "production requests to it are refused (503) until it passes or an admin overrides the gate"
    else:
        said = "served ungated on this loopback development server (server.require_gate is not on)"
    log_event(
        "version_ungated",
        level="warning",
        agent=gate.agent,
        version=gate.version,
        gate=gate.refused,
        required=gate.required,
        message=f"{gate.version} has not passed its production gate: {said}",
    )


def _short(version: str | None) -> str:
    return (version or "-").split("@", 1)[-1]


async def _deployments_panel(state: ServerState) -> dict[str, Any]:
    """Each agent's deployment: what is stable, what is being rolled out, and how far."""
    rows = await asyncio.to_thread(state.store.list_deployments)
    return {
        "columns": ["agent", "strategy", "state", "stable", "candidate", "candidate weight", "step", "gate"],
        "rows": [
            [
                r["agent"],
                r.get("strategy") or "none",
                r.get("state") or "-",
                _short(r.get("stable_version")),
                _short(r.get("candidate_version")),
                f"{r.get('weight') or 0}%",
                r.get("step") if r.get("candidate_version") else "-",
                _gate_cell(r),
            ]
            for r in rows
        ],
        "note": None if rows else "no deployments yet: `shipyard deploy AGENT VERSION`",
    }


def _serving_panel(state: ServerState) -> dict[str, Any]:
    """Each agent's current configured version, and whether it may take production traffic where
    no deployment chooses a version (rollout/_serving.py): gated, UNGATED, or OVERRIDDEN."""
    gates = rollouts(state).assigner.gates()
    rows = []
    for agent in sorted(state.cfg.agents):
        gate = gates.get(agent)
        if gate is None:
            rows.append([agent, "-", "-", "not read yet", "-"])
            continue
        if gate.refused is None:
            said = f"passed (run {str(gate.run_id)[:8]})"
        elif gate.override is not None:
            said = f"OVERRIDDEN by {gate.override.get('by')}: {gate.override.get('reason')}"
        else:
            said = f"UNGATED: {gate.refused}"
        required = f"yes ({gate.why_required})" if gate.required else "no (loopback development server)"
        rows.append([agent, _short(gate.version), required, said, "yes" if gate.serves else "REFUSED (503)"])
    return {
        "columns": ["agent", "current version", "gate required", "production gate", "serves production"],
        "rows": rows,
        "note": None,
    }


def _gate_cell(row: dict[str, Any]) -> str:
    """How the candidate got its traffic: the gate run it passed, or the override that let it in."""
    if not row.get("candidate_version"):
        return "-"
    gate = (row.get("config") or {}).get("gate") or {}
    override = gate.get("override")
    if override:
        return f"OVERRIDDEN by {override.get('by')}: {override.get('reason')}"
    runs = [str(r)[:8] for r in (gate.get("runs") or {}).values() if r]
    return f"passed (run {', '.join(runs)})" if runs else "-"


async def _decisions_panel(state: ServerState) -> dict[str, Any]:
    """The latest rollout decisions with the numbers they were made on (`shipyard rollout status`
    shows every one)."""

    def latest() -> list[dict[str, Any]]:
        found = [
            d
            for dep in state.store.list_deployments()
            for d in state.store.rollout_decisions(dep["agent"], limit=10)
        ]
        return sorted(found, key=lambda d: str(d.get("created_at")), reverse=True)[:10]

    rows = []
    for d in await asyncio.to_thread(latest):
        numbers = d.get("numbers") or {}
        analysis = numbers.get("analysis") or {}
        score = analysis.get("score")
        reasons = d.get("reasons") or []
        rows.append(
            [
                str(d.get("created_at"))[:19],
                d.get("agent"),
                _short(d.get("candidate")),
                d.get("action"),
                d.get("verdict") or "-",
                f"{score:.0f}" if isinstance(score, int | float) else "-",
                reasons[0] if reasons else "",
            ]
        )
    return {"columns": ["when", "agent", "candidate", "action", "verdict", "score", "why"], "rows": rows}


async def _tick_loop(controller: RolloutController, loops: LoopSupervisor) -> None:
    """Tick every running rollout every TICK_S. A failed tick (say, the store is unreachable) is
    logged, counted and alerted when it keeps failing (`LoopSupervisor`); the next tick tries again."""
    await loops.every("canary_ticks", lambda: TICK_S, lambda: asyncio.to_thread(controller.tick_all))


async def chosen_version(request: Request, state: ServerState, body: dict[str, Any]) -> str | None:
    """The version the caller chose, by the body field `version` or the `X-Shipyard-Version` header
    (previews of a candidate or green); None when neither is sent (the rollout assigns one).

    Choosing a version is an admin capability however it is asked for: any other role gets 403
    naming the field, before the agent runs. Everyone else gets what the deployment serves.
    """
    from_body = id_field(body, "version")
    from_header = (request.headers.get(PREVIEW_HEADER) or "").strip()
    if from_header:
        check_id(from_header, "X-Shipyard-Version", what="header")
    if from_body and from_header and from_body != from_header:
        raise ApiError(
            422,
            f"field 'version' ({from_body!r}) and header X-Shipyard-Version ({from_header!r}) differ; send one",
            param="version",
        )
    wanted = from_body or from_header or None
    if wanted is None:
        return None
    role = await state.keys.check(request.headers, "invoke")
    if not grants(role, "admin"):
        param = "version" if from_body else "X-Shipyard-Version"
        raise ApiError(
            403,
            f"choosing a version ({'field' if from_body else 'header'} {param!r}) needs a key with role "
            f"admin; this key has role {role!r}. Leave it out: the deployment picks the version",
            type="permission_error",
            param=param,
        )
    return wanted


# the admin API ---------------------------------------------------------------------------------
def _endpoint(role: str, fn: Callable[[Request, ServerState, RolloutController], Awaitable[Any]]) -> Handler:
    """A rollout route: `endpoint` checks the key and the parameters; the rollout's own errors are
    answered here (409 a lost race, 404 an unknown version, 422 a failed gate or refused input)."""

    async def handler(request: Request, state: ServerState) -> Response:
        try:
            out = await fn(request, state, rollouts(state).controller)
        except ConflictError as e:
            return error_response(409, e.message, type="conflict_error")
        except NotFoundError as e:
            return error_response(404, e.message, type="not_found_error", param="version")
        except GateFailed as e:
            return error_response(422, str(e), type="gate_failed")
        except ShipyardError as e:
            return error_response(422, str(e))
        return out if isinstance(out, Response) else json_response(out)

    handler.__name__ = fn.__name__
    return endpoint(role)(handler)


async def _body(request: Request, state: ServerState) -> dict[str, Any]:
    if not await request.body():
        return {}
    return await read_json(request, state.cfg.server.max_body_bytes)


def _agent(request: Request, state: ServerState) -> str:
    agent: str = request.path_params["agent"]
    if agent not in state.cfg.agents:
        known = ", ".join(sorted(state.cfg.agents)) or "none"
        raise ApiError(
            404, f"no agent named {agent!r} (agents: {known})", type="not_found_error", param="agent"
        )
    return agent


def _actor(body: dict[str, Any], request: Request) -> str:
    """Who acts: the `by` field (else `api:HOST`), and the prefix of the key that made the request,
    since `by` is only what the caller says."""
    who = field(body, "by", str) or f"api:{request.client.host if request.client else 'unknown'}"
    key = presented_key(request.headers)
    prefix = prefix_of(key) if key else None
    return f"{who} (key {prefix})" if prefix else who


def _override(body: dict[str, Any]) -> str | None:
    """The body's `override_gate` reason (None: no override); 422 naming the field when empty."""
    from shipyard.rollout import override_reason

    try:
        return override_reason(field(body, "override_gate", str))
    except ShipyardError as e:
        raise ApiError(422, str(e), param="override_gate") from None


def _weight(body: dict[str, Any], name: str) -> int | None:
    value = number_field(body, name)
    if value is None:
        return None
    if value != int(value) or not 0 <= value <= 100:
        raise ApiError(
            422, f"field {name!r} must be a whole percent from 0 to 100, got {value!r}", param=name
        )
    return int(value)


async def _status(agent: str, ctl: RolloutController, last: int = 10) -> dict[str, Any]:
    dep = await asyncio.to_thread(ctl.get, agent)
    decisions = await asyncio.to_thread(ctl.decisions, agent, last)
    # the admin's override of the production gate that let the candidate in (None: its gate passed)
    override = dep.gate_override if dep.active else None
    return {"deployment": dep.to_dict(), "gate_override": override, "decisions": decisions}


async def list_rollouts(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """GET /admin/rollouts"""
    rows = await asyncio.to_thread(ctl.store.list_deployments)
    from shipyard.rollout import Deployment

    gates = rollouts(state).assigner.gates()
    return {
        "deployments": [Deployment.from_row(r).to_dict() for r in rows],
        # each agent's current version where no deployment chooses one: gated, ungated, overridden
        "serving": {agent: gate.to_dict() for agent, gate in sorted(gates.items())},
    }


async def override_gate(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """POST /admin/rollouts/{agent}/override-gate {override_gate, version?, by?}: let the current
    (or named) configured version take production traffic without a passing production gate."""
    from shipyard.rollout import override_serving

    agent = _agent(request, state)
    body = await _body(request, state)
    reason = _override(body)
    if reason is None:
        raise ApiError(422, "field 'override_gate' (the reason) is required", param="override_gate")
    version = field(body, "version", str)
    actor = _actor(body, request)
    decision = await asyncio.to_thread(lambda: override_serving(ctl, agent, version, reason, actor=actor))
    parts = rollouts(state)
    await asyncio.to_thread(parts.assigner.refresh)  # this replica serves it at once
    gate = parts.assigner.serving(agent)
    return {"decision": decision, "serving": gate.to_dict() if gate else None}


async def get_rollout(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """GET /admin/rollouts/{agent}"""
    return await _status(_agent(request, state), ctl)


async def deploy(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """POST /admin/rollouts/{agent}/deploy {version}"""
    agent = _agent(request, state)
    body = await _body(request, state)
    version = field(body, "version", str, required=True)
    await asyncio.to_thread(lambda: ctl.deploy(agent, version, actor=_actor(body, request)))
    return await _status(agent, ctl)


async def canary(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """POST /admin/rollouts/{agent}/canary {version, steps?, min_interactions?, min_duration_s?, dry_run?}"""
    agent = _agent(request, state)
    body = await _body(request, state)
    version = field(body, "version", str, required=True)
    steps = field(body, "steps", list) or [5, 25, 50, 100]
    for i, w in enumerate(steps):
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= 100:
            raise ApiError(
                422,
                f"field 'steps[{i}]' must be a whole percent from 1 to 100, got {w!r}",
                param=f"steps[{i}]",
            )
    min_n = number_field(body, "min_interactions")
    min_s = number_field(body, "min_duration_s")
    override = _override(body)
    await asyncio.to_thread(
        lambda: ctl.start_canary(
            agent,
            version,
            steps=steps,
            min_interactions=int(min_n) if min_n is not None else 50,
            min_duration_s=min_s if min_s is not None else 60.0,
            dry_run=bool(field(body, "dry_run", bool)),
            gate_suites=field(body, "gate_suites", list) or [],
            actor=_actor(body, request),
            override_gate=override,
        )
    )
    return await _status(agent, ctl)


async def blue_green(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """POST /admin/rollouts/{agent}/blue-green {version, promote_after_s?}"""
    agent = _agent(request, state)
    body = await _body(request, state)
    version = field(body, "version", str, required=True)
    after = number_field(body, "promote_after_s")
    actor, override = _actor(body, request), _override(body)
    await asyncio.to_thread(
        lambda: ctl.start_blue_green(
            agent, version, promote_after_s=after, actor=actor, override_gate=override
        )
    )
    return await _status(agent, ctl)


def _action(name: str) -> Callable[[Request, ServerState, RolloutController], Awaitable[Any]]:
    async def act(request: Request, state: ServerState, ctl: RolloutController) -> Any:
        agent = _agent(request, state)
        body = await _body(request, state)
        actor = _actor(body, request)
        if name == "switch":
            await asyncio.to_thread(lambda: ctl.switch(agent, actor=actor))
        elif name == "tick":
            decision = await asyncio.to_thread(ctl.tick, agent)
            return {**await _status(agent, ctl), "decision": decision.to_dict() if decision else None}
        else:
            reason = field(body, "reason", str) or ""
            await asyncio.to_thread(lambda: getattr(ctl, name)(agent, actor=actor, reason=reason))
        return await _status(agent, ctl)

    act.__name__ = f"rollout_{name}"
    act.__doc__ = f"POST /admin/rollouts/{{agent}}/{name} {{reason?, by?}}"
    return act


# experiments ---------------------------------------------------------------------------------------
async def start_experiment(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """POST /admin/experiments/{agent} {a, b, split?, metrics?}"""
    from shipyard.rollout import start_experiment as start

    agent = _agent(request, state)
    body = await _body(request, state)
    a = field(body, "a", str, required=True)
    b = field(body, "b", str, required=True)
    split = _weight(body, "split")
    metrics = field(body, "metrics", list)
    override = _override(body)
    exp = await asyncio.to_thread(
        lambda: start(
            ctl,
            agent,
            a,
            b,
            split=50 if split is None else split,
            metrics=metrics,
            actor=_actor(body, request),
            override_gate=override,
        )
    )
    return json_response({"experiment": exp}, 201)


async def list_experiments(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """GET /admin/experiments/{agent}"""
    agent = _agent(request, state)
    return {"experiments": await asyncio.to_thread(ctl.store.list_experiments, agent)}


async def experiment_report(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """GET /admin/experiments/{agent}/report?id="""
    from shipyard.rollout import experiment_report as report
    from shipyard.rollout import find_experiment

    agent = _agent(request, state)
    exp = await asyncio.to_thread(find_experiment, ctl.store, agent, request.query_params.get("id"))
    rep = await asyncio.to_thread(report, ctl.store, exp)
    return {"experiment": exp, "report": rep.to_dict()}


async def stop_experiment(request: Request, state: ServerState, ctl: RolloutController) -> Any:
    """POST /admin/experiments/{agent}/stop"""
    from shipyard.rollout import stop_experiment as stop

    agent = _agent(request, state)
    body = await _body(request, state)
    exp = await asyncio.to_thread(lambda: stop(ctl, agent, actor=_actor(body, request)))
    return {"experiment": exp}


ACTIONS = ("promote", "pause", "resume", "abort", "rollback", "switch", "tick")


def rollout_routes() -> list[Route]:
    """The admin API's rollout and experiment routes."""
    routes = [
        Route("/admin/rollouts", _endpoint("read", list_rollouts), methods=["GET"]),
        Route("/admin/rollouts/{agent}", _endpoint("read", get_rollout), methods=["GET"]),
        Route("/admin/rollouts/{agent}/deploy", _endpoint("admin", deploy), methods=["POST"]),
        Route("/admin/rollouts/{agent}/canary", _endpoint("admin", canary), methods=["POST"]),
        Route("/admin/rollouts/{agent}/blue-green", _endpoint("admin", blue_green), methods=["POST"]),
        Route("/admin/rollouts/{agent}/override-gate", _endpoint("admin", override_gate), methods=["POST"]),
        Route("/admin/experiments/{agent}", _endpoint("read", list_experiments), methods=["GET"]),
        Route("/admin/experiments/{agent}", _endpoint("admin", start_experiment), methods=["POST"]),
        Route("/admin/experiments/{agent}/report", _endpoint("read", experiment_report), methods=["GET"]),
        Route("/admin/experiments/{agent}/stop", _endpoint("admin", stop_experiment), methods=["POST"]),
    ]
    routes += [
        Route(f"/admin/rollouts/{{agent}}/{name}", _endpoint("admin", _action(name)), methods=["POST"])
        for name in ACTIONS
    ]
    return routes


def rollout_openapi_paths() -> dict[str, Any]:
    """The OpenAPI paths of `rollout_routes()` (merged into the server's document)."""
    auth = {"401": {"description": "missing or unknown API key"}, "403": {"description": "role too low"}}
    errors = {
        "404": {"description": "unknown agent or version"},
        "409": {"description": "the rollout changed since it was read; re-read and retry"},
        "422": {
            "description": "refused: no passing production gate, overlapping rollouts, bad steps or weight"
        },
    }
    agent = [{"name": "agent", "in": "path", "required": True, "schema": {"type": "string"}}]
    obj: dict[str, Any] = {"type": "object"}

    def op(summary: str, body: dict[str, Any] | None = None, ok: str = "200") -> dict[str, Any]:
        out: dict[str, Any] = {
            "summary": summary,
            "parameters": agent,
            "responses": {
                ok: {"description": "OK", "content": {"application/json": {"schema": obj}}},
                **auth,
                **errors,
            },
        }
        if body is not None:
            out["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
        return out

    def obj_with(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
        return {"type": "object", "properties": props, **({"required": required} if required else {})}

    text = {"type": "string"}
    reason = obj_with({"reason": text, "by": text})
    override = {
        "type": "string",
        "minLength": 1,
        "maxLength": 500,
        "description": "start without a passing production gate; the reason is recorded (admins only)",
    }
    paths: dict[str, Any] = {
        "/admin/rollouts": {
            "get": {
                "summary": "Every agent's deployment",
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": obj}}},
                    **auth,
                },
            }
        },
        "/admin/rollouts/{agent}": {"get": op("The deployment and its last decisions with their numbers")},
        "/admin/rollouts/{agent}/deploy": {
            "post": op(
                "Set the stable version (needs a passing production gate)",
                obj_with({"version": text, "by": text}, ["version"]),
            )
        },
        "/admin/rollouts/{agent}/override-gate": {
            "post": op(
                "Let the current (or named) version take production traffic without a deployment and "
                "without a passing production gate; recorded and audit-logged (admins only)",
                obj_with({"override_gate": override, "version": text, "by": text}, ["override_gate"]),
            )
        },
        "/admin/rollouts/{agent}/canary": {
            "post": op(
                "Start a canary (needs a passing production gate, or override_gate)",
                obj_with(
                    {
                        "version": text,
                        "steps": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        "min_interactions": {"type": "integer", "minimum": 1},
                        "min_duration_s": {"type": "number", "minimum": 0},
                        "dry_run": {"type": "boolean"},
                        "gate_suites": {"type": "array", "items": text},
                        "override_gate": override,
                        "by": text,
                    },
                    ["version"],
                ),
            )
        },
        "/admin/rollouts/{agent}/blue-green": {
            "post": op(
                "Deploy green beside blue (needs a passing production gate, or override_gate)",
                obj_with(
                    {
                        "version": text,
                        "promote_after_s": {"type": "number", "exclusiveMinimum": 0},
                        "override_gate": override,
                        "by": text,
                    },
                    ["version"],
                ),
            )
        },
        "/admin/experiments/{agent}": {
            "get": op("The agent's experiments"),
            "post": op(
                "Start an A/B experiment (both arms need a passing production gate, or override_gate)",
                obj_with(
                    {
                        "a": text,
                        "b": text,
                        "split": {"type": "integer", "minimum": 1, "maximum": 99},
                        "metrics": {"type": "array", "items": text},
                        "override_gate": override,
                        "by": text,
                    },
                    ["a", "b"],
                ),
                ok="201",
            ),
        },
        "/admin/experiments/{agent}/report": {"get": op("The experiment report (safe to look at any time)")},
        "/admin/experiments/{agent}/stop": {
            "post": op("Stop the running experiment", obj_with({"by": text}))
        },
    }
    for name in ACTIONS:
        paths[f"/admin/rollouts/{{agent}}/{name}"] = {"post": op(f"{name.capitalize()} the rollout", reason)}
    return paths
