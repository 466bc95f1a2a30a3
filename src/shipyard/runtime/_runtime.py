"""The runtime: loads agent versions and runs interactions through the pipeline."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from opentelemetry.trace import Tracer

from shipyard.agents import interaction_scope
from shipyard.config import ModelPrices, ShipyardConfig
from shipyard.errors import ConfigError
from shipyard.guardrails import NO_GUARDRAILS, AgentGuardrails, build_guardrails
from shipyard.llm import ChatClient, Message, ModelPool
from shipyard.observe import TraceSampler, end_span, get_tracer, log_event, start_span
from shipyard.runtime._at_rest import ContentMask
from shipyard.runtime._build import build_pipeline
from shipyard.runtime._handles import CallInterceptor
from shipyard.runtime._pipeline import Exchange, Pipeline, agent_context, new_session_id
from shipyard.runtime._versions import AgentVersion, agent_versions, pick_version
from shipyard.store import InteractionRecord

if TYPE_CHECKING:
    from shipyard.cache import Caches
    from shipyard.cost import Budgets
    from shipyard.flags import FlagStore
    from shipyard.routing import Routing
    from shipyard.store import BatchWriter, Store

Sink = Callable[[InteractionRecord], None]

WARMUP_TIMEOUT_S = 300.0  # a warm-up still running then has failed (the agent is not ready)


class InteractionOptions(TypedDict, total=False):
    """The keyword arguments of `Runtime.interact` (and `invoke`)."""

    session_id: str | None
    user_id: str | None
    version: str | None
    traffic_source: str
    history: list[Message] | None
    metadata: dict[str, Any] | None
    interceptor: CallInterceptor | None
    timeout_s: float | None
    api_key: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One interaction's record twice: `kept` is what may be stored, logged and exported (content
    masked per `server.content_capture`, the same object the runtime's sinks got); `full` is what
    happened, to answer the user from. Both carry the same (kept) spans."""

    kept: InteractionRecord
    full: InteractionRecord


def _idempotent_tool(tools: Any, name: str) -> bool:
    """Whether tool `name` of a tool set is marked idempotent (a set that cannot say: it is not)."""
    try:
        return bool(getattr(tools.get(name), "idempotent", False))
    except Exception:
        return False


def _flag_file_snapshot(cfg: ShipyardConfig) -> FlagStore | None:
    """The project's flags (`flags.file`) when the file exists, read once (not watched); a broken
    file is a ConfigError, as for the server."""
    from shipyard.flags import project_flags

    if not cfg.resolve(cfg.flags.file).is_file():
        return None
    store, _ = project_flags(cfg, start=False)
    return store


def _caches(cfg: ShipyardConfig) -> Caches | None:
    """The project's caches (`cache.build_caches`); the cache package is imported only when some
    cache is on (an answer cache or a tool's results), the cases where `build_caches` builds any."""
    if not (cfg.cache.answers or cfg.cache.tools):
        return None
    from shipyard.cache import build_caches

    return build_caches(cfg)


def _budgets(cfg: ShipyardConfig, store: Store | None) -> Budgets:
    """The project's budgets (imported only when `budgets:` is on)."""
    from shipyard.cost import make_budgets

    return make_budgets(cfg.budgets, store)


def _routing(cfg: ShipyardConfig) -> Routing:
    """The project's model routing (imported only when `routing:` is on)."""
    from shipyard.routing import Routing

    return Routing(cfg)


class Runtime:
    """Runs interactions for the agents of one project.

    The request pipeline (`self.pipeline`, DESIGN.md §4) is built here, once, from the config, and
    frozen: every entry point that makes a Runtime runs the same steps (`runtime/_build.py`).

    Args:
        cfg: the loaded shipyard.yaml.
        store: where versions are recorded (optional).
        writer: a background batch writer; every record is submitted to it (optional).
        pool: model clients to use (default: built from `cfg.models`).
        tracer: the OpenTelemetry tracer for the interaction spans (default: Shipyard's).
        extend_pipeline: called with the pipeline before it is frozen, to add or replace steps
            (`pipeline.insert_after("run_agent", "my_step", step)`); after that, changes raise.
    """

    def __init__(
        self,
        cfg: ShipyardConfig,
        *,
        store: Store | None = None,
        writer: BatchWriter | None = None,
        pool: ModelPool | None = None,
        tracer: Tracer | None = None,
        extend_pipeline: Callable[[Pipeline], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.writer = writer
        self.pool = pool or ModelPool(cfg)
        self.tracer = tracer or get_tracer()
        self.mask = ContentMask(cfg.server.content_capture.mask_pii)  # redaction at rest
        self._guardrails: dict[str, AgentGuardrails] = {
            name: build_guardrails(agent.guardrails) for name, agent in cfg.agents.items()
        }
        self.caches: Caches | None = _caches(cfg)  # exact, semantic and tool caches (`cache:`)
        # token and money budgets (`budgets:`): counters in this process or in Redis
        self.budgets: Budgets | None = _budgets(cfg, store) if cfg.budgets.on else None
        self.pipeline = build_pipeline(self._guardrails, caches=self.caches, budgets=self.budgets is not None)
        if extend_pipeline is not None:
            extend_pipeline(self.pipeline)
        self.pipeline.freeze()
        self.sinks: list[Sink] = []
        if writer is not None:
            self.sinks.append(writer.submit)
        self._versions: dict[str, list[AgentVersion]] = {}
        self._clients: dict[str, ChatClient] = {}
        self._definitions: dict[str, list[dict[str, Any]]] = {}
        self._system_prompts: dict[str, str] = {}
        self._recorded: set[str] = set()
        self._warmed: set[str] = set()  # version ids whose warm-up hook succeeded
        self._prices: dict[str, ModelPrices] = {}
        self.assigner: Callable[[Exchange], str | None] | None = None  # rollouts set this
        self.sampler: TraceSampler | None = None  # None: every trace keeps its spans
        # feature flags for ctx.flags and guardrail conditions (None: every flag has its default): the
        # project's flag file as it is now, so an eval run, a gate or `shipyard run` sees the flags
        # production does (a kill switch's tool policy included); the server puts its synced store here
        self.flags: FlagStore | None = _flag_file_snapshot(cfg)
        # model routing (`routing:`): None when off, and every agent calls its own configured model
        self.routing: Routing | None = _routing(cfg) if cfg.routing.enabled else None

    # versions -----------------------------------------------------------------------------------
    def versions(self, agent: str) -> list[AgentVersion]:
        """The configured versions of `agent`, current first (loaded once)."""
        if agent not in self._versions:
            loaded = agent_versions(self.cfg, agent)
            self._check_guarded_tools(agent, loaded)
            self._check_cached_tools(agent, loaded)
            self._versions[agent] = loaded
            self.record_versions()
        return self._versions[agent]

    def _check_guarded_tools(self, agent: str, versions: list[AgentVersion]) -> None:
        """Every tool the agent's guardrails name (a tool policy's tools) must be a tool of each
        of its versions: a misspelt name would make a policy that never applies. And each check
        must be usable with each version's prompt bundle (`Guardrail.version_problem`)."""
        g = self.guardrails(agent)
        problems = [
            f"agents.{agent}.guardrails: {problem} (version {v.id})"
            for v in versions
            for check in (*g.input, *g.tool_call, *g.tool_result, *g.output)
            if (problem := check.version_problem(v.bundle.safety_rules if v.bundle is not None else ""))
        ]
        named = g.tool_names()
        for v in versions if named else ():
            known = set(v.spec.tools.names())
            for tool in sorted(named - known):
                problems.append(
                    f"agents.{agent}.guardrails: tool {tool!r} is not a tool of {v.id} "
                    f"(its tools: {', '.join(sorted(known)) or 'none'}); fix the name in the guardrail"
                )
        if problems:
            path = str(self.cfg.path or "shipyard.yaml")
            raise ConfigError(path, sorted(set(problems)))

    def _check_cached_tools(self, agent: str, versions: list[AgentVersion]) -> None:
        """A tool under `cache.tools` that a version has must be idempotent there: caching the
        results of a tool with effects would skip them (and the setting would be a lie)."""
        cached = self.cfg.cache.tools
        problems = [
            f"cache.tools.{name}: tool {name!r} of {v.id} is run by {framework} inside the agent's run, "
            "which does not ask Shipyard's tool cache; remove it from cache.tools"
            for v in versions
            if (framework := getattr(v.spec.tools, "framework", None))
            for name in sorted(cached)
            if name in v.spec.tools.names()
        ]
        problems += [
            f"cache.tools.{name}: tool {name!r} of {v.id} is not idempotent, so its results must not be "
            "cached; mark it idempotent (@tools.tool(idempotent=True)) if the same arguments always give "
            "the same result and change nothing, or remove it from cache.tools"
            for v in versions
            if not getattr(v.spec.tools, "framework", None)
            for name in sorted(cached)
            if name in v.spec.tools.names() and not _idempotent_tool(v.spec.tools, name)
        ]
        if cached and set(self._versions) | {agent} >= set(self.cfg.agents):
            # every agent is loaded now: a name no version has is a setting that does nothing (a typo)
            known = {
                n for vs in [*self._versions.values(), versions] for v in vs for n in v.spec.tools.names()
            }
            problems += [
                f"cache.tools.{name}: no agent has a tool {name!r} (tools: {', '.join(sorted(known)) or 'none'})"
                for name in sorted(set(cached) - known)
            ]
        if problems:
            raise ConfigError(str(self.cfg.path or "shipyard.yaml"), sorted(set(problems)))

    @property
    def unrecorded_versions(self) -> int:
        """Loaded versions not yet written to the store (it was unreachable when they loaded)."""
        return sum(1 for vs in self._versions.values() for v in vs if v.id not in self._recorded)

    def record_versions(self) -> int:
        """Write the loaded versions to the store (`shipyard versions`, the dashboard), once each.
        Blocking, and best effort: while the store is unreachable the versions stay pending and
        the next call writes them; interactions never wait on it. Returns how many were written."""
        if self.store is None:
            return 0
        written = 0
        for v in [v for vs in self._versions.values() for v in vs if v.id not in self._recorded]:
            try:
                self.store.record_agent_version(v.agent, v.id, v.label, v.hash, v.components)
            except Exception as e:  # the store is down: keep it pending, never fail a load or a request
                log_event(
                    "agent_versions_unrecorded",
                    level="warning",
                    pending=self.unrecorded_versions,
                    error=f"{type(e).__name__}: {e}"[:300],
                )
                break
            self._recorded.add(v.id)
            written += 1
        return written

    def resolve_version(self, agent: str, version: str | None = None) -> AgentVersion:
        """The version `version` names (a label, hash or id; None: the current one). No I/O once
        the agent's versions are loaded."""
        return pick_version(self.versions(agent), version)

    def assign(self, ex: Exchange) -> AgentVersion:
        """The version an exchange runs: the one asked for, else the assigner's choice, else current."""
        ref = ex.version_ref
        if ref is None and self.assigner is not None:
            ref = self.assigner(ex)
        return self.resolve_version(ex.agent, ref)

    def guardrails(self, agent: str) -> AgentGuardrails:
        """The agent's configured input and output checks (built once, with the runtime)."""
        return self._guardrails.get(agent, NO_GUARDRAILS)

    # what a version needs, built once -----------------------------------------------------------
    def client_for(self, v: AgentVersion) -> ChatClient:
        key = "|".join([v.model.name, *v.model.fallbacks])
        if key not in self._clients:
            self._clients[key] = self.pool.chain(v.model.name, v.model.fallbacks)
        return self._clients[key]

    def routed_client(self, v: AgentVersion, model: str) -> ChatClient:
        """The client of a routed call to `model`, with the version's fallbacks after it."""
        fallbacks = [f for f in v.model.fallbacks if f != model]
        key = "|".join([model, *fallbacks])
        if key not in self._clients:
            self._clients[key] = self.pool.chain(model, fallbacks)
        return self._clients[key]

    def prices(self, model: str) -> ModelPrices:
        """Prices of a model by config key or provider model id (unknown models cost nothing)."""
        found = self._prices.get(model)
        if found is None:
            models = self.cfg.models
            cfg = models.get(model) or next((m for k, m in models.items() if (m.model or k) == model), None)
            found = self._prices[model] = cfg.prices if cfg is not None else ModelPrices()
        return found

    def tool_definitions(self, v: AgentVersion) -> list[dict[str, Any]]:
        """The agent's tool definitions, with descriptions from the version's prompt bundle."""
        if v.id not in self._definitions:
            defs = copy.deepcopy(v.spec.tools.definitions())
            if v.bundle is not None:
                for d in defs:
                    fn = d["function"]
                    desc = v.bundle.tool_descriptions.get(fn["name"])
                    if desc is None:
                        continue
                    fn["description"] = desc.description
                    props = fn["parameters"].get("properties", {})
                    for arg, text in (desc.parameters or {}).items():
                        if arg in props:
                            props[arg]["description"] = text
            self._definitions[v.id] = defs
        return self._definitions[v.id]

    def system_prompt(self, v: AgentVersion) -> str:
        """The version's rendered system prompt; with a canary token planted (stable per version)
        when the agent has a `system_prompt_leak` guardrail, which then finds it in a leaked answer."""
        if v.id not in self._system_prompts:
            prompt = v.bundle.render(v.prompt_variables) if v.bundle else ""
            output = self.guardrails(v.agent).output
            if prompt and output:  # the output checks' module loads only for an agent that has some
                from shipyard.guardrails import SystemPromptLeak, make_canary, plant_canary

                if any(isinstance(g, SystemPromptLeak) for g in output):
                    prompt, _ = plant_canary(prompt, make_canary(v.hash))
            self._system_prompts[v.id] = prompt
        return self._system_prompts[v.id]

    # warm-up -------------------------------------------------------------------------------------
    async def warm_up(
        self, agent: str, version: str | None = None, *, content_mask: bool = True
    ) -> dict[str, str]:
        """Run the warm-up hook (`AgentSpec.warmup`) of each version of `agent` that has one, or of
        `version` only; once per version (a failed one is tried again on the next call). With
        `content_mask` False the PII detectors of the records' masking are left to load on first
        use (a one-off command: a record is masked after its latency is taken).

        The hook runs inside an interaction scope with a context for its version, so code that
        looks up `current_context()` works; nothing it does is recorded. Returns {version id:
        error} for each hook that raised or ran over WARMUP_TIMEOUT_S (empty: every version is
        ready); each failure is logged, never raised."""
        versions = self.versions(agent) if version is None else [self.resolve_version(agent, version)]
        if content_mask:
            self.mask.warm()  # the first interaction's record does not load the PII detectors
        if self.caches is not None:
            await asyncio.to_thread(self.caches.warm)  # the embedding's weights, before the first question
        failed: dict[str, str] = {}
        for v in versions:
            hook = v.spec.warmup
            if hook is None or v.id in self._warmed:
                continue
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(self._warm(v, hook), WARMUP_TIMEOUT_S)
            except TimeoutError:
                failed[v.id] = f"the warm-up did not finish within {WARMUP_TIMEOUT_S:g}s"
            except Exception as e:
                failed[v.id] = f"the warm-up raised {type(e).__name__}: {e}"[:1000]
            else:
                self._warmed.add(v.id)
                log_event(
                    "agent_warmed_up",
                    agent=agent,
                    version=v.id,
                    duration_ms=(time.perf_counter() - t0) * 1000,
                )
                continue
            log_event("agent_warmup_failed", level="error", agent=agent, version=v.id, error=failed[v.id])
        return failed

    async def _warm(self, v: AgentVersion, hook: Callable[[], Awaitable[None]]) -> None:
        ex = Exchange(
            agent=v.agent,
            user_input="",
            session_id=f"warmup-{new_session_id()}",
            user_id=None,
            traffic_source="warmup",
            history=[],
            metadata={},
            version_ref=v.id,
            interceptor=None,
            timeout_s=None,
        )
        ex.version = v
        ex.root = start_span(self.tracer, f"warm_up {v.agent}")  # never exported: not an interaction
        try:
            with interaction_scope(agent_context(ex, self)):
                await hook()
        finally:
            end_span(ex.root)

    # interactions --------------------------------------------------------------------------------
    async def invoke(
        self, agent: str, user_input: str, **options: Unpack[InteractionOptions]
    ) -> InteractionRecord:
        """Run one interaction (`options` as for `interact`); its record as it is kept (the record
        the runtime's sinks got: users' personal data masked per `server.content_capture`), safe to
        store, log or print. A caller that answers the user or scores the answer uses `interact` and
        its `full` record. Agent errors, model failures and timeouts give a `failed` record, never
        an exception; an unknown agent or version raises NotFoundError."""
        return (await self.interact(agent, user_input, **options)).kept

    async def interact(
        self,
        agent: str,
        user_input: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        version: str | None = None,
        traffic_source: str = "production",
        history: list[Message] | None = None,
        metadata: dict[str, Any] | None = None,
        interceptor: CallInterceptor | None = None,
        timeout_s: float | None = None,
        api_key: str | None = None,
    ) -> Outcome:
        """Run one interaction: the record as it is kept, for sinks a caller adds (the server's
        journal, metrics, logs), and as it happened, to answer from. Agent errors, model failures
        and timeouts give a `failed` record, never an exception; an unknown agent or version raises
        NotFoundError.

        Args:
            agent: the agent's name; user_input: the user's message.
            session_id: the conversation (default: a new one); user_id: the user, if known.
            version: a version label, hash or id (default: the assignment, else the current one).
            traffic_source: production | eval | canary | shadow | replay.
            history: earlier turns as chat messages; metadata: kept on the record (a user's tier,
                say, which tool policies can read).
            interceptor: records or replays model and tool calls (evals).
            timeout_s: overrides the agent's timeout.
            api_key: the caller's API key prefix (the server's), for budgets per API key."""
        ex = Exchange(
            agent=agent,
            user_input=user_input,
            session_id=session_id or new_session_id(),
            user_id=user_id,
            traffic_source=traffic_source,
            history=list(history or []),
            metadata=dict(metadata or {}),
            version_ref=version,
            interceptor=interceptor,
            timeout_s=timeout_s,
            session_supplied=session_id is not None,
            api_key=api_key,
        )
        await self.pipeline.run(ex, self)
        assert ex.record is not None and ex.full is not None
        return Outcome(kept=ex.record, full=ex.full)

    async def aclose(self) -> None:
        if self.budgets is not None:
            await self.budgets.aclose()
        await self.pool.aclose()
        if self.caches is not None:
            await self.caches.aclose()
        if self.routing is not None:
            await self.routing.aclose()
