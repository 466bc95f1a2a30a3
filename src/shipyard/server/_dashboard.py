"""The health dashboard: `/dashboard`, the trace page, and the JSON they read under `/admin/api/dashboard`.

Numbers come from the server's in-memory `KpiWindow` for the time since this process started (or as far
back as the window keeps) and from the store for anything older, so a freshly started server still shows
yesterday. Older samples are read from the store once per time range and kept (see `_History`, an exact
`KpiFrame`); the window's part is its aggregates (merging buckets costs the same at any traffic). Both
are `KpiView`s, joined at the window's coverage start; this module only picks views and shapes JSON, in worker threads, never on the event loop. It also shapes
`GET /admin/kpis` (`kpis_document`), from the in-memory window alone.

The page (static/dashboard.html, .css, .js) is self-contained: no CDN, charts are inline SVG drawn by
its own script. It refreshes itself by fetching the JSON every few seconds. With API keys configured,
the JSON needs the `read` role; the page takes the key from `?key=` or asks for it, keeps it in
localStorage and sends it as a bearer header.

Replicas with Redis (`SHIPYARD_REDIS_URL`) share their KPIs (`start_shared_kpis`,
observe/_shared_kpis.py): the window then answers from the fleet's merged buckets, which hold every
replica's interactions since the fleet began sharing, so every replica shows the same numbers; the
documents say which (`scope`: fleet | process).

Extension point: `PANELS`. Other parts of the server (the rollout work) add a `DashboardPanel` with
`register_panel`; each panel's table is served with the overview and drawn under the KPI cards.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import math
import os
import secrets
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from shipyard.config import parse_window
from shipyard.observe import (
    COARSE_S,
    JoinedView,
    KpiFrame,
    Kpis,
    KpiView,
    KpiWindow,
    SharedKpis,
    overall_status,
    samples_from_records,
    trace_tree_lines,
)
from shipyard.observe import semconv as sc
from shipyard.server._http import ApiError, Handler, endpoint, json_response, query_int
from shipyard.store import InteractionRecord, SpanRecord
from shipyard.types import InteractionStatus, TrafficSource

API = "/admin/api/dashboard"
WINDOW_CHOICES = ("15m", "1h", "24h")
MAX_WINDOW_S = 86400.0
ACTIVE_SESSIONS_S = 900.0  # "active sessions": distinct sessions in the last 15 minutes
DAY_S = 86400.0
HISTORY_TTL_S = 300.0
REFRESH_S = 5.0
STATUSES = tuple(InteractionStatus)
# warm-ups are never recorded, so they are not a filter
TRAFFIC_SOURCES = tuple(s for s in TrafficSource if s is not TrafficSource.WARMUP)
_NICE_BUCKETS_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_MAX_BUCKETS = 1000


# KPI cards and their changes -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Card:
    """One KPI card: which `Kpis` field it shows, in what unit, and which direction is good."""

    key: str
    label: str
    unit: str  # count | rate | seconds | usd
    better: str | None  # higher | lower | None (neither is good or bad)


CARDS = (
    Card("sessions", "Active sessions", "count", None),
    Card("completion_rate", "Completion rate", "rate", "higher"),
    Card("avg_latency_s", "Avg latency", "seconds", "lower"),
    Card("p95_latency_s", "p95 latency", "seconds", "lower"),
    Card("cost_per_session", "Cost / session", "usd", "lower"),
    Card("escalation_rate", "Escalation rate", "rate", "lower"),
    Card("safety_incidents", "Safety incidents · 24h", "count", "lower"),
    Card("errors", "Errors · 24h", "count", "lower"),
)
VERSION_COLUMNS = (
    "interactions",
    "sessions",
    "completion_rate",
    "avg_latency_s",
    "p95_latency_s",
    "cost_per_session",
    "escalation_rate",
    "safety_incidents",
    "errors",
)
_BETTER = {c.key: c.better for c in CARDS} | {"interactions": None}


def change(current: float | None, previous: float | None, better: str | None) -> dict[str, Any]:
    """How a value moved against the previous window.

    Args:
        current, previous: the two values (None: no data in that window).
        better: "higher", "lower" or None; decides `good` (None when neither direction is good).

    Returns `{value, previous, delta, ratio, direction (up|down|flat|none), good (True|False|None)}`;
    `ratio` is the relative change (None when the previous value is 0 or missing).
    """
    if current is None or previous is None:
        return {
            "value": current,
            "previous": previous,
            "delta": None,
            "ratio": None,
            "direction": "none",
            "good": None,
        }
    delta = current - previous
    flat = math.isclose(delta, 0.0, abs_tol=1e-12)
    direction = "flat" if flat else ("up" if delta > 0 else "down")
    good = None if flat or better is None else (delta > 0) == (better == "higher")
    ratio = delta / previous if previous else None
    return {
        "value": current,
        "previous": previous,
        "delta": 0.0 if flat else delta,
        "ratio": ratio,
        "direction": direction,
        "good": good,
    }


def _changes(current: Kpis, previous: Kpis, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {k: change(current.value(k), previous.value(k), _BETTER.get(k)) for k in keys}


# the extension point -----------------------------------------------------------------------------
PanelContent = dict[str, Any]
"""`{"columns": [str, ...], "rows": [[value, ...], ...], "note": str (optional)}`; values shown as text."""


@dataclass(frozen=True, slots=True)
class DashboardPanel:
    """An extra panel on the dashboard, drawn as a table under the KPI cards.

    Args:
        name: a stable id (letters, digits, dashes), also the panel's HTML id.
        title: the heading shown above the table.
        content: `(state) -> PanelContent`, sync or async, called on every overview refresh; an
            exception shows as a note in the panel instead of breaking the dashboard.
    """

    name: str
    title: str
    content: Callable[[Any], PanelContent | Awaitable[PanelContent]]


PANELS: list[DashboardPanel] = []
"""Panels every dashboard shows (the rollout work registers its panel here)."""


def register_panel(panel: DashboardPanel) -> DashboardPanel:
    """Add a panel to `PANELS`; one of the same name is replaced where it stands."""
    for i, p in enumerate(PANELS):
        if p.name == panel.name:
            PANELS[i] = panel
            return panel
    PANELS.append(panel)
    return panel


async def _panel_content(panel: DashboardPanel, state: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": panel.name, "title": panel.title, "columns": [], "rows": []}
    try:
        got = panel.content(state)
        content = await got if inspect.isawaitable(got) else got
        out["columns"] = [str(c) for c in content.get("columns", [])]
        out["rows"] = [list(r) for r in content.get("rows", [])]
        if content.get("note"):
            out["note"] = str(content["note"])
    except Exception as e:  # one broken panel must not take the dashboard down
        out["note"] = f"this panel failed: {type(e).__name__}: {e}"
    return out


# where samples come from -------------------------------------------------------------------------
class _History:
    """Production samples read from the store for the time the in-memory window does not cover, as a
    `KpiFrame` in time order.

    Rows are read once per time range and kept: a later request reads only the part of its range not
    read yet, and what no window can need any more (older than `lookback_s`) is let go. Every `ttl_s`
    the cache starts over, which picks up feedback and rows other processes wrote late.
    """

    def __init__(self, store: Any, lookback_s: float, ttl_s: float = HISTORY_TTL_S) -> None:
        self.store = store
        self.lookback_s = lookback_s
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._lo = self._hi = 0.0
        self._started = -math.inf
        self._frame = KpiFrame()

    def _read(self, since: float, until: float) -> KpiFrame:
        records = self.store.list_interactions(since=since, until=until, limit=None, oldest_first=True)
        return KpiFrame(samples_from_records(records))

    def frame(self, since: float, until: float, now: float) -> KpiFrame:
        """The samples created in [since, until)."""
        with self._lock:
            if time.monotonic() - self._started > self.ttl_s:
                self._frame, self._lo, self._hi = KpiFrame(), until, until
                self._started = time.monotonic()
            if since < self._lo:
                self._frame = KpiFrame.concat([self._read(since, self._lo), self._frame])
                self._lo = since
            if until > self._hi:
                self._frame = KpiFrame.concat([self._frame, self._read(self._hi, until)])
                self._hi = until
            floor = now - self.lookback_s
            if self._lo < floor:
                self._frame = KpiFrame.concat([self._frame.between(floor, math.inf)])  # a copy: lets go
                self._lo = floor
            return self._frame.between(since, until)


def _clip(text: str, n: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class DashboardData:
    """The numbers behind the dashboard of one server. Methods block (store queries, window scans):
    call them in a worker thread.

    Args:
        state: the `ServerState` (uses `.store`, `.window`, `.alerts`, `.started_at`).
    """

    def __init__(self, state: Any) -> None:
        self.state = state
        self._history: _History | None = None

    def coverage_start(self, now: float) -> float:
        """From when on the in-memory window holds every production interaction (the start of its
        coarse buckets once the horizon is reached, so the window never counts part of a bucket)."""
        window = self.state.window
        edge = math.ceil((now - window.horizon_s) / COARSE_S) * COARSE_S
        fleet = window.covers_from  # the fleet's merged view: from when the fleet began sharing
        start = fleet if fleet is not None else float(getattr(self.state, "started_at", now))
        return max(min(start, now), edge)

    def frame(self, since: float, until: float) -> KpiView:
        """Production interactions created in [since, until): the store before `coverage_start`, the
        in-memory window's aggregates after it (no interaction is counted twice)."""
        split = min(max(since, self.coverage_start(until)), until)
        memory = self.state.window.view().between(since, until)
        if since >= split:
            return memory
        if self._history is None:
            self._history = _History(self.state.store, lookback_s=2 * MAX_WINDOW_S + 60)
        history = self._history.frame(since, split, until)
        # the window holds nothing from before the server started: the bucket holding `split` counts whole
        return JoinedView(history, memory, split, after_from=math.floor(split / COARSE_S) * COARSE_S)

    # the JSON documents ------------------------------------------------------------------------------
    def overview(self, window_s: float, now: float | None = None) -> dict[str, Any]:
        """Status, KPI cards with their change against the previous window, 24-hour counts and alerts."""
        now = time.time() if now is None else now
        span = max(2 * window_s, 2 * DAY_S, 2 * ACTIVE_SESSIONS_S)
        frame = self.frame(now - span, now)

        def kpis(length: float, offset: float = 0.0) -> Kpis:
            end = now - offset
            return frame.kpis(length, end - length, end)

        current, previous = kpis(window_s), kpis(window_s, window_s)
        active, active_before = kpis(ACTIVE_SESSIONS_S), kpis(ACTIVE_SESSIONS_S, ACTIVE_SESSIONS_S)
        day, day_before = kpis(DAY_S), kpis(DAY_S, DAY_S)
        cards = []
        for card in CARDS:
            cur, prev = current, previous
            if card.key == "sessions":
                cur, prev = active, active_before
            elif card.key in ("safety_incidents", "errors"):
                cur, prev = day, day_before
            cards.append(
                {
                    "key": card.key,
                    "label": card.label,
                    "unit": card.unit,
                    "better": card.better,
                    "window_s": cur.window_s,
                    **change(cur.value(card.key), prev.value(card.key), card.better),
                }
            )
        states = self.state.alerts.states()
        return {
            "now": now,
            "window_s": window_s,
            "status": overall_status(states),
            "cards": cards,
            "current": current.to_dict(),
            "previous": previous.to_dict(),
            "last_24h": {
                "safety_incidents": day.safety_incidents,
                "errors": day.errors,
                "interactions": day.interactions,
            },
            "alerts": [s.to_dict() for s in states],
            "source": self._source(now - span, now),
            "scope": self.state.window.scope,
        }

    def _source(self, since: float, now: float) -> str:
        return "memory" if since >= self.coverage_start(now) else "store+memory"

    def versions(self, window_s: float, now: float | None = None) -> list[dict[str, Any]]:
        """The KPIs of each (agent, version) seen in this window or the previous one, with changes."""
        now = time.time() if now is None else now
        frame = self.frame(now - 2 * window_s, now)
        rows: list[dict[str, Any]] = []
        for agent, version in frame.versions():
            cur, prev = _this_and_previous(frame.where(agent=agent, version=version), window_s, now)
            rows.append(
                {
                    "agent": agent,
                    "version": version,
                    "current": cur.to_dict(),
                    "previous": prev.to_dict(),
                    "changes": _changes(cur, prev, VERSION_COLUMNS),
                }
            )
        rows.sort(key=lambda r: (r["agent"], -r["current"]["interactions"], r["version"]))
        return rows

    def timeseries(
        self, window_s: float, bucket_s: float | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """Buckets over the window (aligned to multiples of `bucket_s`, so refreshes line up), each with
        interactions per minute, completion rate, p95 / average latency, cost and errors."""
        now = time.time() if now is None else now
        bucket_s = bucket_s or default_bucket(window_s)
        first = math.floor((now - window_s) / bucket_s) * bucket_s
        count = math.floor((now - first) / bucket_s) + 1
        edges = [first + i * bucket_s for i in range(count + 1)]
        frame = self.frame(first, now + 1e-6)
        points = []
        for start, k in zip(edges[:-1], frame.buckets(edges, bucket_s), strict=True):
            # the last bucket is still filling: rate over the time it has covered so far
            covered = min(bucket_s, max(now - start, bucket_s / 4))
            points.append(
                {
                    "t": start,
                    "end": start + bucket_s,
                    "partial": start + bucket_s > now,
                    "interactions": k.interactions,
                    "per_min": k.interactions * 60 / covered,
                    "completion_rate": k.completion_rate,
                    "p95_latency_s": k.p95_latency_s,
                    "avg_latency_s": k.avg_latency_s,
                    "cost_usd": k.cost_usd,
                    "errors": k.errors,
                    "escalation_rate": k.escalation_rate,
                }
            )
        return {"now": now, "window_s": window_s, "bucket_s": bucket_s, "points": points}

    def traces(
        self, filters: dict[str, str | None], since: float | None, before: float | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest interactions matching `filters` (agent, version, status, session_id, traffic_source)."""
        records = self.state.store.list_interactions(
            filters.get("agent"),
            filters.get("version"),
            filters.get("session_id"),
            filters.get("status"),
            filters.get("traffic_source"),
            since,
            before,
            limit,
        )
        return [trace_row(r) for r in records]

    def trace(self, ref: str) -> dict[str, Any] | None:
        """One interaction with its spans laid out as a waterfall, or None."""
        record: InteractionRecord | None = self.state.store.find_interaction(ref, spans=True)
        return None if record is None else trace_detail(record)


def _this_and_previous(frame: KpiView, window_s: float, now: float) -> tuple[Kpis, Kpis]:
    """The KPIs of the window ending now and of the one before it."""
    return frame.kpis(window_s, now - window_s, now), frame.kpis(window_s, now - 2 * window_s, now - window_s)


def kpis_document(
    window: KpiWindow, window_s: float, now: float, *, agent: str | None = None, points: int = 30
) -> dict[str, Any]:
    """The numbers of `GET /admin/kpis`, from the server's in-memory window: this window and the
    previous one, overall and per version, `points` chart buckets over the window, and the last 24 hours.
    It merges the window's buckets (work bounded by the number of buckets, not of interactions), but
    it blocks: call it in a worker thread.

    Args:
        window: the server's `KpiWindow`.
        window_s: the window's length; `now` its end (epoch seconds).
        agent: only this agent's interactions (None: all).
        points: how many buckets the series has.
    """
    frame = window.view(agent=agent)
    current, previous = _this_and_previous(frame, window_s, now)
    versions = []
    for a, v in frame.versions():
        cur, prev = _this_and_previous(frame.where(agent=a, version=v), window_s, now)
        versions.append({"agent": a, "version": v, "current": cur.to_dict(), "previous": prev.to_dict()})
    step = window_s / points
    edges = [now - window_s + i * step for i in range(points + 1)]
    series = [
        {
            "t": end,
            "interactions": k.interactions,
            "completion_rate": k.completion_rate,
            "p95_latency_s": k.p95_latency_s,
            "avg_latency_s": k.avg_latency_s,
            "cost_usd": k.cost_usd,
            "errors": k.errors,
            "safety_incidents": k.safety_incidents,
        }
        for end, k in zip(edges[1:], frame.buckets(edges, step), strict=True)
    ]
    day = frame.kpis(DAY_S, now - DAY_S, now)
    return {
        "scope": window.scope,
        "current": current.to_dict(),
        "previous": previous.to_dict(),
        "versions": versions,
        "series": series,
        "last_24h": {
            "safety_incidents": day.safety_incidents,
            "errors": day.errors,
            "interactions": day.interactions,
        },
    }


SHARED_KPIS_ENV = "SHIPYARD_REDIS_URL"  # the fleet's Redis (as for rollout and config notices)


async def start_shared_kpis(state: Any) -> list[asyncio.Task[None]]:
    """With `SHIPYARD_REDIS_URL`, share this replica's KPIs with the fleet: the window and the alerts
    read the merged view, and a background loop (`shared_kpis`) flushes and reads every
    `SharedKpis.interval_s`, with a last flush when it stops. Without it, nothing (one process)."""
    url = os.environ.get(SHARED_KPIS_ENV)
    if not url:
        return []
    shared = SharedKpis(url, state.cfg.project, horizon_s=state.window.horizon_s)
    state.window.shared = shared
    state.alerts.shared = shared
    with state.loops.guard("shared_kpis"):
        await asyncio.to_thread(shared.sync)

    async def run() -> None:
        try:
            await state.loops.every("shared_kpis", shared.interval_s, lambda: asyncio.to_thread(shared.sync))
        finally:  # what this replica saw since the last flush still reaches the fleet (Redis willing)
            if shared.reachable and len(shared.outbox):
                try:
                    shared.flush()
                except Exception as e:
                    state.loops.failed("shared_kpis", e)
            shared.close()

    return [asyncio.get_running_loop().create_task(run())]


def default_bucket(window_s: float) -> float:
    """A round bucket size giving at most 60 points over the window."""
    for b in _NICE_BUCKETS_S:
        if window_s / b <= 60:
            return float(b)
    return float(math.ceil(window_s / 60))


# traces ------------------------------------------------------------------------------------------
def trace_row(r: InteractionRecord, *, clip: bool = True) -> dict[str, Any]:
    """One line of the traces list."""
    fb = r.feedback or {}
    return {
        "trace_id": r.trace_id,
        "interaction_id": r.id,
        "session_id": r.session_id,
        "user_id": r.user_id,
        "agent": r.agent,
        "version": r.version,
        "status": r.status,
        "traffic_source": r.traffic_source,
        "latency_ms": r.latency_ms,
        "cost_usd": r.cost_usd,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "llm_calls": len(r.llm_calls),
        "tool_calls": len(r.tool_calls),
        "tool_errors": sum(1 for t in r.tool_calls if t.status != "success"),
        "created_at": r.created_at,
        "input": _clip(r.input) if clip else r.input,
        "error": r.error,
        "thumbs": fb.get("thumbs"),
        "score": fb.get("score"),
    }


def _span_detail(s: SpanRecord) -> dict[str, Any]:
    a = s.attributes
    op = a.get(sc.OPERATION) or a.get(sc.SHIPYARD_OPERATION)
    out: dict[str, Any] = {"operation": op}
    if op == sc.OP_CHAT or a.get(sc.ATTEMPT) is not None:
        out["model"] = a.get(sc.RESPONSE_MODEL) or a.get(sc.REQUEST_MODEL)
        out["input_tokens"] = a.get(sc.INPUT_TOKENS)
        out["output_tokens"] = a.get(sc.OUTPUT_TOKENS)
        out["cached_tokens"] = a.get(sc.CACHE_READ_TOKENS)
        out["attempt"] = a.get(sc.ATTEMPT)
    if op == sc.OP_TOOL:
        out["tool"] = a.get(sc.TOOL_NAME)
        out["tool_status"] = a.get(sc.TOOL_STATUS)
        out["tool_cached"] = a.get(sc.TOOL_CACHED)
        out["arguments"] = a.get(sc.TOOL_ARGUMENTS)
    if op == sc.OP_GUARDRAIL:
        out["verdict"] = a.get(sc.GUARDRAIL_VERDICT)
    if a.get(sc.COST_USD) is not None:
        out["cost_usd"] = a.get(sc.COST_USD)
    if a.get(sc.ERROR_TYPE):
        out["error"] = a.get(sc.ERROR_TYPE)
    return {k: v for k, v in out.items() if v is not None}


def waterfall(spans: list[SpanRecord]) -> tuple[list[dict[str, Any]], float]:
    """Spans in tree order (depth-first, children by start time) with their offset from the trace start
    and duration in ms, plus the trace's duration in ms. Spans whose parent is missing become roots."""
    if not spans:
        return [], 0.0
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for s in spans:
        children[s.parent_id if s.parent_id in ids else None].append(s)
    start = min(s.start_ns for s in spans)
    total_ms = (max(s.end_ns for s in spans) - start) / 1e6
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: (x.start_ns, x.name)):
            rows.append(
                {
                    "span_id": s.span_id,
                    "parent_id": s.parent_id,
                    "depth": depth,
                    "name": s.name,
                    "kind": s.kind,
                    "status": s.status,
                    "offset_ms": (s.start_ns - start) / 1e6,
                    "duration_ms": s.duration_ms,
                    **_span_detail(s),
                    "attributes": s.attributes,
                }
            )
            walk(s.span_id, depth + 1)

    walk(None, 0)
    return rows, total_ms


def trace_detail(record: InteractionRecord) -> dict[str, Any]:
    """The trace page's document: the interaction, its waterfall and its plain-text tree."""
    rows, total_ms = waterfall(record.spans)
    return {
        "trace": trace_row(record, clip=False),
        "output": record.output,
        "feedback": record.feedback,
        "metadata": record.metadata,
        "guardrails": record.guardrails,
        "llm_calls": [asdict(c) for c in record.llm_calls],
        "tool_calls": [asdict(t) for t in record.tool_calls],
        "spans": rows,
        "duration_ms": total_ms or record.latency_ms,
        "tree": trace_tree_lines(record),
    }


# HTTP --------------------------------------------------------------------------------------------
_DATA: weakref.WeakKeyDictionary[Any, DashboardData] = weakref.WeakKeyDictionary()


def data_of(state: Any) -> DashboardData:
    """The `DashboardData` of a server state (one per state, made on first use)."""
    found = _DATA.get(state)
    if found is None:
        found = _DATA[state] = DashboardData(state)
    return found


def _window(request: Request, name: str = "window", default: str = "15m") -> float:
    raw = request.query_params.get(name, default)
    try:
        seconds = parse_window(raw)
    except ValueError as e:
        raise ApiError(422, f"query parameter {name!r}: {e}", param=name) from None
    if seconds > MAX_WINDOW_S:
        raise ApiError(422, f"query parameter {name!r} is at most 24h, got {raw!r}", param=name)
    return seconds


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(
            422, f"query parameter {name!r} must be one of {', '.join(allowed)}, got {value!r}", param=name
        )
    return value


def _float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(
            422, f"query parameter {name!r} must be a number (epoch seconds), got {raw!r}", param=name
        ) from None
    if not math.isfinite(value):
        raise ApiError(422, f"query parameter {name!r} must be a finite number, got {raw!r}", param=name)
    return value


ApiFn = Callable[[Request, Any, DashboardData], Awaitable[Any]]


def _api(bound: Any, fn: ApiFn) -> Handler:
    """A read-only JSON route: the `read` role when keys exist; errors as JSON naming the field."""

    async def handler(request: Request, state: Any) -> Response:
        return json_response(await fn(request, state, data_of(state)), headers={"Cache-Control": "no-store"})

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return endpoint("read", bound)(handler)


async def api_overview(request: Request, state: Any, data: DashboardData) -> Any:
    """GET /admin/api/dashboard/overview?window=15m"""
    window_s = _window(request)
    out = await asyncio.to_thread(data.overview, window_s)
    out["panels"] = [await _panel_content(p, state) for p in PANELS]
    return out


async def api_timeseries(request: Request, state: Any, data: DashboardData) -> Any:
    """GET /admin/api/dashboard/timeseries?window=1h&bucket=1m"""
    window_s = _window(request)
    bucket_s = _window(request, "bucket", "0") if request.query_params.get("bucket") else None
    if bucket_s is not None and window_s / bucket_s > _MAX_BUCKETS:
        raise ApiError(
            422,
            f"query parameter 'bucket' gives over {_MAX_BUCKETS} points for this window; use a larger bucket",
            param="bucket",
        )
    return await asyncio.to_thread(data.timeseries, window_s, bucket_s)


async def api_versions(request: Request, state: Any, data: DashboardData) -> Any:
    """GET /admin/api/dashboard/versions?window=15m"""
    window_s = _window(request)
    return {"window_s": window_s, "versions": await asyncio.to_thread(data.versions, window_s)}


async def api_traces(request: Request, state: Any, data: DashboardData) -> Any:
    """GET /admin/api/dashboard/traces?agent=&version=&status=&session_id=&traffic_source=&window=&before=&limit="""
    q = request.query_params
    filters = {
        "agent": q.get("agent") or None,
        "version": q.get("version") or None,
        "session_id": q.get("session_id") or None,
        "status": _choice(request, "status", STATUSES),
        "traffic_source": _choice(request, "traffic_source", TRAFFIC_SOURCES),
    }
    since = time.time() - _window(request) if q.get("window") else None
    limit = query_int(request, "limit", 50, low=1, high=500)
    rows = await asyncio.to_thread(data.traces, filters, since, _float(request, "before"), limit)
    return {"traces": rows, "filters": filters, "limit": limit}


async def api_trace(request: Request, state: Any, data: DashboardData) -> Any:
    """GET /admin/api/dashboard/traces/{trace_id} (a trace id or an interaction id)"""
    ref = request.path_params["trace_id"]
    found = await asyncio.to_thread(data.trace, ref)
    journal = getattr(state, "journal", None)
    if found is None and journal is not None and journal.pending:
        await journal.flush()  # it may have just finished and still be on its way to the store
        found = await asyncio.to_thread(data.trace, ref)
    if found is None:
        raise ApiError(
            404,
            f"no trace or interaction with id {ref!r}; ids are in the traces list and in "
            "each invoke response (trace_id)",
            type="not_found_error",
            param="trace_id",
        )
    return found


# the page ----------------------------------------------------------------------------------------
@functools.cache
def _asset(name: str) -> str:
    return (resources.files("shipyard.server") / "static" / name).read_text(encoding="utf-8")


def page_html(page: str = "overview", trace_id: str | None = None, nonce: str = "") -> str:
    """The dashboard page (`page="overview"`) or a trace page, with its CSS and script inlined."""
    boot = json.dumps(
        {
            "page": page,
            "trace_id": trace_id,
            "api": API,
            "windows": WINDOW_CHOICES,
            "refresh_s": REFRESH_S,
            "statuses": STATUSES,
            "traffic_sources": TRAFFIC_SOURCES,
        }
    )
    return (
        _asset("dashboard.html")
        .replace("/*__CSS__*/", _asset("dashboard.css"))
        .replace("/*__JS__*/", _asset("dashboard.js"))
        .replace("__BOOT__", boot.replace("<", "\\u003c").replace("&", "\\u0026"))
        .replace("__NONCE__", nonce)
    )


def _page_response(page: str, trace_id: str | None = None) -> Response:
    nonce = secrets.token_urlsafe(16)
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return HTMLResponse(
        page_html(page, trace_id, nonce),
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def dashboard_page(request: Request) -> Response:
    """GET /dashboard"""
    return _page_response("overview")


async def trace_page(request: Request) -> Response:
    """GET /dashboard/traces/{trace_id}"""
    return _page_response("trace", request.path_params["trace_id"])


def dashboard_routes(state: Any = None) -> list[BaseRoute]:
    """The dashboard's routes: the two pages and the JSON under `/admin/api/dashboard`.

    Args:
        state: the `ServerState` to read; None reads `request.app.state.shipyard`.
    """

    def api(path: str, fn: ApiFn) -> Route:
        return Route(f"{API}{path}", _api(state, fn), methods=["GET"])

    return [
        Route("/dashboard", dashboard_page, methods=["GET"]),
        Route("/dashboard/traces/{trace_id}", trace_page, methods=["GET"]),
        api("/overview", api_overview),
        api("/timeseries", api_timeseries),
        api("/versions", api_versions),
        api("/traces", api_traces),
        api("/traces/{trace_id}", api_trace),
    ]
