"""The offline scripted model: deterministic answers from a rules file, with token usage and latency.

The rules format (first matching rule answers; every condition under `when` must hold); users read it
in `shipyard mock-llm --help` (cli/mock_llm.py), which a test keeps naming every field:

```yaml
base: support.yaml                        # optional: another rules file (relative to this one) whose
                                          # rules follow this file's; its default and prompt_cache
                                          # apply unless this file sets its own
prompt_cache: false                       # report a repeated system prompt as cached input tokens
default: "Sorry, I can't help with that."  # when no rule matches (text, or a mapping like a rule body)
rules:
  - name: lookup-order                     # optional, for errors and debugging
    when:
      user: '(?i)order\\s*#?(?P<order_id>\\d{5})'  # regex searched in the last user message
      system: '(?i)check return eligibility'      # regex searched in the system prompt(s)
      not_user: '...'                      # must NOT match the last user message
      not_system: '...'                    # must NOT match the system prompt
      last_tool: lookup_order              # the last message is a result of this tool (regex fullmatch)
      tool_result: '"eligible":\\s*true'    # regex searched in the last tool result
      fresh: true                          # no tool results since the last user message (false: after tools)
      called: [lookup_order]               # called since the last user message
      not_called: [process_refund]         # not called since the last user message
      tools_available: [process_refund]    # the request offers these tools
    reply: "Order {order_id} is {result[status]}."
    tool_calls:
      - name: lookup_order
        arguments: {order_id: "{order_id}"}
    latency_ms: 40
```

Templates (`reply` and string values in `arguments`) are `str.format_map` over the named groups
of every matched regex, `result` (the last tool result, parsed as JSON when it is JSON) and `user`
(the last user message). Missing keys render as empty text; a template never raises.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import string
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Unpack

import orjson
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from shipyard.config import Lines, StrictModel, empty_list, format_validation_error, load_yaml_with_lines
from shipyard.errors import ConfigError
from shipyard.llm._types import Attempt, ChatOptions, ChatResponse, LLMError, Message, ToolCall, Usage

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
DEFAULT_REPLY = "Sorry, I can't help with that."
_REGEX_FIELDS = ("user", "system", "not_user", "not_system", "last_tool", "tool_result")


@functools.lru_cache(maxsize=4096)
def count_tokens(text: str) -> int:
    """The scripted model's tokenizer: words and single punctuation marks. Remembered per text: a
    conversation sends its system prompt and earlier turns again with every call (a 4,000-character
    prompt is ~0.3 ms to split), and a string's hash is computed once per string object."""
    return len(TOKEN_RE.findall(text)) if text else 0


def message_text(message: Message) -> str:
    """The text of a message's content (a string, or the text of its content parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


# templates ---------------------------------------------------------------------------------------
class _JsonDict(dict[str, Any]):
    """A tool result mapping: missing keys are empty text; `{result}` renders as JSON."""

    def __missing__(self, key: str) -> str:
        return ""

    def __format__(self, spec: str) -> str:
        return orjson.dumps(self).decode() if not spec else format(str(self), spec)


class _JsonList(list[Any]):
    def __getitem__(self, i: Any) -> Any:
        try:
            return super().__getitem__(i)
        except (IndexError, TypeError):
            return ""

    def __format__(self, spec: str) -> str:
        return orjson.dumps(self).decode() if not spec else format(str(self), spec)


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return _JsonDict({str(k): _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return _JsonList(_wrap(v) for v in value)
    return "" if value is None else value


class _Context(dict[str, Any]):
    """A template's fields; `result` (the last tool result, parsed) is read from `tool_content` only
    when a template asks for it: most replies and arguments do not."""

    tool_content: str | None = None

    def __missing__(self, key: str) -> Any:
        if key != "result" or self.tool_content is None:
            return ""
        try:
            value: Any = _wrap(orjson.loads(self.tool_content))
        except orjson.JSONDecodeError:
            value = self.tool_content
        self["result"] = value
        return value


class _LenientFormatter(string.Formatter):
    """Used only when the fast `format_map` failed: every bad field renders as empty text."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            return "", field_name

    def format_field(self, value: Any, format_spec: str) -> Any:
        try:
            return super().format_field(value, format_spec)
        except (TypeError, ValueError):
            return str(value)


_LENIENT = _LenientFormatter()


def render(template: str, ctx: dict[str, Any]) -> str:
    """`template.format_map(ctx)` that never raises: missing keys are empty; a malformed template
    (e.g. a lone brace) is returned as written."""
    if "{" not in template and "}" not in template:
        return template
    try:
        return template.format_map(ctx)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        try:
            return _LENIENT.vformat(template, (), ctx)
        except (ValueError, TypeError):
            return template


def _render_value(value: Any, ctx: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, ctx)
    if isinstance(value, dict):
        return {k: _render_value(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, ctx) for v in value]
    return value


# the rules file ----------------------------------------------------------------------------------
class ToolCallSpec(StrictModel):
    """A tool call a rule makes; string values in `arguments` are templates."""

    name: str = Field(..., min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class RuleBody(StrictModel):
    """What the model answers: text, tool calls, or both."""

    reply: str | None = None
    tool_calls: list[ToolCallSpec] = Field(default_factory=empty_list)
    latency_ms: float | None = Field(None, ge=0)
    finish_reason: str | None = Field(None, description="default: tool_calls when there are any, else stop")

    @model_validator(mode="after")
    def _says_something(self) -> RuleBody:
        if self.reply is None and not self.tool_calls:
            raise ValueError("needs reply or tool_calls (or both)")
        return self


class When(StrictModel):
    """The conditions of a rule; all must hold. Regexes are compiled once, at load."""

    user: str | None = None
    system: str | None = None
    not_user: str | None = None
    not_system: str | None = None
    last_tool: str | None = None
    tool_result: str | None = None
    fresh: bool | None = None
    called: list[str] = Field(default_factory=empty_list)
    not_called: list[str] = Field(default_factory=empty_list)
    tools_available: list[str] = Field(default_factory=empty_list)

    _patterns: dict[str, re.Pattern[str]] = PrivateAttr(default_factory=dict)

    @field_validator(*_REGEX_FIELDS)
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression ({e}): {v!r}") from None
        return v

    @field_validator("called", "not_called", "tools_available", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def model_post_init(self, __context: Any) -> None:
        self._patterns = {
            f: re.compile(getattr(self, f)) for f in _REGEX_FIELDS if getattr(self, f) is not None
        }


class Rule(RuleBody):
    """One rule: when its conditions hold, its body answers."""

    name: str | None = None
    when: When = Field(default_factory=When)


class Rules(StrictModel):
    """A whole rules file."""

    base: str | None = Field(None, description="a rules file whose rules follow these (relative path)")
    prompt_cache: bool = False
    default: RuleBody = Field(default_factory=lambda: RuleBody(reply=DEFAULT_REPLY))
    rules: list[Rule] = Field(default_factory=empty_list)

    _source: str = PrivateAttr(default="<rules>")

    @field_validator("default", mode="before")
    @classmethod
    def _text_default(cls, v: Any) -> Any:
        return {"reply": v} if isinstance(v, str) else v

    @property
    def source(self) -> str:
        """Where the rules came from (a file path, or `<rules>` when built in code)."""
        return self._source


_RULE_LOC = re.compile(r"^(line \d+: )?(rules\.(\d+)[\w.]*): ")


def _name_rules(problems: list[str], data: Any) -> list[str]:
    """Add each rule's name to problems located inside it."""
    rules = data.get("rules") if isinstance(data, dict) else None
    out = []
    for p in problems:
        m = _RULE_LOC.match(p)
        if m and isinstance(rules, list) and int(m.group(3)) < len(rules):
            rule = rules[int(m.group(3))]
            name = rule.get("name") if isinstance(rule, dict) else None
            label = f"rule {name!r}" if name else f"rule #{int(m.group(3)) + 1} (unnamed)"
            p = f"{m.group(1) or ''}{m.group(2)} ({label}): {p[m.end() :]}"
        out.append(p)
    return out


def parse_rules(data: Any, source: str | Path = "<rules>", lines: Lines | None = None) -> Rules:
    """Validate rules given as data (e.g. a dict in a test). Raises ConfigError naming the source,
    each problem's line (when `lines` is given), rule and field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            str(source),
            [
                "line 1: a rules file must be a mapping with `rules:` "
                "(and optional `default:`, `prompt_cache:`)"
            ],
        )
    try:
        rules = Rules.model_validate(data)
    except ValidationError as e:
        raise ConfigError(
            str(source),
            _name_rules(format_validation_error(e, lines or {}), data),
            hint="`shipyard mock-llm --help` describes the rules format",
        ) from None
    rules._source = str(source)
    return rules


def rules_files(path: str | Path) -> list[Path]:
    """A rules file and the files it builds on (`base:`), in order: what its answers depend on."""
    files: list[Path] = []
    p: Path | None = Path(path)
    while p is not None and p.is_file() and p.resolve() not in {f.resolve() for f in files}:
        files.append(p)
        data, _ = load_yaml_with_lines(p)
        base = data.get("base") if isinstance(data, dict) else None
        p = p.parent / base if isinstance(base, str) and base else None
    return files


def load_rules(path: str | Path, _seen: tuple[Path, ...] = ()) -> Rules:
    """Load and validate a rules file (and the file it builds on, `base:`); errors name the file,
    line, rule and field."""
    p = Path(path)
    data, lines = load_yaml_with_lines(p)
    rules = parse_rules(data, p, lines)
    if rules.base is None:
        return rules
    base_path = p.parent / rules.base
    if base_path.resolve() in {s.resolve() for s in (*_seen, p)}:
        raise ConfigError(str(p), [f"base: {rules.base} builds on itself (a cycle of base: files)"])
    if not base_path.is_file():
        raise ConfigError(
            str(p), [f"base: no rules file {base_path}"], hint="base is a path relative to this rules file"
        )
    base = load_rules(base_path, (*_seen, p))
    merged = Rules(
        prompt_cache=rules.prompt_cache if "prompt_cache" in rules.model_fields_set else base.prompt_cache,
        default=rules.default if "default" in rules.model_fields_set else base.default,
        rules=[*rules.rules, *base.rules],
    )
    merged._source = str(p)
    return merged


# matching ----------------------------------------------------------------------------------------
class _View:
    """What rules look at in one request, computed once."""

    __slots__ = ("called", "fresh", "last_tool", "system", "tool_content", "tools_available", "user")

    def __init__(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> None:
        last_user = -1
        systems: list[str] = []
        for i, m in enumerate(messages):
            role = m.get("role")
            if role == "user":
                last_user = i
            elif role in ("system", "developer"):
                systems.append(message_text(m))
        self.user: str | None = message_text(messages[last_user]) if last_user >= 0 else None
        self.system = "\n".join(systems)
        self.called: set[str] = set()
        ids: dict[str, str] = {}
        self.tool_content: str | None = None
        self.fresh = True
        for m in messages[last_user + 1 :]:
            role = m.get("role")
            if role == "assistant":
                for tc in m.get("tool_calls") or ():
                    fname = (tc.get("function") or {}).get("name") or ""
                    self.called.add(fname)
                    if tc.get("id"):
                        ids[tc["id"]] = fname
            elif role == "tool":
                self.fresh = False
                self.tool_content = message_text(m)
        self.last_tool: str | None = None
        if messages and messages[-1].get("role") == "tool":
            last = messages[-1]
            self.last_tool = last.get("name") or ids.get(last.get("tool_call_id") or "", "")
        self.tools_available = {(t.get("function") or {}).get("name") or t.get("name") for t in tools or ()}


class _Cond:
    """A rule's conditions as plain values, read once from its `When` (a pydantic model, whose private
    `_patterns` costs a lookup through `__getattr__` on every read): what `_matches` tests per request."""

    __slots__ = ("called", "fresh", "last_tool", "not_called", "not_system", "not_user", "texts", "tools")

    def __init__(self, when: When) -> None:
        pats = when._patterns
        self.fresh = when.fresh
        self.called = frozenset(when.called)
        self.not_called = frozenset(when.not_called)
        self.tools = frozenset(when.tools_available)
        self.last_tool = pats.get("last_tool")
        self.not_user = pats.get("not_user")
        self.not_system = pats.get("not_system")
        self.texts = tuple((f, pats[f]) for f in ("user", "system", "tool_result") if f in pats)


def _matches(cond: _Cond, view: _View, groups: dict[str, Any]) -> bool:
    if cond.fresh is not None and cond.fresh != view.fresh:
        return False
    if cond.called and not view.called.issuperset(cond.called):
        return False
    if cond.not_called and not view.called.isdisjoint(cond.not_called):
        return False
    if cond.tools and not view.tools_available.issuperset(cond.tools):
        return False
    if cond.last_tool is not None and (
        view.last_tool is None or not cond.last_tool.fullmatch(view.last_tool)
    ):
        return False
    if cond.not_user is not None and view.user is not None and cond.not_user.search(view.user):
        return False
    if cond.not_system is not None and cond.not_system.search(view.system):
        return False
    for field, pat in cond.texts:
        text = view.user if field == "user" else view.system if field == "system" else view.tool_content
        m = pat.search(text) if text is not None else None
        if m is None:
            return False
        for k, v in m.groupdict().items():
            groups[k] = "" if v is None else v
    return True


# options -----------------------------------------------------------------------------------------
ToolChoice = str | tuple[str, str] | None  # None (auto), "none", "required", ("function", name)


def _tool_choice(value: Any) -> ToolChoice:
    """A request's `tool_choice` in a form easy to test; ValueError for one a provider would refuse."""
    if value is None or value == "auto":
        return None
    if value in ("none", "required"):
        return str(value)
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if isinstance(name, str) and name:
            return ("function", name)
    raise ValueError(
        "tool_choice must be 'auto', 'none', 'required' or "
        f"{{'type': 'function', 'function': {{'name': ...}}}}, got {value!r}"
    )


def _accept(choice: ToolChoice) -> Callable[[RuleBody], bool] | None:
    """Which rules may answer under a tool choice (None: any)."""
    if choice is None:
        return None
    if choice == "none":
        return lambda body: not body.tool_calls
    if choice == "required":
        return lambda body: bool(body.tool_calls)
    name = choice[1]
    return lambda body: any(c.name == name for c in body.tool_calls)


def _apply_tool_options(
    calls: list[ToolCall], choice: ToolChoice, parallel: bool | None, prior: int
) -> list[ToolCall]:
    """The tool calls left after `tool_choice` and `parallel_tool_calls`."""
    if choice == "none":
        return []
    if isinstance(choice, tuple):
        name = choice[1]
        calls = [c for c in calls if c.name == name] or [ToolCall(f"call_{prior + 1}", name, {}, "{}")]
    if parallel is False:
        return calls[:1]
    return calls


def _cut_at_stop(text: str | None, stop: str | list[str] | None) -> str | None:
    """The text up to the first stop sequence (the same object when none occurs)."""
    if not text or not stop:
        return text
    cut = min(
        (i for seq in ([stop] if isinstance(stop, str) else stop) if seq and (i := text.find(seq)) >= 0),
        default=-1,
    )
    return text[:cut] if cut >= 0 else text


class ScriptedModel:
    """A deterministic, offline chat model driven by a rules file (format: this module's docstring).

    Args:
        rules: a `Rules` object, or the path of a rules file.
        name: what Shipyard calls this model (the config key).
        model: the model id it answers as (`gen_ai.request.model`; the `model` of its models: entry),
            by default `name`.
        latency_ms: simulated latency per call; a rule's own `latency_ms` replaces it.
        provider: the `gen_ai.provider.name` to report.

    Usage: input tokens count every message's content, the assistant tool calls in the
    conversation and the JSON of the tool definitions; output tokens count the reply and the JSON
    of the tool calls (`count_tokens`). With `prompt_cache: true`, a system prompt this instance
    has seen before is reported as cached input tokens.
    """

    def __init__(
        self,
        rules: Rules | str | Path,
        *,
        name: str = "scripted",
        latency_ms: float = 0.0,
        provider: str = "scripted",
        model: str | None = None,
    ) -> None:
        self.rules = rules if isinstance(rules, Rules) else load_rules(rules)
        self.name = name
        self.model = model or name
        self.provider = provider
        self.latency_ms = latency_ms
        self._seen_systems: set[bytes] = set()
        self._tool_tokens: dict[bytes, int] = {}
        self._conds: dict[int, tuple[When, _Cond]] = {}  # each rule's conditions, read once
        self._calls = 0

    def __repr__(self) -> str:
        return f"ScriptedModel(name={self.name!r}, rules={self.rules.source!r})"

    def choose(
        self, messages: list[Message], tools: list[dict[str, Any]] | None = None
    ) -> tuple[RuleBody, str]:
        """The rule that answers (or the default) and its name (`default` for the default)."""
        view = _View(messages, tools)
        body, name, _ = self._choose(view)
        return body, name

    def _choose(
        self, view: _View, accept: Callable[[RuleBody], bool] | None = None
    ) -> tuple[RuleBody, str, dict[str, Any]]:
        conds = self._conds
        for i, rule in enumerate(self.rules.rules):
            if accept is not None and not accept(rule):
                continue
            when = rule.when
            known = conds.get(id(when))
            if known is None or known[0] is not when:
                known = conds[id(when)] = (when, _Cond(when))
            groups: dict[str, Any] = {}
            if _matches(known[1], view, groups):
                return rule, rule.name or f"rules[{i}]", groups
        return self.rules.default, "default", {}

    def respond(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        options: ChatOptions | None = None,
    ) -> tuple[ChatResponse, float]:
        """The answer without waiting: the response and the latency (seconds) it should take.

        Of the options, the ones a deterministic model can honour are: `tool_choice` ("none": only
        rules without tool calls answer, and no call is made; "required": a rule with tool calls
        answers when one matches; a named function: a rule calling it answers, and only its calls are
        kept, or the model calls it with no arguments), `parallel_tool_calls: false` (only the first
        call is kept) and `stop` (the reply ends before the first stop sequence). The others
        (temperature, seed, penalties, response_format, max_tokens) do not change a scripted answer."""
        start = time.time_ns()
        view = _View(messages, tools)
        choice = _tool_choice(options.get("tool_choice") if options else None)
        body, _, groups = self._choose(view, _accept(choice))
        if choice is not None and choice != "none" and not body.tool_calls:
            body, _, groups = self._choose(view)  # no rule calls the tool asked for: answer as usual
        ctx = _Context(groups)
        if view.tool_content is not None:
            ctx.pop("result", None)  # the tool result, not a rule's group of that name
            ctx.tool_content = view.tool_content
        ctx["user"] = view.user or ""
        text = render(body.reply, ctx) if body.reply is not None else None
        prior = sum(len(m.get("tool_calls") or ()) for m in messages if m.get("role") == "assistant")
        calls = []
        for i, spec in enumerate(body.tool_calls):
            args = _render_value(spec.arguments, ctx)
            calls.append(
                ToolCall(
                    id=f"call_{prior + i + 1}",
                    name=spec.name,
                    arguments=args,
                    raw_arguments=orjson.dumps(args).decode(),
                )
            )
        finish = body.finish_reason
        if options:
            calls = _apply_tool_options(calls, choice, options.get("parallel_tool_calls"), prior)
            if choice == "none" and text is None:
                text = ""
            stopped = _cut_at_stop(text, options.get("stop"))
            if stopped is not text:
                text, finish = stopped, "stop"
        usage = self._usage(messages, tools, view.system, text, calls)
        self._calls += 1
        latency = body.latency_ms if body.latency_ms is not None else self.latency_ms
        resp = ChatResponse(
            text=text,
            tool_calls=calls,
            usage=usage,
            model=self.name,
            provider=self.provider,
            finish_reason=finish or ("tool_calls" if calls else "stop"),
            attempts=[],
            response_id=f"chatcmpl-scripted-{self._calls}",
        )
        resp.attempts.append(
            Attempt(self.name, self.provider, "scripted", start, time.time_ns(), "ok", model_id=self.model)
        )
        return resp, latency / 1000.0

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse:
        """Answer from the rules, honouring the options `respond` lists. A `tool_choice` that is
        not "auto", "none", "required" or a named function is refused (LLMError), as a provider would."""
        try:
            resp, delay = self.respond(messages, tools, options)
        except ValueError as e:
            raise LLMError(f"{self.name}: {e}", kind="error") from None
        if delay > 0:
            await asyncio.sleep(delay)
            resp.attempts[-1].end_ns = time.time_ns()
        return resp

    async def aclose(self) -> None:
        return None

    def _usage(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        system: str,
        text: str | None,
        calls: Iterable[ToolCall],
    ) -> Usage:
        n_in = 0
        for m in messages:
            n_in += count_tokens(message_text(m))
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                n_in += count_tokens(fn.get("name") or "") + count_tokens(str(fn.get("arguments") or ""))
        if tools:
            n_in += self._tools_tokens(tools)
        n_out = count_tokens(text or "")
        for c in calls:
            n_out += count_tokens(orjson.dumps({"name": c.name, "arguments": c.arguments}).decode())
        cached = 0
        if self.rules.prompt_cache and system:
            key = hashlib.blake2b(system.encode(), digest_size=16).digest()
            if key in self._seen_systems:
                cached = count_tokens(system)
            else:
                if len(self._seen_systems) > 100_000:
                    self._seen_systems.clear()
                self._seen_systems.add(key)
        return Usage(input_tokens=n_in, output_tokens=n_out, cached_input_tokens=cached)

    def _tools_tokens(self, tools: list[dict[str, Any]]) -> int:
        raw = orjson.dumps(tools)
        n = self._tool_tokens.get(raw)
        if n is None:
            if len(self._tool_tokens) > 1000:
                self._tool_tokens.clear()
            n = self._tool_tokens[raw] = count_tokens(raw.decode())
        return n
