"""The eval runner: every case repeat through the runtime, scored, with an adaptive concurrency
limit, a cost budget, record/replay, a progress bar and clean interruption.

    runner = EvalRunner(runtime, cfg, concurrency=16, budget_usd=2.0)
    result = await runner.run("support", [load_suite("evals/support/smoke.yaml")], stage="pre-merge")

One agent exception, timeout or judge failure makes that repeat ERROR; it never stops the run.
Ctrl-C (or cancelling the task) keeps the results so far and marks the run interrupted. A `scenario`
case's user turns after the first come from the configured user simulator (`_simulator.py`); without
one the repeat is SKIPPED, saying why."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shipyard.config import ShipyardConfig
from shipyard.cost import call_cost
from shipyard.errors import ShipyardError
from shipyard.evals._judge import Judge
from shipyard.evals._replay import FixedTools, ReplayCache, idempotent_tools, replay_path
from shipyard.evals._scorers import BuiltScorer, ScoreInput
from shipyard.evals._simulator import SimulatorError, UserSimulator
from shipyard.evals._suite import Case, Suite, SuiteError, tool_names, validate_suite
from shipyard.evals._types import EvalRunResult, Outcome, RepeatResult, ScoreResult
from shipyard.llm import LLMEvent, Usage, add_listener
from shipyard.observe import semconv as sc
from shipyard.store import EvalRunStatus, InteractionRecord, new_id
from shipyard.types import TrafficSource

if TYPE_CHECKING:
    from shipyard.runtime import Runtime

Mode = Literal["live", "record", "replay"]
MODES: tuple[str, ...] = ("live", "record", "replay")
STORE_BATCH = 256
PROGRESS_EVERY_S = 0.1
"""The progress bar's counts are updated at most this often (and when the run ends), not per repeat."""


AUTO_START = 8
"""The first limit of an adaptive run (`concurrency=None`, the default)."""
AUTO_MAXIMUM = 64
"""The most repeats an adaptive run puts in flight, however well the provider keeps up."""
LATENCY_TOLERANCE = 2.0
"""A repeat slower per turn than this many times the fastest one seen means the limit is too high."""


class AdaptiveLimiter:
    """How many repeats may be in flight, adapted to the provider as TCP adapts its window (AIMD).

    Until the model first rate-limits, the limit grows by one per success (it doubles every round of
    calls); a 429 (on any attempt, Retry-After or not) halves it, when the client sees it
    (`throttled_now`) or when the repeat that met it ends, and from then on it grows by one per `limit`
    successes (one per round). The repeats already in flight when it halved met the same congestion,
    so their 429s do not halve it again. Never above `maximum` nor below `minimum`.

    Latency is the other congestion signal (as in delay-based windows): a repeat whose time per model
    turn (its latency over its model calls, `ms_per_turn`) is over `LATENCY_TOLERANCE` times the
    fastest seen so far waited for something the limit made scarce (an in-process agent's CPU, a
    provider's queue), so the limit steps down by one instead of growing. Without it, an agent bound
    by this machine's CPU would be run 64 at a time and every latency it reports would be mostly the
    run's own queueing. Per model call, not per case: a case answered in one call and one that takes
    four are the same speed, and a case that makes no model call (blocked at the input) says nothing
    about the provider, so it is not a signal at all (the runner passes None).

    Args:
        maximum: the highest limit.
        minimum: the lowest limit.
        start: the first limit (default `maximum`: a fixed `--concurrency` starts there)."""

    def __init__(self, maximum: int, minimum: int = 1, start: int | None = None) -> None:
        self.maximum = maximum
        self.minimum = minimum
        self.limit = max(minimum, min(maximum, start if start is not None else maximum))
        self.in_flight = 0
        self.lowest = self.limit  # the lowest and highest limits reached, for reports
        self.highest = self.limit
        self.halvings = 0
        self._threshold = maximum  # grow one per success below it, one per round at or above it
        self._credit = 0  # successes towards the next step of one round
        self._same_event = 0  # releases still due from repeats in flight when the limit last halved
        self._fastest: float | None = None  # the lowest time per turn seen, in ms
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        if self.in_flight < self.limit and not self._cond.locked():
            # room now and nobody holds the condition: taking it would not wait either (one event
            # loop thread), so the slot is taken without the lock's and the wait's coroutines
            self.in_flight += 1
            return
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def release(self, *, throttled: bool, ms_per_turn: float | None = None) -> None:
        async with self._cond:
            self.in_flight -= 1
            earlier = self._same_event > 0
            if earlier:
                self._same_event -= 1
            slow = False
            if ms_per_turn is not None and ms_per_turn > 0:
                self._fastest = ms_per_turn if self._fastest is None else min(self._fastest, ms_per_turn)
                slow = ms_per_turn > LATENCY_TOLERANCE * self._fastest
            if throttled:
                if not earlier:
                    self._halve()
            elif slow:
                if self.limit > self.minimum:
                    self.limit -= 1
                    self._threshold = min(self._threshold, self.limit)
                    self._credit = 0
                    self.lowest = min(self.lowest, self.limit)
            elif self.limit < self.maximum:
                if self.limit < self._threshold:
                    self.limit += 1
                else:
                    self._credit += 1
                    if self._credit >= self.limit:
                        self._credit = 0
                        self.limit += 1
                self.highest = max(self.highest, self.limit)
            self._cond.notify_all()

    def throttled_now(self) -> None:
        """A model call was just answered 429 (its repeat still runs): halve now, unless this
        congestion has halved the limit already. Call it on the event loop's thread."""
        if self._same_event == 0:
            self._halve()

    def _halve(self) -> None:
        self.limit = max(self.minimum, self.limit // 2)
        self._threshold = self.limit
        self._credit = 0
        self._same_event = self.in_flight  # these were in flight: the same congestion
        self.halvings += 1
        self.lowest = min(self.lowest, self.limit)


def rate_limited(rec: InteractionRecord) -> bool:
    """Did any model call of this interaction get a 429 (on any attempt)?"""
    if rec.metadata.get("error_kind") == "llm_rate_limited":
        return True
    return any(s.attributes.get(sc.ATTEMPT_OUTCOME) == "http_429" for s in rec.spans)


def decide(scores: list[ScoreResult], threshold: float | None) -> tuple[Outcome, str | None]:
    """PASS / FAIL / ERROR from the scores of one repeat.

    Any undecided score is ERROR (never a pass). With a case threshold, the weighted mean score
    decides; otherwise every scorer with weight > 0 must pass (weight 0 scorers only report)."""
    undecided = [s for s in scores if s.passed is None]
    if undecided:
        return Outcome.ERROR, f"{undecided[0].scorer}: {undecided[0].error or undecided[0].reason}"
    counted = [s for s in scores if s.weight > 0]
    if threshold is not None and counted:
        total = sum(s.weight for s in counted)
        mean = sum(s.score * s.weight for s in counted) / total
        return (Outcome.PASS if mean >= threshold else Outcome.FAIL), None
    return (Outcome.PASS if all(s.passed for s in counted) else Outcome.FAIL), None


@dataclass(slots=True)
class _Item:
    suite: Suite
    case: Case
    scorers: list[BuiltScorer]
    repeat: int
    cache: ReplayCache | None

    @property
    def key(self) -> str:
        return f"{self.suite.name}/{self.case.id}#{self.repeat}"


class EvalRunner:
    """Runs eval suites against an agent version.

    Args:
        runtime: the runtime interactions run in (traffic_source "eval"); its store, if any, keeps
            the run and its results.
        cfg: the project config (judge models, prices, the project root).
        concurrency: the most repeats in flight (halved on a 429, grown back on success); None
            (the default) adapts to the provider: from AUTO_START up to AUTO_MAXIMUM.
        repeat: run every case this many times (default: each case's own `repeat`).
        budget_usd: stop scheduling new repeats once agent + judge cost reach this.
        mode: live, record (live, and write every model / tool / judge call to the replay file) or
            replay (answer every call from the replay file: deterministic and free).
        replay_dir: where recordings live (default `<project>/.shipyard/replay`).
        console: where the progress bar goes (default stderr)."""

    def __init__(
        self,
        runtime: Runtime,
        cfg: ShipyardConfig,
        *,
        concurrency: int | None = None,
        repeat: int | None = None,
        budget_usd: float | None = None,
        mode: Mode = "live",
        replay_dir: Path | str | None = None,
        console: Console | None = None,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ShipyardError(f"concurrency must be at least 1, got {concurrency}")
        if repeat is not None and repeat < 1:
            raise ShipyardError(f"repeat must be at least 1, got {repeat}")
        if budget_usd is not None and budget_usd <= 0:
            raise ShipyardError(f"budget_usd must be positive, got {budget_usd}")
        if mode not in MODES:
            raise ShipyardError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.runtime = runtime
        self.cfg = cfg
        self.concurrency = concurrency
        self.repeat = repeat
        self.budget_usd = budget_usd
        self.mode = mode
        self.replay_dir = Path(replay_dir) if replay_dir else cfg.root / ".shipyard" / "replay"
        self.console = console or Console(stderr=True)
        self.judge = Judge(runtime.pool)
        self.limiter: AdaptiveLimiter | None = None
        self._spent = 0.0

    # planning -------------------------------------------------------------------------------------
    def _caches(self, agent: str, suites: Sequence[Suite]) -> dict[str, ReplayCache | None]:
        if self.mode == "live":
            return {s.name: None for s in suites}
        return {s.name: ReplayCache(replay_path(self.replay_dir, agent, s.name), self.mode) for s in suites}

    def _plan(
        self,
        suites: Sequence[Suite],
        caches: dict[str, ReplayCache | None],
        tools: Sequence[str] | None = None,
        tools_of: str = "the agent",
    ) -> list[_Item]:
        problems: list[str] = []
        plans = {}
        for s in suites:
            try:
                plans[s.name] = validate_suite(s, self.cfg, tools=tools, tools_of=tools_of)
            except SuiteError as e:  # its hint is the one given below, once for every suite
                problems.append(e.message)
            except ShipyardError as e:
                problems.append(str(e))
        if problems:
            raise ShipyardError("\n".join(problems), hint="fix these before running; nothing was run")
        items = []
        for s in suites:
            for case in s.cases:
                n = self.repeat or case.repeat
                items += [_Item(s, case, plans[s.name][case.id], r, caches[s.name]) for r in range(n)]
        return items

    # one repeat -----------------------------------------------------------------------------------
    def _read_only(self, agent: str, version: str) -> Callable[[str], bool]:
        """Which of the version's tools are idempotent (may run in a `recorded_tools_only` case)."""
        return idempotent_tools(self.runtime.resolve_version(agent, version).spec.tools)

    def _priced(self, rec: InteractionRecord) -> float:
        """What the model calls would have cost (replayed calls are free; a cost check still counts)."""
        prices = self.runtime.prices
        total = 0.0
        for c in rec.llm_calls:
            usage = Usage(
                c.input_tokens,
                c.output_tokens,
                c.cached_input_tokens,
                c.cache_write_input_tokens,
                c.reasoning_tokens,
            )
            total += call_cost(prices(c.model), usage)
        return total

    async def _run_item(
        self, item: _Item, agent: str, version: str, run_id: str, system_prompt: str
    ) -> tuple[RepeatResult, bool, int]:
        """One repeat: its result, whether a model call met a 429, and how many model calls it made."""
        case = item.case
        res = RepeatResult(
            case_id=case.id,
            category=case.category,
            repeat=item.repeat,
            outcome=Outcome.ERROR,
            suite=item.suite.name,
            tags=list(case.tags),
        )
        simulator: UserSimulator | None = None
        if case.scenario is not None:
            settings = self.cfg.evals.user_simulator
            if settings is None:  # not run here, and never a pass: it says why
                res.outcome, res.error = Outcome.SKIPPED, self._no_simulator()
                return res, False, 0
            scope = item.cache.scope(f"{item.key}/simulator") if item.cache is not None else None
            simulator = UserSimulator(settings, case.scenario, self.judge.handle(scope), agent)
        throttled = False
        calls = 0
        history: list[dict[str, Any]] = [m.model_dump() for m in case.history]
        outputs: list[str] = []
        spans: list[Any] = []  # the trace, for checks on it; dropped after scoring
        priced = 0.0
        session = f"eval-{run_id[:8]}-{abs(hash(item.key)) % 10**10}"
        # an `input` case is its one turn (`case.turns` would build a Turn for it on each read)
        one = case.input is not None and case.conversation is None and case.scenario is None
        turns = None if one else case.turns
        user: str | None = case.input if turns is None else turns[0].user
        t = 0
        while user is not None:
            recorder = item.cache.scope(f"{item.key}/t{t}") if item.cache is not None else None
            fixes = case.tool_results or case.recorded_tools_only
            interceptor = (
                FixedTools(
                    case.tool_results,
                    recorder,
                    only=case.recorded_tools_only,
                    may_run=self._read_only(agent, version),
                )
                if fixes
                else recorder
            )
            ran = await self.runtime.interact(  # scored as it happened; the runtime keeps it masked
                agent,
                user,
                session_id=session,
                version=version,
                traffic_source=TrafficSource.EVAL,
                history=list(history),
                interceptor=interceptor,
                timeout_s=case.timeout_s,
                metadata={
                    "eval_run": run_id,
                    "eval_case": case.id,
                    "eval_suite": item.suite.name,
                    "eval_repeat": item.repeat,
                    "eval_turn": t,
                },
            )
            rec = ran.full
            throttled |= rate_limited(rec)
            calls += len(rec.llm_calls)
            # nothing below keeps `rec` (or its spans): after scoring, only the RepeatResult remains
            res.latency_ms += rec.latency_ms
            res.cost_usd += rec.cost_usd
            res.input_tokens += rec.input_tokens
            res.output_tokens += rec.output_tokens
            res.tool_calls += [
                {"name": c.name, "arguments": c.arguments, "status": c.status, "turn": t}
                for c in rec.tool_calls
            ]
            res.replayed |= bool(rec.metadata.get("replayed"))
            priced += self._priced(rec) if rec.metadata.get("replayed") else rec.cost_usd
            res.status, res.output = rec.status, rec.output
            res.interaction_id, res.trace_id = rec.id, rec.trace_id
            outputs.append(rec.output)
            spans += rec.spans
            if rec.error:
                multi = (turns is not None and len(turns) > 1) or simulator is not None
                res.error = f"turn {t + 1}: {rec.error}" if multi else rec.error
                self._count_simulator(res, simulator)
                return res, throttled, calls
            history += [{"role": "user", "content": user}, {"role": "assistant", "content": rec.output}]
            t += 1
            if simulator is None:
                user = turns[t].user if turns is not None and t < len(turns) else None
                continue
            try:  # one model call per further user turn, until the stop signal or max_turns
                user = await simulator.next_message(history, t)
            except SimulatorError as e:
                res.error = f"user simulator, after turn {t}: {e}"
                self._count_simulator(res, simulator)
                return res, throttled, calls
        self._count_simulator(res, simulator)
        judge_scope = item.cache.scope(f"{item.key}/judge") if item.cache is not None else None
        base = ScoreInput(
            case=case,
            output=res.output,
            status=res.status,
            tool_calls=res.tool_calls,
            latency_ms=res.latency_ms,
            cost_usd=priced,
            system_prompt=system_prompt,
            judge=self.judge.handle(judge_scope),
            replayed=res.replayed,
            turn_outputs=outputs,
            user_input=case.first_input,
            spans=spans,
        )
        # most scorers answer at once: only those that must wait (a judge) are awaited, together
        scores = [
            s.score_now(base if s.turn is None else dataclasses.replace(base, output=outputs[s.turn]))
            for s in item.scorers
        ]
        waiting = [(i, a) for i, a in enumerate(scores) if not isinstance(a, ScoreResult)]
        if waiting:
            for (i, _), got in zip(waiting, await asyncio.gather(*(a for _, a in waiting)), strict=True):
                scores[i] = got
        res.scores = cast(list[ScoreResult], scores)
        for s in res.scores:
            res.judge_cost_usd += s.judge_cost_usd
            res.judge_input_tokens += s.judge_input_tokens
            res.judge_output_tokens += s.judge_output_tokens
        res.outcome, res.error = decide(res.scores, case.threshold)
        return res, throttled, calls

    def _no_simulator(self) -> str:
        where = self.cfg.path or "shipyard.yaml"
        return (
            f"a scenario case needs a user simulator to play its user, and none is configured: set "
            f"evals.user_simulator: {{model: <a key of models>, max_turns: N}} in {where} to run it"
        )

    @staticmethod
    def _count_simulator(res: RepeatResult, simulator: UserSimulator | None) -> None:
        """The simulator's calls are eval overhead, counted with the judge's (never the agent's)."""
        if simulator is not None:
            res.judge_cost_usd += simulator.usage.cost_usd
            res.judge_input_tokens += simulator.usage.input_tokens
            res.judge_output_tokens += simulator.usage.output_tokens

    async def _guarded(
        self, item: _Item, agent: str, version: str, run_id: str, system_prompt: str
    ) -> RepeatResult:
        """One repeat that never raises (except cancellation) and always releases its slot."""
        assert self.limiter is not None
        throttled = False
        per_turn: float | None = None
        try:
            res, throttled, calls = await self._run_item(item, agent, version, run_id, system_prompt)
            if res.outcome is not Outcome.ERROR and res.latency_ms > 0 and calls and not res.replayed:
                per_turn = res.latency_ms / calls  # per model call: cases of 1 and of 4 calls compare
        except Exception as e:  # a bug anywhere in one repeat is that repeat's ERROR, not the run's end
            res = RepeatResult(
                case_id=item.case.id,
                category=item.case.category,
                repeat=item.repeat,
                outcome=Outcome.ERROR,
                suite=item.suite.name,
                tags=list(item.case.tags),
                error=f"{type(e).__name__}: {e}",
            )
        finally:
            await self.limiter.release(throttled=throttled, ms_per_turn=per_turn)
        self._spent += res.cost_usd + res.judge_cost_usd
        return res

    # the run --------------------------------------------------------------------------------------
    async def run(
        self,
        agent: str,
        suites: Sequence[Suite],
        version: str | None = None,
        stage: str | None = None,
        progress: bool = True,
    ) -> EvalRunResult:
        """Run every case repeat of `suites` against a version of `agent`.

        Args:
            agent: the agent's name in shipyard.yaml.
            suites: loaded suites (`load_suite`); every scorer is validated before anything runs.
            version: a version label, hash or id (default: the current version).
            stage: the CI/CD stage the run is for (pre-merge, post-merge, production), if any.
            progress: show a progress bar.

        Returns the EvalRunResult; raises ShipyardError (before running anything) for a bad suite,
        agent or version, a failed warm-up, or a missing recording in replay mode."""
        names = [s.name for s in suites]
        if len(set(names)) != len(names):
            raise ShipyardError(f"two suites share a name ({', '.join(names)}); suite names must differ")
        v = self.runtime.resolve_version(agent, version)
        warm_failed = await self.runtime.warm_up(agent, v.id)  # a lazy start-up is not a case's latency
        if warm_failed:
            raise ShipyardError(
                f"agent {agent!r} is not ready: {warm_failed[v.id]}", hint="nothing was run; fix its warm-up"
            )
        system_prompt = self.runtime.system_prompt(v)
        tools: list[str] | None = v.spec.tools.names()
        if not tools:  # a framework's or a remote agent's tools are not registered with Shipyard
            tools = None
        if tools is None and any(tool_names(c) for s in suites for c in s.cases):
            self.console.print(
                f"[yellow]{v.id} registers no tools with Shipyard (a framework or remote agent): tool "
                "names in must_not_call and trajectories are not checked against its tools[/]"
            )
        caches = self._caches(agent, suites)
        try:
            items = self._plan(suites, caches, tools, v.id)
        except BaseException:
            for c in caches.values():
                if c is not None:
                    c.close(keep=False)
            raise
        result = EvalRunResult(
            run_id=new_id(),
            agent=agent,
            version=v.id,
            stage=stage,
            suites=names,
            mode=self.mode,
            budget_usd=self.budget_usd,
            started_at=time.time(),
        )
        store = self.runtime.store
        if store is not None:
            store.create_eval_run(
                agent,
                v.id,
                names,
                stage,
                run_id=result.run_id,
                config={
                    "concurrency": self.concurrency or "auto",
                    "repeat": self.repeat,
                    "budget_usd": self.budget_usd,
                    "mode": self.mode,
                    "repeats": len(items),
                },
            )
        self.limiter = (
            AdaptiveLimiter(self.concurrency)
            if self.concurrency is not None
            else AdaptiveLimiter(AUTO_MAXIMUM, start=AUTO_START)
        )
        self._spent = 0.0
        remove_listener = add_listener(self._on_llm_event(self.limiter))
        try:
            await self._dispatch(items, result, agent, v.id, system_prompt, progress)
        finally:
            remove_listener()
            complete = len(result.results) == len(items)
            for c in caches.values():  # a recording with unanswered calls does not replace a good one
                if c is None:
                    continue
                keep = complete and not c.unanswered
                c.close(keep=keep)
                if c.mode == "record" and not keep:
                    why = (
                        f"{c.unanswered} call(s) were not answered"
                        if c.unanswered
                        else "the run did not finish"
                    )
                    kept = "the previous recording is kept" if c.path.is_file() else "there is no recording"
                    self.console.print(
                        f"recording not saved: {why}; {kept} ({c.path})", style="yellow", markup=False
                    )
            result.finished_at = time.time()
            order = {(it.suite.name, it.case.id, it.repeat): i for i, it in enumerate(items)}
            result.results.sort(key=lambda r: order.get((r.suite, r.case_id, r.repeat), 0))
            if store is not None:
                status = (
                    EvalRunStatus.INTERRUPTED
                    if result.interrupted
                    else (
                        EvalRunStatus.BUDGET_EXHAUSTED if result.budget_exhausted else EvalRunStatus.FINISHED
                    )
                )
                await asyncio.to_thread(
                    store.finish_eval_run,
                    result.run_id,
                    status,
                    {
                        "counts": result.counts(),
                        "skipped": len(result.skipped),
                        "agent_cost_usd": result.agent_cost_usd,
                        "judge_cost_usd": result.judge_cost_usd,
                    },
                )
        return result

    @staticmethod
    def _on_llm_event(limiter: AdaptiveLimiter) -> Callable[[LLMEvent], None]:
        """A model-client listener that tells the limiter of each 429 as it happens (the client then
        waits its Retry-After), rather than when the repeat ends: the runner backs off while the
        client is still retrying. Any client's 429 counts: it is the provider pushing back."""
        loop = asyncio.get_running_loop()

        def on_event(event: LLMEvent) -> None:
            if event.kind == "retry" and event.reason == "http_429":
                loop.call_soon_threadsafe(limiter.throttled_now)

        return on_event

    async def _dispatch(
        self,
        items: list[_Item],
        result: EvalRunResult,
        agent: str,
        version: str,
        system_prompt: str,
        show: bool,
    ) -> None:
        assert self.limiter is not None
        limiter = self.limiter
        store = self.runtime.store
        unsaved: list[RepeatResult] = []
        pending: set[asyncio.Task[RepeatResult]] = set()
        counts = dict.fromkeys(Outcome, 0)
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[tally]}"),
            console=self.console,
            disable=not show,
            transient=False,
        )
        task_id = progress.add_task(f"eval {agent}", total=len(items), tally="")
        shown_at = 0.0  # when the bar was last updated: at most every PROGRESS_EVERY_S, and at the end

        def show_progress() -> None:
            nonlocal shown_at
            shown_at = time.monotonic()
            tally = (
                f"[green]{counts[Outcome.PASS]} pass[/] [red]{counts[Outcome.FAIL]} fail[/] "
                f"[yellow]{counts[Outcome.ERROR]} error[/]"
                + (f" [dim]{counts[Outcome.SKIPPED]} skipped[/]" if counts[Outcome.SKIPPED] else "")
            )
            progress.update(task_id, completed=len(result.results), tally=tally)

        def done(t: asyncio.Task[RepeatResult]) -> None:
            pending.discard(t)
            if t.cancelled() or t.exception() is not None:
                return
            r = t.result()
            result.results.append(r)
            unsaved.append(r)
            counts[r.outcome] += 1
            if show and (
                len(result.results) == len(items) or time.monotonic() - shown_at >= PROGRESS_EVERY_S
            ):
                show_progress()

        async def flush(force: bool = False) -> None:
            if store is not None and unsaved and (force or len(unsaved) >= STORE_BATCH):
                batch = unsaved[:]
                unsaved.clear()
                await asyncio.to_thread(store.write_eval_results, result.run_id, batch)

        with progress:
            try:
                for item in items:
                    await limiter.acquire()
                    if self.budget_usd is not None and self._spent >= self.budget_usd:
                        await limiter.release(throttled=False)
                        result.budget_exhausted = True
                        break
                    task = asyncio.create_task(
                        self._guarded(item, agent, version, result.run_id, system_prompt)
                    )
                    pending.add(task)
                    task.add_done_callback(done)
                    await flush()
                while pending:
                    await asyncio.wait(set(pending))
                    await flush()
            except (asyncio.CancelledError, KeyboardInterrupt):
                result.interrupted = True
                for t in pending:
                    t.cancel()
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            if show:
                show_progress()  # where it stopped (interrupted, out of budget), as it is
            finished = {(r.suite, r.case_id, r.repeat) for r in result.results}
            result.skipped = [
                it.key for it in items if (it.suite.name, it.case.id, it.repeat) not in finished
            ]
            await flush(force=True)
        if result.budget_exhausted:
            self.console.print(
                f"[yellow]budget of ${self.budget_usd:g} spent (${self._spent:.4f}); "
                f"{len(result.skipped)} repeat(s) not run[/]"
            )
        if result.interrupted:
            self.console.print(
                f"[yellow]interrupted: kept {len(result.results)} result(s); "
                f"{len(result.skipped)} repeat(s) not run[/]"
            )
