"""The `shipyard.yaml` schema. Unknown keys are errors: a typo must never be silently ignored."""

import re
from pathlib import Path
from typing import Self

from pydantic import Field, PrivateAttr, field_validator, model_validator

from shipyard.config._adapters import AdapterConfig
from shipyard.config._alerts import AlertsConfig
from shipyard.config._budgets import BudgetsConfig
from shipyard.config._cache import CacheConfig
from shipyard.config._drain import DrainConfig
from shipyard.config._evals import EvalsConfig
from shipyard.config._flags import FlagsConfig
from shipyard.config._gates import GatesConfig
from shipyard.config._guardrails import GuardrailsConfig
from shipyard.config._idempotency import IdempotencyConfig
from shipyard.config._incidents import IncidentsConfig
from shipyard.config._models import ModelConfig
from shipyard.config._pipeline import PipelineConfig
from shipyard.config._rate_limits import RateLimitsConfig
from shipyard.config._reload import ReloadConfig
from shipyard.config._retention import RetentionConfig
from shipyard.config._routing import RoutingConfig, routing_problems
from shipyard.config._schema_base import MODULE_ATTR, StrictModel, empty_list, section
from shipyard.config._shadow import ShadowConfig, shadow_problems

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")  # a DNS name (server.allowed_hosts)


class AgentModelSettings(StrictModel):
    """Which model an agent calls, its fallbacks in order, and sampling settings."""

    name: str = Field(..., description="a key of `models`")
    fallbacks: list[str] = Field(default_factory=empty_list)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)


class AgentVersionConfig(StrictModel):
    """Another version of an agent kept deployable beside the current one (for canaries and A/B).
    Whatever is left out is taken from the agent's own settings."""

    entry: str | None = None
    prompts: str | None = None
    model: AgentModelSettings | None = None

    @field_validator("entry")
    @classmethod
    def _entry_form(cls, v: str | None) -> str | None:
        if v is not None and not MODULE_ATTR.match(v):
            raise ValueError(f"entry must look like 'package.module:function', got {v!r}")
        return v


class AgentConfig(StrictModel):
    """One agent: its code entry point, prompt bundle and model settings make a version."""

    entry: str | None = Field(None, description="module:function of the agent")
    adapter: AdapterConfig | None = None
    prompt_variables: dict[str, str] = Field(default_factory=dict)
    prompts: str | None = Field(None, description="folder of the prompt bundle")
    model: AgentModelSettings
    versions: list[AgentVersionConfig] = Field(default_factory=empty_list)
    timeout_s: float = Field(60.0, gt=0)
    description: str = ""
    guardrails: GuardrailsConfig = section(description="checks on the agent's input and output")

    @field_validator("entry")
    @classmethod
    def _entry_form(cls, v: str | None) -> str | None:
        if v is not None and not MODULE_ATTR.match(v):
            raise ValueError(f"entry must look like 'package.module:function', got {v!r}")
        return v

    @model_validator(mode="after")
    def _entry_or_adapter(self) -> Self:
        if (self.entry is None) == (self.adapter is None):
            raise ValueError("an agent needs exactly one of entry (module:function) or adapter")
        return self


class StoreConfig(StrictModel):
    """Where records go. Empty means SQLite (WAL) under `.shipyard/`;
    `SHIPYARD_DATABASE_URL` overrides it."""

    url: str | None = None
    batch_size: int = Field(256, gt=0)
    flush_interval_ms: int = Field(200, gt=0)
    journal_memory_records: int = Field(
        10_000,
        ge=0,
        description="most records waiting for the store (the newest) that the server holds in memory as "
        "well as in its journal; older ones wait in the journal file only and are read back from it when "
        "the store takes records again. While the store takes records but half as many wait for it, "
        "answers wait until a quarter do (back-pressure: the journal stays bounded when the store is "
        "slower than traffic)",
    )
    journal_memory_bytes: int = Field(
        16 * 1024 * 1024,
        ge=0,
        description="the same bound in bytes of those records' journal lines (their JSON)",
    )
    retention: RetentionConfig = section(
        description="delete the oldest interactions by age and by size (none by default)",
    )


class ContentCaptureConfig(StrictModel):
    """What of users' content (inputs, outputs, tool arguments and results) is kept.

    Off (the default): the store, the journal, spans, OTLP export and the dashboard keep content
    with personal data replaced by placeholders (`[EMAIL]`, `[PHONE]`, ...); logs keep only its
    length. `enabled: true`: logs carry the content too, still masked. `unmasked_pii: true` (with
    `enabled`) keeps personal data as it came, everywhere. `content_capture: true` is short for
    `{enabled: true}`. Truthy exactly when enabled."""

    enabled: bool = Field(False, description="keep message content and tool arguments in logs too")
    unmasked_pii: bool = Field(
        False, description="keep personal data unmasked in records, spans and logs (needs enabled)"
    )

    @model_validator(mode="after")
    def _unmasked_needs_enabled(self) -> Self:
        if self.unmasked_pii and not self.enabled:
            raise ValueError("unmasked_pii needs enabled: true (content capture on) as well")
        return self

    @property
    def mask_pii(self) -> bool:
        """Whether personal data is masked in what is kept."""
        return not self.unmasked_pii

    def __bool__(self) -> bool:
        return self.enabled


class ServerConfig(StrictModel):
    """`shipyard serve` settings."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    content_capture: ContentCaptureConfig = section(
        description="what of users' content is kept (true/false, or {enabled, unmasked_pii})",
    )
    max_body_bytes: int = Field(1_000_000, gt=0)
    max_metadata_bytes: int = Field(
        16_384, gt=0, description="largest `metadata` a request may carry, as JSON (stored with each record)"
    )
    max_history_messages: int = Field(
        200, gt=0, description="most messages a chat completion request may carry"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a connection that has not sent a request's line and headers within this is closed",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="a request body not received in full within this after its headers is answered 408 "
        "and its connection closed",
    )
    keep_alive_s: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    max_connections: int = Field(
        1000,
        ge=1,
        description="most connections open at once (idle ones too) and requests in progress; a request "
        "beyond either is answered 503 at once",
    )
    trace_sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="share of ordinary traces kept; errors, blocks, outlier costs and "
        "negative feedback are always kept",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP collector for traces (OTEL_EXPORTER_OTLP_ENDPOINT also works)"
    )
    otlp_file: str | None = Field(
        None,
        min_length=1,
        description="a file (relative to the project) the server appends kept traces to, in "
        "OpenTelemetry's OTLP file-exporter format (JSON Lines of OTLP/JSON), e.g. for a collector's "
        "otlpjsonfile receiver; beside otlp_endpoint or instead of it",
    )
    otlp_file_max_mb: float = Field(
        100,
        gt=0,
        allow_inf_nan=False,
        description="size in MiB past which otlp_file is renamed <file>.1 (older backups shift to .2, .3, "
        "…) and a new file started, as the OpenTelemetry Collector's rotation.max_megabytes; a batch is "
        "never split across files",
    )
    otlp_file_backups: int = Field(
        3,
        ge=1,
        le=1000,
        description="how many rotated otlp_file backups are kept (<file>.1 newest … <file>.N oldest); "
        "the oldest beyond this is removed, as the collector's rotation.max_backups",
    )
    require_gate: bool | None = Field(
        None,
        description="serve an agent's configured version as production traffic only when it passed (or "
        "was approved at) its production gate, when no deployment chooses a version. Default: on when "
        "bound to anything but loopback, or once the agent has a deployment or a production gate run; "
        "false turns it off on loopback only",
    )
    idempotency: IdempotencyConfig = section()
    reload: ReloadConfig = section()
    drain: DrainConfig = section()
    allowed_hosts: list[str] = Field(
        default_factory=empty_list,
        description="names the server answers to in the Host header besides IP addresses, localhost "
        "and its bind address: `api.example.com`, or `*.example.com` for any subdomain",
    )

    @field_validator("otlp_file_max_mb", "otlp_file_backups", mode="before")
    @classmethod
    def _rotation_number(cls, v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(
                f"must be a plain positive number (MiB for the size, e.g. 100; a count of files "
                f"for the backups, e.g. 3), not {v!r}"
            )
        return v

    @field_validator("content_capture", mode="before")
    @classmethod
    def _capture_shorthand(cls, v: object) -> object:
        return {"enabled": v} if isinstance(v, bool) else v

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        for name in names:
            bare = name[2:] if name.startswith("*.") else name
            if not _HOST_NAME.match(bare):
                raise ValueError(
                    f"{name!r} is not a host name: write a name like api.example.com or *.example.com "
                    "(no scheme, port or path; '*' alone would turn off the DNS-rebinding check)"
                )
        return [n.lower() for n in names]


class ShipyardConfig(StrictModel):
    """The whole `shipyard.yaml`."""

    project: str = "shipyard"
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    store: StoreConfig = section()
    server: ServerConfig = section()
    gates: GatesConfig = section()
    evals: EvalsConfig = section()
    alerts: AlertsConfig = section()
    flags: FlagsConfig = section()
    pipeline: PipelineConfig = section()
    incidents: IncidentsConfig = section()
    shadow: ShadowConfig = section()
    routing: RoutingConfig = section()
    budgets: BudgetsConfig = section()
    cache: CacheConfig = section()
    rate_limits: RateLimitsConfig = section()

    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        problems: list[str] = []
        for name, agent in self.agents.items():
            settings = [agent.model, *(v.model for v in agent.versions if v.model)]
            for s in settings:
                for ref in [s.name, *s.fallbacks]:
                    if ref not in self.models:
                        known = ", ".join(sorted(self.models)) or "none"
                        problems.append(
                            f"agent {name!r} uses model {ref!r}, not defined under models (known: {known})"
                        )
        simulator = self.evals.user_simulator
        if simulator is not None and simulator.model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            problems.append(
                f"evals.user_simulator uses model {simulator.model!r}, not defined under models (known: {known})"
            )
        problems += routing_problems(self)
        problems += shadow_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def root(self) -> Path:
        """The project folder: relative paths in the file are relative to it."""
        return self._root

    @property
    def path(self) -> Path | None:
        return self._path

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else (self._root / p)
