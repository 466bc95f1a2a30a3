"""`models:` entries of shipyard.yaml, and the model providers that give them meaning.

    models:
      small:
        provider: openai                 # a registered model provider
        model: gpt-4o-mini               # the keys every provider shares: provider, model, prices, tier
        prices: {input: 0.15, output: 0.6}
        base_url: https://api.openai.com/v1   # the rest are the provider's own settings
        api_key_env: OPENAI_API_KEY

`provider` names a `ModelProvider` registered in `PROVIDERS` (Shipyard's `openai` and `scripted`, and
any plugin's, through the `shipyard.plugins` entry points). The provider brings the pydantic model of
its own settings; they are checked when the file is loaded, and every problem names its field and
line (an unknown provider lists the known ones)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from shipyard.config._schema_base import StrictModel, empty_list, section
from shipyard.plugins import Registry

if TYPE_CHECKING:
    from shipyard.config._schema import ShipyardConfig


class PriceRates(StrictModel):
    """Prices in USD per million tokens of each usage bucket (see `shipyard.types.Usage`)."""

    input: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0, description="defaults to the input price")
    cache_write_input: float | None = Field(
        None, ge=0, description="prompt tokens written to a provider cache; defaults to the input price"
    )
    output: float = Field(0.0, ge=0)
    reasoning: float | None = Field(None, ge=0, description="defaults to the output price")


class DatedPrices(PriceRates):
    """One entry of a dated price list: the prices in effect from `effective` (a UTC date) on."""

    effective: date = Field(description="first UTC day these prices apply, e.g. 2026-01-01")


class ModelPrices(PriceRates):
    """A model's prices, USD per million tokens. Either one set of prices:

        prices: {input: 2.5, cached_input: 1.25, output: 10}

    or a list of dated ones, each in effect from its `effective` day until the next one's:

        prices:
          - {effective: 2026-01-01, input: 3.0, output: 12}
          - {effective: 2026-06-01, input: 2.5, cached_input: 1.25, output: 10}

    A call is priced at the prices in effect when it was made (`rates_at`); with a list, the
    top-level fields hold the prices in effect when the file was loaded."""

    dated: list[DatedPrices] = Field(default_factory=empty_list, description="use the list form instead")

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, data: Any) -> Any:
        return {"dated": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _current(self) -> Self:
        if not self.dated:
            return self
        if self.model_fields_set - {"dated"}:
            raise ValueError(
                "give either one set of prices or a list of dated prices, not both; move "
                f"{', '.join(sorted(self.model_fields_set - {'dated'}))} into the list's entries"
            )
        days = [p.effective for p in self.dated]
        repeated = sorted({d.isoformat() for d in days if days.count(d) > 1})
        if repeated:
            raise ValueError(f"two price entries take effect on {', '.join(repeated)}; keep one per day")
        self.dated.sort(key=lambda p: p.effective)
        today = datetime.now(UTC).date()
        if self.dated[0].effective > today:
            raise ValueError(
                f"no price is in effect today ({today.isoformat()}): the earliest entry takes effect "
                f"on {self.dated[0].effective.isoformat()}; add an entry that is already in effect"
            )
        now = self.rates_at(None)
        for name in PriceRates.model_fields:
            setattr(self, name, getattr(now, name))
        return self

    def rates_at(self, when: float | None) -> PriceRates:
        """The prices in effect at `when` (Unix seconds; None: now). A time before the first dated
        entry gets the first entry's prices."""
        if not self.dated:
            return self
        day = (datetime.now(UTC) if when is None else datetime.fromtimestamp(when, UTC)).date()
        found = self.dated[0]
        for entry in self.dated:
            if entry.effective > day:
                break
            found = entry
        return found


class BreakerConfig(StrictModel):
    """A model's circuit breaker (`models.<key>.breaker`). It counts the attempts of the last
    `window_s` seconds: HTTP 5xx, timeouts and connection errors are failures; 429 (back-pressure) is
    not counted; any other answer is a success. With at least `min_calls` attempts in the window and
    a failed share of at least `failure_rate`, the circuit opens: calls fail fast (the next fallback
    model answers) for `cooldown_s`, then `half_open_probes` calls go out as probes and their results
    close it or open it again. One breaker per endpoint and model, shared by every agent using it."""

    enabled: bool = Field(True, description="false: never stop calling this model")
    failure_rate: float = Field(
        0.5, gt=0, le=1, description="failed share of attempts that opens the circuit"
    )
    window_s: float = Field(60.0, gt=0, description="length of the sliding window, seconds")
    min_calls: int = Field(50, ge=1, description="attempts in the window before it can open")
    cooldown_s: float = Field(30.0, gt=0, description="how long an open circuit fails fast")
    half_open_probes: int = Field(3, ge=1, description="calls let through to test a recovered model")


def _no_identity(settings: Any, cfg: "ShipyardConfig") -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class ModelProvider:
    """A kind of model endpoint: what `provider: <name>` in a `models:` entry means.

    Attributes:
        settings: the pydantic model of the provider's own keys of a `models:` entry (all but
            provider, model, prices and tier). Validated when shipyard.yaml loads; make it reject
            unknown keys (`StrictModel`), and raise ValueError in a validator for combinations.
        client: builds the chat client (a `shipyard.llm.ChatClient`) of one entry:
            `client(key, model_config, cfg)`; `model_config.settings` is an instance of `settings`.
            It may raise a ShipyardError (a missing API key) for the caller to report.
        identity: what of the settings changes the model's answers, as JSON-able data; it is part
            of every agent version id using the model: `identity(settings, cfg) -> dict`. Leave out
            operations (timeouts, retries, prices), which are not a new version. Default: nothing
            beyond the provider and model id.
    """

    settings: type[BaseModel]
    client: Callable[[str, "ModelConfig", "ShipyardConfig"], Any]
    identity: Callable[[Any, "ShipyardConfig"], dict[str, Any]] = _no_identity


PROVIDERS: Registry[ModelProvider] = Registry("model provider", builtin="llm")
"""Model providers by the name `provider:` gives (`shipyard.llm` registers openai and scripted)."""


class ModelConfig(StrictModel):
    """One model endpoint. `provider` names a registered model provider: `openai` speaks
    OpenAI-compatible chat completions over HTTP (OpenAI, Gemini's OpenAI endpoint, vLLM, Ollama,
    `shipyard mock-llm`); `scripted` runs the offline scripted model in-process from a rules file.
    Every key besides provider, model, prices and tier is the provider's own, checked against its
    settings model (`settings` holds the result)."""

    model_config = ConfigDict(extra="allow")

    provider: str = Field("openai", description="a registered model provider: openai, scripted, ...")
    model: str | None = Field(None, description="the provider's model id; defaults to the config key")
    prices: ModelPrices = section()
    tier: Literal["small", "medium", "large"] = "medium"

    _settings: BaseModel | None = PrivateAttr(default=None)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, name: str) -> str:
        PROVIDERS.get(name)  # an unknown name: ValueError listing the known providers
        return name

    @model_validator(mode="after")
    def _provider_settings(self) -> Self:
        spec = PROVIDERS.get(self.provider)
        # a ValidationError here is reported under this entry's path: models.<key>.<setting>, with its line
        self._settings = spec.settings.model_validate(dict(self.model_extra or {}))
        return self

    @property
    def spec(self) -> ModelProvider:
        """The provider's registered spec."""
        return PROVIDERS.get(self.provider)

    @property
    def settings(self) -> Any:
        """The provider's own settings, validated (an instance of its `settings` model)."""
        assert self._settings is not None
        return self._settings


__all__ = [
    "PROVIDERS",
    "BreakerConfig",
    "DatedPrices",
    "ModelConfig",
    "ModelPrices",
    "ModelProvider",
    "PriceRates",
]
