"""`prompt_injection`: prompt injection and jailbreaks in the user's message and in what tools return.

    input:
      - kind: prompt_injection
    tool_result:
      - kind: prompt_injection        # retrieved documents, web pages, emails: indirect injection
        name: indirect_injection

The scan: normalize (`_normalize`: invisible and bidi characters out, homoglyphs folded, payloads
hidden in tag characters or variation selectors recovered), decode bounded layers (`_decode`:
base64, hex, URL encoding, rot13, leetspeak), then for the text and every hidden or decoded layer the
rules tier (`_rules`) and the classifier (`_classifier`) over overlapping windows of long content.
The score is the highest of them; a rule match scores `RULE_SCORE`. Content the user did not write
(the `tool_result` stage) is held to the stricter `indirect_threshold`, and also matched by the
rules that only make sense there (a note addressed to "the AI reading this").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import Field

from shipyard.config import StrictModel
from shipyard.guardrails._classifier import load_model
from shipyard.guardrails._decode import decoded_layers
from shipyard.guardrails._normalize import normalize
from shipyard.guardrails._registry import guardrail_kind
from shipyard.guardrails._rules import match_rules
from shipyard.guardrails._types import ALLOW, Decision, Guardrail, GuardrailInput, Verdict

WINDOW = 1000  # characters the classifier reads at once
OVERLAP = 250  # shared by neighbouring windows, so a payload cut by one boundary is whole in the next
DOC_WINDOW = 400  # the same for tool results and documents: an injected sentence is less diluted
DOC_OVERLAP = 150
RULE_SCORE = 0.99
DEFAULT_THRESHOLD = 0.5
DEFAULT_INDIRECT_THRESHOLD = 0.4  # see docs/design-notes.md "Guardrail detectors" for how it was set
MAX_CHARS = 200_000  # beyond this, the content is scanned in part and flagged as too long to judge


def windows(text: str, size: int = WINDOW, overlap: int = OVERLAP) -> list[str]:
    """Overlapping windows covering `text` (one window when it fits), cut at spaces when possible."""
    if len(text) <= size:
        return [text]
    out = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size - overlap, end)
            end = cut if cut > start else end
        out.append(text[start:end])
        if end >= len(text):
            break
        nxt = end - overlap
        back = text.find(" ", nxt, end)
        start = max(back + 1 if back != -1 else nxt, start + 1)  # always moves on
    return out


@dataclass(slots=True)
class InjectionScan:
    """What a scan found.

    Attributes:
        score: 0..1, the highest of the rules and the classifier over every layer and window.
        rules: the names of the rules that matched, with the layer (`override_instructions@base64`).
        layers: how the text was read beyond its surface (`hidden`, `base64`, `hex>rot13`, ...).
        signals: what normalization found (`tag_chars`, `invisible`, `homoglyphs`, ...).
        top_layer: the layer that gave the score ('' for the text itself).
    """

    score: float = 0.0
    rules: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    signals: set[str] = field(default_factory=set)
    top_layer: str = ""

    def reason(self) -> str:
        parts = [f"score {self.score:.2f}"]
        if self.rules:
            parts.append("rules " + ", ".join(self.rules))
        elif self.top_layer:
            parts.append(f"classifier on {self.top_layer} layer")
        else:
            parts.append("classifier")
        if self.signals:
            parts.append("evasion " + ", ".join(sorted(self.signals)))
        return "; ".join(parts)


def json_text(text: str) -> str | None:
    """The text a JSON object or array carries (a tool result's usual shape): its keys and string
    values, one per line, escapes decoded; None when `text` is not one. What a tool returns is read as
    the words in it: an injection hides in a string, and the syntax, ids and numbers around it are
    neither evidence nor a place to hide (a number cannot carry words)."""
    head = text.lstrip()[:1]
    if head not in ("{", "["):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in reversed(v.items()):
                stack.append(x)
                stack.append(k)
        elif isinstance(v, list):
            stack.extend(reversed(v))
    return "\n".join(out)


CACHED_TEXTS = 1024  # scans remembered (least recently used out first), of texts up to CACHED_CHARS
CACHED_CHARS = 4096


def scan_injection(text: str, *, indirect: bool = False) -> InjectionScan:
    """Scan `text` for prompt injection (`indirect`: it is a tool result or retrieved document; a JSON
    one is read as the strings in it, `json_text`).

    A scan depends on nothing but its two arguments, and the same texts come back (the knowledge-base
    article, the order a tool returns, a question asked again): the scans of the last `CACHED_TEXTS`
    texts up to `CACHED_CHARS` long are remembered, keyed on the text itself, and a repeat costs a
    dictionary look-up. Each call gets its own copy of the result."""
    if len(text) > CACHED_CHARS:
        return _scan(text, indirect)
    found = _cached_scan(text, indirect)
    return InjectionScan(
        found.score, list(found.rules), list(found.layers), set(found.signals), found.top_layer
    )


def clear_scan_cache() -> None:
    """Forget the remembered scans (benchmarks measure the scan itself with this)."""
    _cached_scan.cache_clear()


def _scan(text: str, indirect: bool) -> InjectionScan:
    result = InjectionScan()
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
        result.signals.add("truncated")
    if indirect:
        text = json_text(text) or text
    candidates: list[tuple[str, str]] = []

    def add(via: str, raw: str) -> None:
        """`raw` normalized, and what it hid (tag characters, variation selectors), as candidates."""
        norm = normalize(raw)
        result.signals |= norm.signals
        candidates.append((via, norm.text))
        for h in norm.hidden:
            candidates.append((f"{via}>hidden" if via else "hidden", normalize(h).text))

    add("", text)
    for via, body in list(candidates):
        for layer in decoded_layers(body):
            add(f"{via}>{layer.via}" if via else layer.via, layer.text)
    result.layers = [via for via, _ in candidates if via]
    model = load_model()
    for via, body in candidates:
        hits = match_rules(body, indirect=indirect)
        if hits:
            result.rules += [f"{h}@{via}" if via else h for h in hits]
            if result.score < RULE_SCORE:
                result.score, result.top_layer = RULE_SCORE, via
        for w in windows(body, *((DOC_WINDOW, DOC_OVERLAP) if indirect else (WINDOW, OVERLAP))):
            p = model.score(w)
            if p > result.score:
                result.score, result.top_layer = p, via
    return result


_cached_scan = functools.lru_cache(maxsize=CACHED_TEXTS)(_scan)


class PromptInjectionOptions(StrictModel):
    """The options of a `prompt_injection` guardrail."""

    threshold: float = Field(
        DEFAULT_THRESHOLD, gt=0, le=1, description="score at or above which the user's message is an attack"
    )
    indirect_threshold: float = Field(
        DEFAULT_INDIRECT_THRESHOLD,
        gt=0,
        le=1,
        description="the same for tool results and retrieved documents (stricter: lower)",
    )
    verdict: Literal["block", "escalate"] = Field("block", description="what an attack gets")
    reply: str | None = Field(
        None, min_length=1, description="what the user gets instead (default: the agent's blocked_reply)"
    )


@guardrail_kind("prompt_injection")
class PromptInjection(Guardrail):
    """Blocks (or escalates) a message or tool result that scores as prompt injection or jailbreak."""

    options = PromptInjectionOptions
    stages = ("input", "tool_result")

    def __init__(self, name: str, options: PromptInjectionOptions) -> None:
        super().__init__(name, options)
        self.opts = options
        self.verdict = Verdict(options.verdict)
        load_model()  # read the weights (and the homoglyph table) when the runtime is built, not
        normalize("\u0430")  # on the first request

    def check(self, inp: GuardrailInput) -> Decision:
        indirect = inp.stage != "input"
        found = scan_injection(inp.text, indirect=indirect)
        threshold = self.opts.indirect_threshold if indirect else self.opts.threshold
        if found.score < threshold:
            return Decision(Verdict.ALLOW, score=found.score) if found.score else ALLOW
        what = "indirect prompt injection" if indirect else "prompt injection"
        return Decision(
            self.verdict, reason=f"{what}: {found.reason()}", text=self.opts.reply, score=found.score
        )
