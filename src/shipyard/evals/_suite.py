"""The eval suite format: a YAML file of cases, each with an input (or a conversation), an expected
output and/or assertions, and an expected tool trajectory.

    name: smoke
    defaults: {category: functional, repeat: 1, assert: [{type: not-contains, value: "as an AI"}]}
    cases:
      - id: order-status
        input: "Where is my order 10001?"
        expected: "shipped"
        trajectory: {mode: in_order, calls: [{name: lookup_order, args: {order_id: "10001"}}]}

`load_suite(path)` also reads promptfoo configs, ADK eval sets and JSONL files (detected by
content) through the importers. Errors name the file, the case, the field and the line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from shipyard.config import Lines, ShipyardConfig, StrictModel, format_validation_error, load_yaml_with_lines
from shipyard.errors import ConfigError
from shipyard.evals._scorers import BuiltScorer, build_scorer, check_options, scorer_info
from shipyard.evals._types import Category

ArgsMatch = Literal["exact", "partial", "ignore"]
TrajectoryMode = Literal["exact", "in_order", "any_order", "subset", "superset"]
DEFAULT_EXPECTED_MATCH = "contains"


class SuiteError(ConfigError):
    """An eval suite (or a file imported as one) is wrong; one line per problem."""


class Assertion(BaseModel):
    """One check on a case's result: `{type: contains, value: "...", weight: 1, threshold: 0.8}`.

    `type` names a registered scorer (`not-` negates it). Keys other than type / value / weight /
    threshold are the scorer's own options (`case_sensitive`, `model`, `k`, ...) and are checked
    against what that scorer takes."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str
    value: Any = None
    weight: float = Field(1.0, ge=0, description="0 = reported, never decides the outcome")
    threshold: float | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        scorer_info(v)
        return v

    @model_validator(mode="after")
    def _known_options(self) -> Assertion:
        check_options(self.type, self.options)
        return self

    @property
    def options(self) -> dict[str, Any]:
        """The scorer's own options (every key but type / value / weight / threshold)."""
        return dict(self.model_extra or {})


def _assertion_shorthand(v: Any) -> Any:
    return {"type": v} if isinstance(v, str) else v


def _assertions_shorthand(v: Any) -> Any:
    """`assert: [is_json, {type: contains, value: x}]`: a bare name is an assertion without value."""
    return [_assertion_shorthand(a) for a in v] if isinstance(v, list) else v


class ExpectedCall(StrictModel):
    """A tool call the agent should make. `args_match`: exact (all arguments equal), partial (the
    given ones equal, others allowed), ignore (the name is enough). Default: exact when `args` is
    given, else ignore."""

    name: str
    args: dict[str, Any] | None = None
    args_match: ArgsMatch | None = None


class Trajectory(StrictModel):
    """Expected tool calls. Modes: exact (same calls, same order, nothing else), in_order (these in
    this order, others allowed between), any_order (same calls, any order, nothing else), subset
    (every call made is one of these), superset (all of these were made, others allowed)."""

    mode: TrajectoryMode = "exact"
    calls: list[ExpectedCall] | None = Field(
        None, description="omitted: only forbidden / max_calls are checked; []: no tool may be called (exact)"
    )
    forbidden: list[str] = Field(default_factory=list, description="tools that must never be called")
    max_calls: dict[str, int] = Field(default_factory=dict, description="tool -> most calls allowed")
    args_match: ArgsMatch | None = Field(None, description="default for calls that set none")
    threshold: float = Field(1.0, ge=0, le=1, description="least fraction of expected calls matched")

    @field_validator("calls", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [{"name": c} if isinstance(c, str) else c for c in v] if isinstance(v, list) else v


class FixedToolResult(StrictModel):
    """A tool answer the case fixes: when the agent calls `tool` (with `args`, if given: those must be
    equal, others are allowed), the tool does not run and the agent gets `result`, or `error` as a
    failed call. It tests what an agent does with what its tools return, e.g. an instruction hidden
    in a document a tool fetched (indirect prompt injection)."""

    tool: str = Field(..., min_length=1)
    args: dict[str, Any] | None = Field(None, description="the arguments that must match (default: any call)")
    result: Any = Field(None, description="the tool's value the agent gets")
    error: str | None = Field(None, description="the agent gets a failed call with this error instead")


class HistoryMessage(StrictModel):
    """One earlier message of a conversation, given to the agent as history before the case's input."""

    role: Literal["user", "assistant", "system"]
    content: str


class Turn(StrictModel):
    """One user turn of a conversation, optionally with the reply expected to it."""

    user: str
    expected: str | list[str] | None = None


class Scenario(StrictModel):
    """A conversation a user simulator plays out (ADK's `conversation_scenario`): the fixed first user
    message, and the plan the simulated user follows for the turns after it. It runs only when
    `evals.user_simulator` is configured in shipyard.yaml; otherwise the case is SKIPPED, saying so."""

    starting_prompt: str = Field(..., description="the first user message, sent as is")
    conversation_plan: str = Field(..., description="what the simulated user wants, in order")
    max_turns: int | None = Field(
        None, ge=1, le=1000, description="most user turns (default: evals.user_simulator.max_turns)"
    )


class Case(StrictModel):
    """One eval case. Exactly one of `input`, `conversation` or `scenario`."""

    id: str = Field(..., min_length=1, description="unique within the suite and stable over time")
    input: str | None = None
    conversation: list[Turn] | None = Field(None, min_length=1)
    scenario: Scenario | None = Field(
        None, description="user turns played by the configured user simulator (SKIPPED without one)"
    )
    expected: str | list[str] | None = Field(None, description="expected output text (a list: any of)")
    expected_match: Assertion | None = Field(
        None, description="how `expected` is compared (default contains)"
    )
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")
    trajectory: Trajectory | None = None
    category: Category = "functional"
    tags: list[str] = Field(default_factory=list)
    repeat: int = Field(1, ge=1, le=1000)
    timeout_s: float | None = Field(None, gt=0)
    threshold: float | None = Field(
        None, ge=0, le=1, description="pass on the weighted mean score instead of requiring every assertion"
    )
    tool_results: list[FixedToolResult] = Field(
        default_factory=list, description="tool answers fixed for this case (the first that matches answers)"
    )
    history: list[HistoryMessage] = Field(
        default_factory=list, description="earlier messages the agent gets as history before the input"
    )
    recorded_tools_only: bool = Field(
        False,
        description="a tool call no tool_results entry answers runs only when the tool is idempotent "
        "(read-only); any other tool never runs and the repeat is an ERROR (cases promoted from incidents)",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    _defaults_asserts: int = PrivateAttr(0)  # how many leading assertions came from `defaults`

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if v != v.strip():
            raise ValueError("a case id must not start or end with spaces")
        return v

    @field_validator("expected_match", mode="before")
    @classmethod
    def _match_shorthand(cls, v: Any) -> Any:
        return _assertion_shorthand(v)

    @field_validator("assertions", mode="before")
    @classmethod
    def _asserts_shorthand(cls, v: Any) -> Any:
        return _assertions_shorthand(v)

    @model_validator(mode="after")
    def _input_or_conversation(self) -> Case:
        if sum(x is not None for x in (self.input, self.conversation, self.scenario)) != 1:
            raise ValueError(
                "a case needs exactly one of input (text), conversation (list of user turns) or scenario "
                "(starting_prompt and conversation_plan, for a user simulator)"
            )
        return self

    @property
    def turns(self) -> list[Turn]:
        """The user turns known before the run: one for `input`, several for a conversation (the last
        gets `expected`); a scenario's first (the simulator makes the rest as the run goes)."""
        if self.conversation is not None:
            return self.conversation
        if self.scenario is not None:
            return [Turn(user=self.scenario.starting_prompt)]
        return [Turn(user=self.input or "", expected=None)]

    @property
    def first_input(self) -> str:
        return self.input if self.input is not None else self.turns[0].user


class Defaults(StrictModel):
    """Suite-level defaults: applied to every case that does not set its own."""

    category: Category | None = None
    tags: list[str] = Field(default_factory=list, description="added to every case's tags")
    repeat: int | None = Field(None, ge=1, le=1000)
    assertions: list[Assertion] = Field(
        default_factory=list, alias="assert", description="added to every case"
    )
    timeout_s: float | None = Field(None, gt=0)
    expected_match: Assertion | None = None

    @field_validator("expected_match", mode="before")
    @classmethod
    def _match_shorthand(cls, v: Any) -> Any:
        return _assertion_shorthand(v)

    @field_validator("assertions", mode="before")
    @classmethod
    def _asserts_shorthand(cls, v: Any) -> Any:
        return _assertions_shorthand(v)


class Suite(StrictModel):
    """An eval suite: a name, defaults, and cases with unique ids."""

    name: str = Field(..., min_length=1)
    description: str = ""
    version: str | None = Field(
        None,
        description="the version of a frozen suite (a red team's critical subset): bumped on every change",
    )
    defaults: Defaults = Field(default_factory=Defaults)
    cases: list[Case] = Field(..., min_length=1)

    _path: Path | None = PrivateAttr(None)
    _lines: Lines = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr("shipyard")  # shipyard | promptfoo | adk | jsonl

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _apply_defaults(self) -> Suite:
        seen: dict[str, int] = {}
        dups = []
        for i, c in enumerate(self.cases):
            if c.id in seen:
                dups.append(f"cases[{i}] repeats id {c.id!r} of cases[{seen[c.id]}]")
            seen.setdefault(c.id, i)
        if dups:
            raise ValueError("case ids must be unique: " + "; ".join(dups))
        d = self.defaults
        for c in self.cases:
            given = c.model_fields_set
            if d.category and "category" not in given:
                c.category = d.category
            if d.repeat and "repeat" not in given:
                c.repeat = d.repeat
            if d.timeout_s and "timeout_s" not in given:
                c.timeout_s = d.timeout_s
            if d.expected_match and c.expected_match is None:
                c.expected_match = d.expected_match
            c.tags = [*d.tags, *(t for t in c.tags if t not in d.tags)]
            c.assertions = [*d.assertions, *c.assertions]
            c._defaults_asserts = len(d.assertions)
        return self

    @property
    def path(self) -> Path | None:
        """The file the suite was loaded from (None when built in code)."""
        return self._path

    @property
    def source(self) -> str:
        """The format it was read from: shipyard, promptfoo, adk or jsonl."""
        return self._source

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)

    def where(self) -> str:
        return str(self._path) if self._path else f"suite {self.name!r}"


# loading ----------------------------------------------------------------------------------------

_CASE_LOC = re.compile(r"^(line \d+: )?cases\.(\d+)(?=[.:])")


def _name_cases(problems: list[str], raw_cases: Any) -> list[str]:
    """`cases.3.assert.0.type: ...` -> `cases[3] (id 'refund').assert.0.type: ...`."""

    def label(m: re.Match[str]) -> str:
        i = int(m.group(2))
        cid = None
        if isinstance(raw_cases, list) and i < len(raw_cases) and isinstance(raw_cases[i], dict):
            cid = raw_cases[i].get("id")
        return f"{m.group(1) or ''}cases[{i}]" + (f" (id {cid!r})" if cid is not None else "")

    return [_CASE_LOC.sub(label, p) for p in problems]


def _duplicate_ids(raw_cases: list[Any], lines: Lines) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, c in enumerate(raw_cases):
        if not isinstance(c, dict) or c.get("id") is None:
            continue
        cid = str(c["id"])
        if cid in seen:
            line = lines.get(("cases", i, "id"))
            where = f"line {line}: " if line else ""
            problems.append(
                f"{where}cases[{i}] (id {cid!r}).id: duplicate id, already used by cases[{seen[cid]}]"
                " (ids must be unique and stable)"
            )
        else:
            seen[cid] = i
    return problems


def parse_suite(data: Any, path: Path | str, lines: Lines | None = None, *, name: str | None = None) -> Suite:
    """Validate already-parsed suite data (our format). Raises SuiteError naming case, field, line."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise SuiteError(str(path), ["line 1: a suite must be a mapping with name and cases"])
    if name and "name" not in data:
        data = {"name": name, **data}
    raw_cases = data.get("cases")
    problems = _duplicate_ids(raw_cases, lines) if isinstance(raw_cases, list) else []
    if problems:
        raise SuiteError(str(path), problems, hint="give every case its own id")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise SuiteError(str(path), _name_cases(format_validation_error(e, lines), raw_cases)) from None
    suite._path = Path(path)
    suite._lines = lines
    return suite


def read_yaml(path: Path) -> tuple[Any, Lines]:
    """A YAML (or JSON) file's data and line map; SuiteError when it cannot be read or parsed."""
    try:
        return load_yaml_with_lines(path)
    except SuiteError:
        raise
    except ConfigError as e:
        raise SuiteError(e.path, e.problems, hint=e.hint) from None


def load_suite(path: Path | str, **import_options: Any) -> Suite:
    """Load a suite file: our YAML, or a promptfoo config, ADK eval set, JSONL file or any format a
    plugin registered (`shipyard.evals.IMPORTERS`), recognised by suffix or content and converted.

    Args:
        path: the file.
        import_options: passed to the importer for foreign formats (e.g. `input_var` for promptfoo).

    Raises SuiteError naming the file, case, field and line of every problem."""
    from shipyard.evals._importers import detect_kind, import_file, kind_by_suffix

    p = Path(path)
    kind = kind_by_suffix(p)
    if kind is not None:  # a format read raw: its importer reads the file
        return import_file(kind, p, **import_options)
    data, lines = read_yaml(p)
    return import_file(detect_kind(p, data), p, data=data, lines=lines, **import_options)


def case_keys(suites: Sequence[Suite]) -> list[str]:
    """The key (`suite/case_id`, as `CaseStats.key`) of every case of `suites`: what a gate expects a
    run of those suites to hold (`decide_gate(expected_cases=...)`)."""
    return [f"{s.name}/{c.id}" for s in suites for c in s.cases]


# validation before a run ------------------------------------------------------------------------


def _loc(suite: Suite, case_index: int, field: tuple[str | int, ...], text: str) -> str:
    line = None
    for n in range(len(field), -1, -1):
        line = suite._lines.get(("cases", case_index, *field[:n]))
        if line:
            break
    return f"line {line}: {text}" if line else text


@functools.cache
def _plain(type_: str) -> Assertion:
    """`{type: <type_>}`, built once: the expected match a case that names none uses, and the
    trajectory check (its value is passed to `build_scorer`); read, never changed."""
    return Assertion(type=type_)


def case_scorers(case: Case) -> list[tuple[str, tuple[str | int, ...], BuiltScorer]]:
    """Build every scorer a case runs: expected match(es), assertions, trajectory.

    Returns (label, field path, scorer); raises ScorerBuildError for the first bad one."""
    out: list[tuple[str, tuple[str | int, ...], BuiltScorer]] = []
    match = case.expected_match or _plain(DEFAULT_EXPECTED_MATCH)

    def add(
        label: str, field: tuple[str | int, ...], a: Assertion, value: Any = None, turn: int | None = None
    ) -> None:
        try:
            built = build_scorer(a, value=value)
        except (ValueError, TypeError, ImportError, AttributeError) as e:
            raise ScorerBuildError(field, str(e)) from None
        built.name = label
        built.turn = turn
        out.append((label, field, built))

    if case.expected is not None:
        add(
            f"expected ({match.type})",
            ("expected_match" if case.expected_match else "expected",),
            match,
            case.expected,
        )
    if case.conversation is not None:
        for t, turn in enumerate(case.conversation):
            if turn.expected is not None:
                add(
                    f"turn {t + 1} expected ({match.type})",
                    ("conversation", t, "expected"),
                    match,
                    turn.expected,
                    turn=t,
                )
    for j, a in enumerate(case.assertions):
        add(a.type, ("assert", j), a)
    if case.trajectory is not None:
        add("trajectory", ("trajectory",), _plain("trajectory"), case.trajectory)
    return out


def _trajectory_names(spec: Any, field: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(spec, list):
        spec = {"calls": spec}
    try:
        traj = spec if isinstance(spec, Trajectory) else Trajectory.model_validate(spec)
    except (ValidationError, TypeError):
        return []  # building the scorer reports what is wrong with it
    out = [((*field, "calls", i, "name"), c.name) for i, c in enumerate(traj.calls or [])]
    out += [((*field, "forbidden", i), name) for i, name in enumerate(traj.forbidden)]
    out += [((*field, "max_calls", name), name) for name in traj.max_calls]
    return out


def tool_names(case: Case) -> list[tuple[tuple[str | int, ...], str]]:
    """Every tool name a case's checks name, with its field path: `must_not_call` values, the calls,
    `forbidden` and `max_calls` of trajectories (the case's own and `trajectory` assertions), and the
    tools whose answers `tool_results` fixes (a misspelt one would never answer: the real tool runs)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for j, a in enumerate(case.assertions):
        kind = a.type.removeprefix("not-")
        if kind == "must_not_call":
            if isinstance(a.value, str):
                out.append((("assert", j, "value"), a.value))
            elif isinstance(a.value, list):
                out += [(("assert", j, "value", k), v) for k, v in enumerate(a.value) if isinstance(v, str)]
        elif kind == "trajectory":
            out += _trajectory_names(a.value, ("assert", j, "value"))
    if case.trajectory is not None:
        out += _trajectory_names(case.trajectory, ("trajectory",))
    out += [(("tool_results", i, "tool"), r.tool) for i, r in enumerate(case.tool_results)]
    return out


class ScorerBuildError(ValueError):
    """A scorer of a case cannot be built; carries the case field path."""

    def __init__(self, field: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def validate_suite(
    suite: Suite,
    cfg: ShipyardConfig | None = None,
    *,
    tools: Collection[str] | None = None,
    tools_of: str = "the agent",
) -> dict[str, list[BuiltScorer]]:
    """Build every scorer of every case before a run, so a misconfigured one (unknown type, bad
    option, bad regex or schema, a judge model not in shipyard.yaml, a tool name no tool has) is
    reported up front.

    Args:
        suite: the loaded suite.
        cfg: the project config, to check judge model keys (skipped when None).
        tools: the names of the agent's registered tools: a tool name in `must_not_call`, a
            trajectory's calls, `forbidden` or `max_calls` that is none of them is an error (a
            misspelt forbidden tool would pass every case). None: not checked.
        tools_of: whose tools they are, for the message (e.g. the version id).

    Returns the built scorers per case id; raises SuiteError naming file, case, field and line."""
    problems: list[str] = []
    reported_defaults: set[int] = set()
    unknown_defaults: set[tuple[str | int, ...]] = set()
    plan: dict[str, list[BuiltScorer]] = {}
    registered = frozenset(tools or ())
    known = ", ".join(sorted(registered)) or "none"
    for i, case in enumerate(suite.cases):
        where = f"cases[{i}] (id {case.id!r})"
        for f, name in tool_names(case) if tools is not None else []:
            if name in registered:
                continue
            said = f"tool {name!r} is not a tool of {tools_of} (its tools: {known}); fix the name"
            if f[0] == "assert" and isinstance(f[1], int) and f[1] < case._defaults_asserts:
                if f not in unknown_defaults:
                    unknown_defaults.add(f)
                    line = suite._lines.get(("defaults", "assert", f[1]))
                    rest = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in f[2:])
                    problems.append(
                        f"{f'line {line}: ' if line else ''}defaults.assert[{f[1]}]{rest}: {said}"
                    )
                continue
            field = ".".join(str(x) for x in f)
            problems.append(_loc(suite, i, f, f"{where}.{field}: {said}"))
        try:
            built = case_scorers(case)
        except ScorerBuildError as e:
            f = e.field
            if f[0] == "assert" and isinstance(f[1], int) and f[1] < case._defaults_asserts:
                if f[1] not in reported_defaults:
                    reported_defaults.add(f[1])
                    line = suite._lines.get(("defaults", "assert", f[1]))
                    problems.append(f"{f'line {line}: ' if line else ''}defaults.assert[{f[1]}]: {e}")
                continue
            field = ".".join(str(x) for x in f)
            problems.append(_loc(suite, i, f, f"{where}.{field}: {e}"))
            continue
        if not built:
            problems.append(
                _loc(suite, i, (), f"{where}: nothing to check; add expected, assert or trajectory")
            )
        if cfg is not None:
            for _, f, b in built:
                for key in b.models:
                    if key not in cfg.models:
                        known = ", ".join(sorted(cfg.models)) or "none"
                        field = ".".join(str(x) for x in f)
                        problems.append(
                            _loc(
                                suite,
                                i,
                                f,
                                f"{where}.{field}: judge model {key!r} is not defined under models in "
                                f"shipyard.yaml (known: {known}); set `model:` to one of them",
                            )
                        )
        plan[case.id] = [b for _, _, b in built]
    if problems:
        raise SuiteError(suite.where(), problems, hint="fix these before running; nothing was run")
    return plan
