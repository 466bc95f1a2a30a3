"""Kubernetes progressive delivery: Argo Rollouts and Flagger ask Shipyard whether a canary is good.

On Kubernetes the controller (Argo Rollouts or Flagger) moves the traffic; Shipyard judges the agent.
Every replica writes its interactions to the shared store, so any replica answers for the fleet:
the canary's version is compared with the stable one over the stored records of a recent window
(`rollout/_analysis.py`, the same analysis Shipyard's own canaries use).

- `GET /k8s/argo/analysis?agent=A&canary=V[&stable=V][&window=10m][&min_samples=50]`: the `web`
  metric provider's contract: always 200 with a JSON object (an error is a non-2xx, which Argo counts
  as a measurement error). An AnalysisTemplate reads `result.verdict`: `successCondition:
  result.verdict == "pass"`, `failureCondition: result.verdict == "fail"`; anything else
  (`inconclusive`: a marginal score, or too little data yet) is neither, so Argo marks the
  measurement inconclusive and pauses the rollout for a human. `score`, `reasons`, `metrics` and the
  arms' sizes are the numbers behind it; `mixed_sessions` counts the sessions served by both
  versions, which the analysis leaves out of both arms.
- `POST /k8s/flagger/{hook}`: Flagger's webhooks, with its payload (`name`, `namespace`, `phase`,
  `checksum`, `metadata`: a map of strings naming `agent`, `canary` and optionally `stable`,
  `window`, `min_samples`, and `token`). Flagger proceeds on 200-202 and halts on anything else, so
  each hook answers 200 to proceed and 403 to halt, with a JSON body saying why:
  - `confirm-rollout`: the candidate may take traffic: its production gate passed (or a marginal
    gate was approved, or an admin overrode the gate with a reason);
  - `pre-rollout`: the candidate's eval gate: its newest production gate run passed (or was
    approved); an override does not count here;
  - `rollout`: the agent-level analysis of this step: 200 on PASS only;
  - `confirm-promotion`: the same analysis, before promotion: 200 on PASS only, so a marginal
    canary waits for a human (Flagger keeps it in WaitingPromotion);
  - `rollback`: 200 (roll back now) when the analysis FAILS, 403 otherwise.

A version is named by its full id (`support@1.1.0+a1b2c3d`) or by its label (`support@1.1.0` or
`1.1.0`), which must match exactly one version the store knows. Without `stable`, the deployment's
stable version is used, else the version that served the most of the agent's production traffic in
the window. Auth: a key with the `read` role, as `Authorization: Bearer KEY` (Argo: a header from a
Secret) or in the webhook's `metadata.token` (Flagger webhooks carry no headers).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import parse_window
from shipyard.errors import ShipyardError
from shipyard.observe import log_event
from shipyard.server._http import ApiError, endpoint, error_response, json_response, read_json

if TYPE_CHECKING:
    from shipyard.server._state import ServerState

DEFAULT_WINDOW = "10m"
DEFAULT_MIN_SAMPLES = 50
MAX_RECORDS_PER_ARM = 20_000
ANALYZED_SOURCES = ("production", "canary")  # eval and shadow traffic never judge a canary
HOOKS = ("confirm-rollout", "pre-rollout", "rollout", "confirm-promotion", "rollback")
FLAGGER_BODY_BYTES = 64 * 1024
VERDICTS = {"PASS": "pass", "FAIL": "fail", "MARGINAL": "inconclusive", "INSUFFICIENT_DATA": "inconclusive"}


@dataclass(frozen=True, slots=True)
class Question:
    """What a controller asks about: an agent, its canary version and (optionally) its stable one."""

    agent: str
    canary: str
    stable: str | None
    window_s: float
    min_samples: int


def _question(params: dict[str, Any], state: ServerState, where: str) -> Question:
    """The question in query parameters or webhook metadata (`where` names them in errors)."""

    def text(name: str, required: bool) -> str | None:
        value = params.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ApiError(400, f"{where}.{name} is required", param=f"{where}.{name}")
            return None
        if not isinstance(value, str):
            raise ApiError(422, f"{where}.{name} must be a string", param=f"{where}.{name}")
        return value.strip()

    agent = text("agent", True)
    assert agent is not None
    if agent not in state.cfg.agents:
        known = ", ".join(sorted(state.cfg.agents)) or "none"
        raise ApiError(404, f"no agent named {agent!r} (agents: {known})", param=f"{where}.agent")
    canary = text("canary", True)
    assert canary is not None
    raw_window = text("window", False) or DEFAULT_WINDOW
    try:
        window_s = parse_window(raw_window)
    except ValueError as e:
        raise ApiError(422, f"{where}.window: {e}", param=f"{where}.window") from None
    raw_min = text("min_samples", False)
    min_samples = DEFAULT_MIN_SAMPLES
    if raw_min is not None:
        if not raw_min.isdigit() or int(raw_min) < 1:
            raise ApiError(
                422,
                f"{where}.min_samples must be a whole number >= 1, got {raw_min!r}",
                param=f"{where}.min_samples",
            )
        min_samples = int(raw_min)
    return Question(agent, canary, text("stable", False), window_s, min_samples)


def _resolve(known: list[str], agent: str, ref: str, param: str) -> str:
    """The one version id among `known` that `ref` names (an id, `agent@label` or a label)."""
    if ref in known:
        return ref
    label = ref if "@" in ref else f"{agent}@{ref}"
    matches = sorted({v for v in known if v.split("+", 1)[0] == label})
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ApiError(
            404,
            f"{param}: no version of {agent!r} called {ref!r} in the store (known: "
            f"{', '.join(sorted(known)[:10]) or 'none'})",
            type="not_found_error",
            param=param,
        )
    raise ApiError(
        422,
        f"{param}: {ref!r} names {len(matches)} versions ({', '.join(matches)}); give the full id",
        param=param,
    )


def judge(state: ServerState, q: Question, *, now: float | None = None) -> dict[str, Any]:
    """The agent-level analysis of `q` over the shared store (blocking: call in a thread)."""
    from shipyard.rollout import analyze_arms

    store = state.store
    now = time.time() if now is None else now
    since = now - q.window_s
    known = [row["version"] for row in store.list_agent_versions(q.agent)]
    canary = _resolve(known, q.agent, q.canary, "canary")
    stable_from = "request"
    if q.stable is not None:
        stable = _resolve(known, q.agent, q.stable, "stable")
    else:
        stable, stable_from = _default_stable(store, q.agent, canary, since)
    if stable == canary:
        raise ApiError(422, f"canary and stable are the same version ({canary})", param="stable")

    def arm(version: str) -> list[Any]:
        records = store.list_interactions(
            agent=q.agent, version=version, since=since, limit=MAX_RECORDS_PER_ARM
        )
        return [r for r in records if r.traffic_source in ANALYZED_SOURCES]

    baseline_records, canary_records = arm(stable), arm(canary)
    analysis = analyze_arms(
        baseline_records, canary_records, expected_split=None, min_samples_per_arm=q.min_samples
    )
    verdict = str(analysis["verdict"])
    return {
        "verdict": VERDICTS[verdict],
        "analysis_verdict": verdict,
        "score": analysis["score"],
        "agent": q.agent,
        "canary": {"version": canary, "interactions": len(canary_records)},
        "stable": {"version": stable, "interactions": len(baseline_records), "chosen_by": stable_from},
        # sessions served by both versions, left out of both arms (see `rollout.canary_arms`)
        "mixed_sessions": analysis["mixed_sessions"],
        "mixed_interactions": analysis["mixed_interactions"],
        "window_s": q.window_s,
        "min_samples_per_arm": q.min_samples,
        "reasons": analysis["reasons"],
        "metrics": [
            {
                k: m[k]
                for k in (
                    "name",
                    "baseline",
                    "canary",
                    "effect",
                    "ci",
                    "p_adjusted",
                    "classification",
                    "critical",
                )
            }
            for m in analysis["metrics"]
        ],
        "at": now,
    }


def _default_stable(store: Any, agent: str, canary: str, since: float) -> tuple[str, str]:
    """The deployment's stable version, else the version other than `canary` that served the most of
    the agent's production traffic since `since`."""
    deployment = store.get_deployment(agent)
    stable = (deployment or {}).get("stable_version")
    if stable and stable != canary:
        return str(stable), "deployment"
    records = store.list_interactions(
        agent=agent, since=since, limit=MAX_RECORDS_PER_ARM, traffic_source="production"
    )
    counts = Counter(r.version for r in records if r.version != canary)
    if not counts:
        raise ApiError(
            422,
            f"no stable version to compare {canary} with: {agent!r} has no deployment and no other "
            "version served production traffic in the window",
            param="stable",
        )
    return counts.most_common(1)[0][0], "traffic"


# Argo Rollouts -----------------------------------------------------------------------------------
@endpoint("read")
async def argo_analysis(request: Request, state: ServerState) -> Response:
    """GET /k8s/argo/analysis: the canary verdict for an Argo Rollouts `web` metric."""
    q = _question(dict(request.query_params), state, "query")
    result = await _judge(state, q)
    log_event("k8s_analysis", controller="argo", **_summary(result))
    return json_response(result)


async def _judge(state: ServerState, q: Question) -> dict[str, Any]:
    try:
        return await asyncio.to_thread(judge, state, q)
    except (ApiError, ShipyardError):
        raise
    except Exception as e:  # the store cannot be read: no verdict (Argo counts an error, Flagger halts)
        raise ApiError(
            503,
            f"the store cannot be read, so there is no verdict: {type(e).__name__}",
            type="service_unavailable",
        ) from None


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent": result["agent"],
        "canary": result["canary"]["version"],
        "stable": result["stable"]["version"],
        "verdict": result["analysis_verdict"],
        "score": result["score"],
    }


# Flagger -----------------------------------------------------------------------------------------
async def flagger_hook(request: Request) -> Response:
    """POST /k8s/flagger/{hook}: a Flagger webhook; 200 proceeds, 403 halts (see the module docs)."""
    state: ServerState = request.app.state.shipyard
    hook = request.path_params["hook"]
    try:
        if hook not in HOOKS:
            raise ApiError(
                404, f"no Flagger hook {hook!r}; hooks: {', '.join(HOOKS)}", type="not_found_error"
            )
        payload = await read_json(request, FLAGGER_BODY_BYTES)
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ApiError(422, "metadata must be an object of strings", param="metadata")
        headers = dict(request.headers)
        token = metadata.get("token")
        if isinstance(token, str) and token and "authorization" not in headers and "x-api-key" not in headers:
            headers["authorization"] = f"Bearer {token}"
        await state.keys.check(headers, "read")
        q = _question(metadata, state, "metadata")
        proceed, body = await _answer(state, hook, q)
    except ApiError as e:
        return e.response()
    except ShipyardError as e:
        return error_response(422, e.message)
    body = {
        "hook": hook,
        "canary_resource": {k: payload.get(k) for k in ("name", "namespace", "phase", "checksum")},
        "proceed": proceed,
        **body,
    }
    log_event(
        "k8s_webhook",
        controller="flagger",
        hook=hook,
        proceed=proceed,
        resource=f"{payload.get('namespace')}/{payload.get('name')}",
        agent=q.agent,
        canary=q.canary,
    )
    return json_response(body, 200 if proceed else 403)


async def _answer(state: ServerState, hook: str, q: Question) -> tuple[bool, dict[str, Any]]:
    """(proceed, what it was decided on) for one hook."""
    if hook in ("confirm-rollout", "pre-rollout"):
        return await asyncio.to_thread(_gate_answer, state, q, hook == "confirm-rollout")
    result = await _judge(state, q)
    verdict = result["analysis_verdict"]
    if hook == "rollback":
        proceed = verdict == "FAIL"  # 2xx asks Flagger to roll back
        said = "roll back: the canary failed its analysis" if proceed else f"no rollback ({verdict})"
    else:
        proceed = verdict == "PASS"
        said = "the canary passes its analysis" if proceed else _halt_reason(verdict)
    return proceed, {"message": said, "analysis": result}


def _halt_reason(verdict: str) -> str:
    return {
        "FAIL": "halt: the canary failed its analysis",
        "MARGINAL": "halt: the canary's score is marginal; a human decides (promote or roll back)",
        "INSUFFICIENT_DATA": "halt: too little data in the window yet to judge the canary",
    }.get(verdict, f"halt: {verdict}")


def _gate_answer(state: ServerState, q: Question, override_counts: bool) -> tuple[bool, dict[str, Any]]:
    """The candidate's production gate (blocking)."""
    from shipyard.rollout import production_gate, serving_override

    store = state.store
    known = [row["version"] for row in store.list_agent_versions(q.agent)]
    version = _resolve(known, q.agent, q.canary, "canary")
    run, refused = production_gate(store, q.agent, version, doing="take canary traffic")
    run_id = str(run["id"]) if run else None
    gate: dict[str, Any] = {
        "version": version,
        "run_id": run_id,
        "refused": refused.message if refused else None,
    }
    if refused is None:
        return True, {"message": f"{version} passed its production gate (run {run_id})", "gate": gate}
    if override_counts:
        ride = serving_override(store, q.agent, version, run_id)
        if ride is not None:
            gate["override"] = ride
            return True, {
                "message": f"{version} has no passing gate, but {ride.get('by')} overrode it: {ride.get('reason')}",
                "gate": gate,
            }
    hint = f" ({refused.hint})" if refused.hint else ""
    return False, {"message": f"halt: {refused.message}{hint}", "gate": gate}


def k8s_routes() -> list[Route]:
    """The routes of this module (registered in server/_app.py)."""
    return [
        Route("/k8s/argo/analysis", argo_analysis, methods=["GET"]),
        Route("/k8s/flagger/{hook}", flagger_hook, methods=["POST"]),
    ]


def k8s_openapi_paths() -> dict[str, Any]:
    """The OpenAPI paths of `k8s_routes()`."""
    obj: dict[str, Any] = {"type": "object"}

    def answer(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": obj}}}

    auth = {"401": answer("missing or unknown API key"), "403": answer("role too low, or (Flagger) halt")}
    query = [
        {"name": name, "in": "query", "required": name in ("agent", "canary"), "schema": {"type": "string"}}
        for name in ("agent", "canary", "stable", "window", "min_samples")
    ]
    return {
        "/k8s/argo/analysis": {
            "get": {
                "summary": "Argo Rollouts web metric: the canary verdict (pass / fail / inconclusive), its score "
                "and the numbers behind it, over the shared store",
                "security": [{"apiKey": []}],
                "parameters": query,
                "responses": {
                    "200": answer("the verdict"),
                    **auth,
                    "400": answer("agent or canary missing"),
                    "404": answer("unknown agent or version"),
                    "422": answer("a bad parameter"),
                    "503": answer("the store cannot be read"),
                },
            }
        },
        "/k8s/flagger/{hook}": {
            "post": {
                "summary": "Flagger webhook (confirm-rollout, pre-rollout, rollout, confirm-promotion, rollback): "
                "200 proceeds, 403 halts",
                "security": [{"apiKey": []}],
                "parameters": [
                    {
                        "name": "hook",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(HOOKS)},
                    }
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": obj}}},
                "responses": {
                    "200": answer("proceed (rollback: roll back now)"),
                    **auth,
                    "400": answer("a bad payload"),
                    "404": answer("unknown hook, agent or version"),
                    "422": answer("a bad metadata value"),
                    "503": answer("the store cannot be read"),
                },
            }
        },
    }
