"""Shadow replay: recorded production interactions replayed against a candidate version.

Each sampled interaction runs three times through the one runtime pipeline, as
`traffic_source="shadow"` (so production KPIs never count it): twice on the version that served it
(to measure the noise) and once on the candidate; tools answer from what production recorded and
nothing with side effects runs (`_shadow_tools.py`). The three records are compared kind by kind and
only differences above the baseline's own noise are reported (`_shadow_compare.py`). The model spend
of every arm is the run's cost, kept apart from production's and capped by `shadow.max_cost_usd`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.config import ShadowConfig
from shipyard.errors import ConfigError, NotFoundError, ShipyardError
from shipyard.llm import LLMError, Message
from shipyard.loop._shadow_compare import SAME, KindResult, NoiseFilter, compare, regression
from shipyard.loop._shadow_tools import ShadowTools
from shipyard.store import InteractionRecord, new_id
from shipyard.store._shadow import add_shadow_comparisons, create_shadow_run, finish_shadow_run

if TYPE_CHECKING:
    from shipyard.runtime import Runtime
    from shipyard.store import Store

ARMS = ("primary", "secondary", "candidate")
SERVED = ("production", "canary")  # traffic that served users: what shadow replays
HISTORY_TURNS = 20  # earlier turns of the session given as history, at most
POOL_PER_SAMPLE = 20  # the sample is drawn from at most this many times as many newest interactions
FILTER_KEYS = ("status", "version", "feedback", "contains", "user")
TRACE_LINK = "/dashboard/traces/{trace_id}"


class ShadowError(ShipyardError):
    """A shadow run that cannot start (nothing to replay, a bad filter)."""


def parse_filters(items: list[str]) -> dict[str, str]:
    """`key=value` filters (`status=failed`, `version=1.2.0`, `feedback=negative`, `contains=refund`,
    `user=u1`, `meta.channel=chat`: a metadata value of the request) as a mapping; ShadowError for
    anything else."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        known = key in FILTER_KEYS or (key.startswith("meta.") and len(key) > 5)
        if not sep or not known or not value.strip():
            raise ShadowError(
                f"--filter {item!r}: expected KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)} or meta.NAME",
                hint="e.g. --filter status=failed --filter contains=refund --filter meta.channel=chat",
            )
        if key == "feedback" and value not in ("negative", "positive"):
            raise ShadowError(f"--filter {item!r}: feedback is negative or positive")
        out[key] = value.strip()
    return out


def _matches(r: InteractionRecord, filters: dict[str, str], versions: dict[str, str]) -> bool:
    if "status" in filters and r.status != filters["status"]:
        return False
    if "version" in filters and r.version != versions.get(filters["version"], filters["version"]):
        return False
    if "user" in filters and r.user_id != filters["user"]:
        return False
    if "contains" in filters and filters["contains"].lower() not in r.input.lower():
        return False
    for key, value in filters.items():
        if key.startswith("meta.") and str(r.metadata.get(key[5:], "")) != value:
            return False
    if "feedback" in filters:
        thumbs = (r.feedback or {}).get("thumbs")
        want = -1 if filters["feedback"] == "negative" else 1
        if thumbs != want:
            return False
    return True


@dataclass(slots=True)
class Comparison:
    """One replayed interaction: the production record, the records of its three arms, and each kind."""

    source: InteractionRecord
    arms: dict[str, InteractionRecord] = field(default_factory=dict)
    kinds: dict[str, KindResult] = field(default_factory=dict)
    reported: list[str] = field(default_factory=list)
    regression: str | None = None
    error: str | None = None
    withheld: int = 0  # side-effecting tool calls answered from a record or a stub
    ran: list[str] = field(default_factory=list)  # idempotent tools that really ran

    def row(self) -> dict[str, Any]:
        return {
            "interaction_id": self.source.id,
            "trace_id": self.source.trace_id,
            "arms": {
                arm: {"interaction_id": r.id, "trace_id": r.trace_id, "version": r.version}
                for arm, r in self.arms.items()
            },
            "kinds": {k: v.to_dict() for k, v in self.kinds.items()},
            "differences": list(self.reported),
            "error": self.error,
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.row()
        d.update(
            input=self.source.input,
            regression=self.regression,
            withheld_tool_calls=self.withheld,
            links={
                "production": TRACE_LINK.format(trace_id=self.source.trace_id),
                **{arm: TRACE_LINK.format(trace_id=r.trace_id) for arm, r in self.arms.items()},
            },
        )
        return d


@dataclass(slots=True)
class ShadowReport:
    """What a shadow run found: per kind, the noise and the differences; the interactions whose
    differences are above the noise; the verdict (PASS, FAIL: the candidate regressed, INCOMPLETE:
    the cap stopped it or nothing could be compared)."""

    run_id: str
    agent: str
    candidate: str
    baselines: list[str]
    status: str
    verdict: str
    summary: dict[str, Any]
    comparisons: list[Comparison]
    cost_usd: float
    elapsed_s: float
    reasons: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.reported]

    def to_dict(self) -> dict[str, Any]:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for c in self.differences:
            for kind in c.reported:
                k = c.kinds[kind]
                by_kind.setdefault(kind, []).append(
                    {
                        "interaction_id": c.source.id,
                        "input": c.source.input,
                        "baseline": k.baseline,
                        "candidate": k.candidate,
                        "detail": k.detail,
                        "production_trace": c.source.trace_id,
                        "baseline_trace": c.arms["primary"].trace_id,
                        "candidate_trace": c.arms["candidate"].trace_id,
                    }
                )
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "candidate": self.candidate,
            "baselines": self.baselines,
            "status": self.status,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "cost_usd": self.cost_usd,
            "elapsed_s": round(self.elapsed_s, 3),
            "summary": self.summary,
            "differences": by_kind,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


Progress = Callable[[int, int], None]


class ShadowRunner:
    """Runs shadow replays for one project.

    Args:
        rt: the runtime (its sinks get every shadow record: pass one with the store's writer).
        store: where production's records are read and the run is kept.
        concurrency: interactions replayed at once.
        progress: called with (done, total) after each interaction."""

    def __init__(
        self, rt: Runtime, store: Store, *, concurrency: int = 4, progress: Progress | None = None
    ) -> None:
        self.rt = rt
        self.store = store
        self.cfg: ShadowConfig = rt.cfg.shadow
        self.concurrency = max(1, concurrency)
        self.progress = progress

    # what to replay ------------------------------------------------------------------------------
    def select(
        self,
        agent: str,
        *,
        since_s: float | None,
        sample: int,
        filters: dict[str, str] | None = None,
        seed: int | None = None,
    ) -> list[InteractionRecord]:
        """Up to `sample` recorded interactions of `agent` that served users (production or canary
        traffic) in the last `since_s` seconds and match `filters`, drawn at random (`seed`) from the
        newest matching ones (at most 20 times `sample`, and at least 1000, per traffic source)."""
        filters = filters or {}
        since = time.time() - since_s if since_s is not None else None
        versions = {v.label: v.id for v in self.rt.versions(agent)}
        version = filters.get("version")
        found: list[InteractionRecord] = []
        for (
            source
        ) in SERVED:  # the store filters what it can; the newest POOL_PER_SAMPLE x sample are drawn from
            found += self.store.list_interactions(
                agent=agent,
                traffic_source=source,
                since=since,
                status=filters.get("status"),
                version=versions.get(version, version) if version else None,
                user_id=filters.get("user"),
                limit=max(sample * POOL_PER_SAMPLE, 1000),
            )
        found = [r for r in found if _matches(r, filters, versions)]
        found.sort(key=lambda r: r.created_at)
        if len(found) > sample:
            found = sorted(random.Random(seed).sample(found, sample), key=lambda r: r.created_at)
        return found

    def _history(self, r: InteractionRecord) -> list[Message]:
        """The session's earlier turns that served the user, as chat messages."""
        earlier = [
            e
            for e in self.store.list_interactions(
                session_id=r.session_id, until=r.created_at, limit=HISTORY_TURNS * 2, oldest_first=False
            )
            if e.traffic_source in SERVED and e.id != r.id and e.agent == r.agent
        ][:HISTORY_TURNS]
        messages: list[Message] = []
        for e in reversed(earlier):
            messages += [{"role": "user", "content": e.input}, {"role": "assistant", "content": e.output}]
        return messages

    def _stubs(self, agent: str) -> dict[str, Any]:
        stubs = self.cfg.tool_stubs.get(agent, {})
        known = {n for v in self.rt.versions(agent) for n in v.spec.tools.names()}
        unknown = sorted(set(stubs) - known)
        if unknown:
            raise ConfigError(
                str(self.rt.cfg.path or "shipyard.yaml"),
                [
                    f"shadow.tool_stubs.{agent}: {name!r} is not a tool of {agent!r} "
                    f"(its tools: {', '.join(sorted(known)) or 'none'}); fix the name"
                    for name in unknown
                ],
            )
        return stubs

    # the replay ----------------------------------------------------------------------------------
    async def run(
        self,
        agent: str,
        candidate: str,
        records: list[InteractionRecord],
        *,
        config: dict[str, Any] | None = None,
        max_cost_usd: float | None = None,
    ) -> ShadowReport:
        """Replay `records` (from `select`) against `candidate` and twice against the version that
        served each; keep the run and its comparisons in the store and return the report."""
        t0 = time.perf_counter()
        cand = self.rt.resolve_version(agent, candidate)
        stubs = self._stubs(agent)
        if not records:
            raise ShadowError(
                f"no recorded production interactions of {agent!r} to replay",
                hint="widen --since, drop a --filter, or send the agent traffic first",
            )
        cap = max_cost_usd if max_cost_usd is not None else self.cfg.max_cost_usd
        run_id = new_id()
        create_shadow_run(
            self.store,
            run_id,
            agent=agent,
            candidate=cand.id,
            source="replay",
            config={**(config or {}), "max_cost_usd": cap, "interactions": len(records)},
        )
        spent = 0.0
        done = in_flight = 0
        capped = False
        gate = asyncio.Semaphore(self.concurrency)
        results: list[Comparison] = []

        async def one(r: InteractionRecord) -> None:
            nonlocal spent, done, capped, in_flight
            async with gate:
                # the next interaction is started only when its likely cost (the mean so far,
                # three arms) still fits under the cap: the cap is never knowingly crossed
                mean = spent / done if done else 0.0
                if capped or spent + (in_flight + 1) * mean > cap:
                    capped = True
                    return
                in_flight += 1
                try:
                    c = await self._compare_one(run_id, r, cand.id, stubs)
                finally:
                    in_flight -= 1
                spent += sum(a.cost_usd for a in c.arms.values())
                done += 1
                results.append(c)
                if spent >= cap:
                    capped = True
                if self.progress is not None:
                    self.progress(done, len(records))

        await one(records[0])  # alone: its cost is the estimate the cap checks the others against
        await asyncio.gather(*(one(r) for r in records[1:]))
        results.sort(key=lambda c: c.source.created_at)
        noise = NoiseFilter(self.cfg.alpha)
        compared = [c for c in results if c.error is None]
        for c in compared:
            noise.add(c.kinds)
        kinds = noise.decide()
        for c in compared:
            c.reported = noise.reported(c.kinds)
        if self.cfg.judge is not None:  # a reply the judge finds the same is no difference: count again
            spent += await self._judge(compared, noise)
            kinds = noise.decide()
            for c in compared:
                c.reported = noise.reported(c.kinds)
        for c in compared:
            c.regression = regression(c.kinds, c.reported) if c.reported else None
        status, verdict, reasons = self._verdict(results, records, capped, cap, spent)
        baselines = sorted({c.arms["primary"].version for c in compared})
        summary = {
            "kinds": {k: s.to_dict() for k, s in kinds.items()},
            "compared": len(compared),
            "errors": sum(c.error is not None for c in results),
            "skipped": len(records) - len(results),
            "with_differences": sum(bool(c.reported) for c in compared),
            "regressions": sum(c.regression is not None for c in compared),
            "withheld_tool_calls": sum(c.withheld for c in results),
            "tools_run": sorted({t for c in results for t in c.ran}),
        }
        add_shadow_comparisons(self.store, run_id, (c.row() for c in results))
        finish_shadow_run(
            self.store,
            run_id,
            status=status,
            verdict=verdict,
            baselines=baselines,
            summary={**summary, "reasons": reasons},
            interactions=len(results),
            cost_usd=spent,
        )
        return ShadowReport(
            run_id=run_id,
            agent=agent,
            candidate=cand.id,
            baselines=baselines,
            status=status,
            verdict=verdict,
            summary=summary,
            comparisons=results,
            cost_usd=spent,
            elapsed_s=time.perf_counter() - t0,
            reasons=reasons,
        )

    async def _compare_one(
        self, run_id: str, r: InteractionRecord, candidate: str, stubs: dict[str, Any]
    ) -> Comparison:
        c = Comparison(source=r)
        try:
            served = self.rt.resolve_version(r.agent, r.version)
        except NotFoundError:
            c.error = (
                f"the version that served it ({r.version}) is no longer configured, so its noise cannot be "
                "measured; keep the version under the agent's `versions:` to shadow its traffic"
            )
            return c
        history = self._history(r)
        tools: dict[str, ShadowTools] = {}

        async def arm(name: str, version: str) -> InteractionRecord:
            v = self.rt.resolve_version(r.agent, version)
            tools[name] = ShadowTools(r.tool_calls, v.spec.tools, stubs)
            outcome = await self.rt.interact(
                r.agent,
                r.input,
                session_id=r.session_id,
                user_id=r.user_id,
                version=v.id,
                traffic_source="shadow",
                history=history,
                metadata={"shadow": {"run": run_id, "arm": name, "of": r.id}},
                interceptor=tools[name],
            )
            return outcome.full

        try:
            primary, secondary, cand = await asyncio.gather(
                arm("primary", served.id), arm("secondary", served.id), arm("candidate", candidate)
            )
        except ShipyardError as e:  # a version that cannot run here (say, a prompt variable without a value)
            c.error = f"could not be replayed: {e.message}"
            return c
        c.arms = {"primary": primary, "secondary": secondary, "candidate": cand}
        c.kinds = compare(primary, secondary, cand, self.cfg)
        c.withheld = sum(len(t.withheld) for t in tools.values())
        c.ran = sorted({n for t in tools.values() for n in t.ran})
        return c

    async def _judge(self, compared: list[Comparison], noise: NoiseFilter) -> float:
        """Ask the configured judge about each reported output difference; a reply it finds the same
        drops the difference. Returns the judge's cost. An unreadable verdict keeps the difference."""
        from shipyard.evals import Judge, parse_verdict

        judge_cfg = self.cfg.judge
        assert judge_cfg is not None
        handle = Judge(self.rt.pool).handle()
        cost = 0.0
        for c in compared:
            out = c.kinds["output"]
            if "output" not in c.reported:
                continue
            text = (
                f"Rubric:\n{judge_cfg.rubric}\n\nUser input:\n{c.source.input}\n\n"
                f"Expected reply:\n{out.baseline}\n\nAgent reply:\n{out.candidate}"
            )
            messages: list[Message] = [
                {"role": "system", "content": _JUDGE_SYSTEM},
                {"role": "user", "content": text},
            ]
            try:
                reply = await handle.chat(judge_cfg.model, messages)
            except LLMError as e:
                out.detail += f"; judge failed ({e}), difference kept"
                continue
            cost += reply.cost_usd
            verdict = parse_verdict(reply.text)
            if verdict is None:
                out.detail += "; judge verdict unreadable, difference kept"
            elif verdict[0]:
                out.state = SAME
                out.detail += f"; judge: the same ({verdict[2]})"
                noise.kinds["output"].different -= 1
            else:
                out.detail += f"; judge: different ({verdict[2]})"
        return cost

    def _verdict(
        self,
        results: list[Comparison],
        records: list[InteractionRecord],
        capped: bool,
        cap: float,
        spent: float,
    ) -> tuple[str, str, list[str]]:
        reasons: list[str] = []
        compared = [c for c in results if c.error is None]
        regressions = [c for c in compared if c.regression is not None]
        if capped:
            reasons.append(
                f"the shadow budget (shadow.max_cost_usd ${cap:g}) stopped the run after "
                f"{len(results)} of {len(records)} interactions (spent ${spent:.6f})"
            )
        errors = [c for c in results if c.error is not None]
        if errors:
            reasons.append(f"{len(errors)} interaction(s) could not be replayed: {errors[0].error}")
        for c in regressions:
            reasons.append(f"interaction {c.source.id}: {c.regression}")
        status = "budget_exhausted" if capped else "finished"
        if regressions:
            return status, "FAIL", reasons
        if capped or errors or not compared:
            if not compared:
                reasons.append("no interaction was compared")
            return status, "INCOMPLETE", reasons
        kinds = sum(1 for c in compared for _ in c.reported)
        reasons.append(
            f"{len(compared)} interactions compared, {sum(bool(c.reported) for c in compared)} with "
            f"differences above the noise ({kinds} kind(s)), no regression"
        )
        return status, "PASS", reasons


_JUDGE_SYSTEM = (
    "You compare two replies of an AI agent to the same customer message. Answer with one JSON object "
    'and nothing else: {"pass": true if the agent reply says the same as the expected reply, else false, '
    '"score": a number from 0 to 1, "reason": "one short sentence"}.'
)
