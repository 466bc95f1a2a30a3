"""Each provider's way of reporting token usage, read into the normalized buckets of `Usage`.

Written once, here; model clients call these and nothing else parses usage.

| provider | prompt tokens | cache read | cache write | output | reasoning |
| --- | --- | --- | --- | --- | --- |
| OpenAI chat completions | `prompt_tokens` (all) | `prompt_tokens_details.cached_tokens` (part of it) | - | `completion_tokens` (all) | `completion_tokens_details.reasoning_tokens` (part of it) |
| OpenAI responses | `input_tokens` (all) | `input_tokens_details.cached_tokens` | - | `output_tokens` (all) | `output_tokens_details.reasoning_tokens` |
| Anthropic messages | `input_tokens` (uncached only) | `cache_read_input_tokens` (beside it) | `cache_creation_input_tokens` (beside it) | `output_tokens` | - |
| Gemini `usageMetadata` | `promptTokenCount` (all) + `toolUsePromptTokenCount` | `cachedContentTokenCount` (part of it) | - | `candidatesTokenCount` | `thoughtsTokenCount` (beside it) |

In `Usage` every bucket is a part of its total: `input_tokens` counts every prompt token (cache
reads and writes included) and `output_tokens` every generated one (reasoning included), so a
cached token is counted once and priced once (`shipyard.cost.call_cost`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipyard.types import Usage


def _n(raw: Mapping[str, Any] | None, key: str) -> int:
    """A token count from a usage object: missing, null or unreadable is 0, never negative."""
    if not raw:
        return 0
    value = raw.get(key)
    if type(value) is int:  # the usual answer, first (by exact type: a bool is not one)
        return value if value > 0 else 0
    if isinstance(value, bool):
        return 0
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _details(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    # a JSON object is a dict: checked by exact type first, as an ABC's isinstance is a Python call
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _usage(input_total: int, output_total: int, read: int, write: int, reasoning: int) -> Usage:
    """A Usage whose parts never exceed their totals (a provider's inconsistent numbers are clamped)."""
    read = min(read, input_total)
    write = min(write, input_total - read)
    return Usage(input_total, output_total, read, write, min(reasoning, output_total))


def usage_from_openai_chat(raw: Mapping[str, Any] | None) -> Usage:
    """OpenAI chat completions `usage` (also Gemini's and other OpenAI-compatible endpoints)."""
    if not raw:
        return Usage()
    prompt, completion = _n(raw, "prompt_tokens"), _n(raw, "completion_tokens")
    cached = _n(_details(raw, "prompt_tokens_details"), "cached_tokens")
    reasoning = _n(_details(raw, "completion_tokens_details"), "reasoning_tokens")
    return _usage(prompt, completion, cached, 0, reasoning)


def usage_from_openai_responses(raw: Mapping[str, Any] | None) -> Usage:
    """OpenAI responses API `usage`."""
    if not raw:
        return Usage()
    cached = _n(_details(raw, "input_tokens_details"), "cached_tokens")
    reasoning = _n(_details(raw, "output_tokens_details"), "reasoning_tokens")
    return _usage(_n(raw, "input_tokens"), _n(raw, "output_tokens"), cached, 0, reasoning)


def usage_from_anthropic(raw: Mapping[str, Any] | None) -> Usage:
    """Anthropic messages `usage`: its `input_tokens` leaves out cache reads and writes, which are
    added here so `Usage.input_tokens` counts every prompt token."""
    if not raw:
        return Usage()
    read, write = _n(raw, "cache_read_input_tokens"), _n(raw, "cache_creation_input_tokens")
    return _usage(_n(raw, "input_tokens") + read + write, _n(raw, "output_tokens"), read, write, 0)


def usage_from_gemini(raw: Mapping[str, Any] | None) -> Usage:
    """Gemini `usageMetadata`: thinking tokens are reported beside the candidates' and billed as
    output, so they are added to `output_tokens`; tool-use prompt tokens are prompt tokens."""
    if not raw:
        return Usage()
    thoughts = _n(raw, "thoughtsTokenCount")
    prompt = _n(raw, "promptTokenCount") + _n(raw, "toolUsePromptTokenCount")
    output = _n(raw, "candidatesTokenCount") + thoughts
    return _usage(prompt, output, _n(raw, "cachedContentTokenCount"), 0, thoughts)


USAGE_FORMATS: dict[str, Callable[[Mapping[str, Any] | None], Usage]] = {
    "openai": usage_from_openai_chat,
    "openai_responses": usage_from_openai_responses,
    "anthropic": usage_from_anthropic,
    "gemini": usage_from_gemini,
}
"""The usage formats by name."""


def usage_format(raw: Mapping[str, Any]) -> str:
    """The format of a usage object, from the keys only one format has (OpenAI chat's
    `prompt_tokens`, Gemini's camelCase counts, Anthropic's cache counts, the responses API's
    details); a bare `input_tokens`/`output_tokens` pair reads the same either way."""
    if "prompt_tokens" in raw or "completion_tokens" in raw:
        return "openai"
    if "promptTokenCount" in raw or "candidatesTokenCount" in raw or "totalTokenCount" in raw:
        return "gemini"
    if "cache_read_input_tokens" in raw or "cache_creation_input_tokens" in raw:
        return "anthropic"
    return "openai_responses"


def parse_usage(raw: Mapping[str, Any] | None, format: str | None = None) -> Usage:
    """A provider's usage object as `Usage`.

    Args:
        raw: the `usage` (or Gemini's `usageMetadata`) object of a response; None or empty is no usage.
        format: one of `USAGE_FORMATS` (openai, openai_responses, anthropic, gemini); None: told
            from the keys (`usage_format`)."""
    if not raw or not isinstance(raw, Mapping):
        return Usage()
    name = format or usage_format(raw)
    try:
        reader = USAGE_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown usage format {name!r}; known: {', '.join(USAGE_FORMATS)}") from None
    return reader(raw)
