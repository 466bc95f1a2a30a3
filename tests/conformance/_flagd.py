"""flagd-testbed's gherkin vectors run against Shipyard's flags through the OpenFeature Python SDK
(Shipyard's provider behind a real OpenFeature client), on the testbed's own flag files.

Used by test_flagd_conformance.py and, standalone, to print the agreement figures
(`python tests/conformance/_flagd.py`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler

DATA = Path(__file__).parent / "data" / "flagd"
# the evaluator suite runs on its one flag file; the provider suite on every flag file the testbed
# image aggregates into allFlags.json (all of flags/ but the `selector*` ones, chosen by an option)
EVALUATOR_FEATURES = sorted((DATA / "evaluator" / "gherkin").glob("*.feature"))
EVALUATOR_FLAG_FILE = DATA / "evaluator" / "flags" / "testkit-flags.json"
PROVIDER_FEATURES = sorted((DATA / "gherkin").glob("*.feature"))
PROVIDER_FLAGS = sorted(p for p in (DATA / "flags").glob("*.json") if not p.name.startswith("selector"))
ALL_FLAG_FILES = [*sorted((DATA / "flags").glob("*.json")), EVALUATOR_FLAG_FILE]
# Tags naming an alternative the testbed offers, of which an implementation runs one: Shipyard
# buckets as current flagd does (`fractional-v2`, (hash x total) >> 32 over a string key); v1 is the
# legacy float algorithm, v3 hashes non-string values. `deprecated` scenarios are superseded.
EXCLUDED_TAGS = {"@fractional-v1", "@fractional-v3", "@deprecated"}


@dataclass
class Vector:
    """One scenario (one Examples row) of a feature file."""

    feature: str
    name: str
    line: int
    tags: list[str]
    steps: list[dict[str, Any]]

    @property
    def label(self) -> str:
        return f"{self.feature}:{self.line} {self.name}"


def vectors(features: list[Path]) -> Iterator[Vector]:
    """Every scenario of the feature files (Examples rows expanded by gherkin's own compiler)."""
    for path in features:
        doc: dict[str, Any] = dict(Parser().parse(path.read_text(encoding="utf-8")))
        doc["uri"] = str(path)
        lines = _node_lines(doc)
        for pickle in Compiler().compile(doc):  # type: ignore[arg-type]
            raw: dict[str, Any] = dict(pickle)
            tags = [t["name"] for t in raw["tags"]]
            if EXCLUDED_TAGS.intersection(tags):
                continue
            # the Examples row's line (the last AST node of an outline's pickle), else the scenario's
            line = lines.get(raw["astNodeIds"][-1], doc["feature"]["location"]["line"])
            steps = [dict(step) for step in raw["steps"]]
            yield Vector(path.relative_to(DATA).as_posix(), raw["name"], line, tags, steps)


def _node_lines(doc: dict[str, Any]) -> dict[str, int]:
    """AST node id -> line, for scenarios and Examples rows."""
    out: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "id" in node and "location" in node:
                out[node["id"]] = node["location"]["line"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return out


# --- the OpenFeature side ------------------------------------------------------------------------


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    """The testbed's launchpad `deepMerge` (launchpad/pkg/json.go): objects merge, the rest replaces."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            dst[key] = _deep_merge(dst[key], value)
        else:
            dst[key] = value
    return dst


def all_flags(files: list[Path], into: Path) -> Path:
    """The testbed image's `/flags/allFlags.json`: its flag files deep-merged in name order."""
    merged: dict[str, Any] = {}
    for path in sorted(files, key=lambda p: p.name):
        _deep_merge(merged, json.loads(path.read_text(encoding="utf-8")))
    into.write_text(json.dumps(merged, indent=2), encoding="utf-8")
    return into


class Flags:
    """One flag file behind Shipyard's OpenFeature provider and a real OpenFeature client, as flagd
    serves it. `refused` says why when Shipyard does not load the file (the client is then None)."""

    def __init__(self, path: Path) -> None:
        from openfeature import api

        from shipyard.errors import ConfigError
        from shipyard.flags import FlagStore, ShipyardProvider

        self.refused: str | None = None
        self.client: Any = None
        try:
            store = FlagStore.from_file(path)
        except ConfigError as e:
            self.refused = str(e)
            return
        domain = f"flagd-conformance:{path}"
        api.set_provider(ShipyardProvider(store), domain)
        self.client = api.get_client(domain)


_TYPES: dict[str, Callable[[str], Any]] = {
    "Boolean": lambda s: s == "true",
    "String": lambda s: s,
    "Integer": int,
    "Float": float,
    "Object": lambda s: json.loads(s.replace('\\"', '"')),
}
_METHODS = {
    "Boolean": "get_boolean_details",
    "String": "get_string_details",
    "Integer": "get_integer_details",
    "Float": "get_float_details",
    "Object": "get_object_details",
}

_FLAG = re.compile(r'a (\w+)-flag with key "([^"]*)" and a (?:fallback|default) value "(.*)"$')
_CTX_KEY = re.compile(r'a context containing a key "([^"]*)", with type "(\w+)" and with value "(.*)"$')
_CTX_TK = re.compile(r'a context containing a targeting key with value "(.*)"$')
_CTX_NESTED = re.compile(
    r'a context containing a nested property with outer key "([^"]*)" and inner key "([^"]*)", '
    r'with value "(.*)"$'
)
_OPTION = re.compile(r'an option "([^"]*)" of type "([^"]*)" with value "(.*)"$')
_VALUE = re.compile(r'the resolved details value should be "(.*)"$')
_REASON = re.compile(r'the reason should be "(.*)"$')
_ERROR = re.compile(r'the error-code should be "(.*)"$')
_SETUP = ("an evaluator", "a stable flagd provider", "a metadata flagd provider")


class StepError(Exception):
    """A step the runner does not know (so the vector cannot be said to agree)."""


@dataclass
class Outcome:
    vector: Vector
    problems: list[str] = field(default_factory=list)

    @property
    def agreed(self) -> bool:
        return not self.problems


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, int | float) and not isinstance(actual, bool):
        return abs(actual - expected) < 1e-9
    return type(actual) is type(expected) and actual == expected


def run_vector(vector: Vector, flags: Flags, selected: Callable[[str], Flags]) -> Outcome:
    """Run one vector's steps; the outcome lists every expectation Shipyard did not meet."""
    from openfeature.evaluation_context import EvaluationContext

    out = Outcome(vector)
    kind = key = None
    default: Any = None
    attrs: dict[str, Any] = {}
    targeting_key: str | None = None
    details: Any = None
    source = flags
    for step in vector.steps:
        text = step["text"]
        if text in _SETUP:
            continue
        if m := _OPTION.match(text):
            if m[1] == "selector":  # a flag source chosen by file (rawflags/NAME.json)
                source = selected(Path(m[3]).name)
            continue
        if m := _FLAG.match(text):
            kind, key, default = m[1], m[2], _TYPES[m[1]](m[3])
        elif m := _CTX_KEY.match(text):
            attrs[m[1]] = _TYPES[m[2]](m[3])
        elif m := _CTX_TK.match(text):
            targeting_key = m[1]
        elif m := _CTX_NESTED.match(text):
            attrs.setdefault(m[1], {})[m[2]] = m[3]
        elif text == "the flag was evaluated with details":
            assert kind is not None and key is not None
            client = source.client
            if client is None:
                out.problems.append("flag file refused")
                return out
            ctx = EvaluationContext(targeting_key, attrs)
            details = getattr(client, _METHODS[kind])(key, default, ctx)
        elif m := _VALUE.match(text):
            expected = _TYPES[kind or "String"](m[1])
            if not _same(details.value, expected):
                out.problems.append(f"value {details.value!r}, flagd {expected!r}")
        elif m := _REASON.match(text):
            if str(details.reason) != m[1]:
                out.problems.append(f"reason {details.reason}, flagd {m[1]}")
        elif m := _ERROR.match(text):
            code = details.error_code.value if details.error_code else ""
            if code != m[1]:
                out.problems.append(f"error code {code or 'none'!r}, flagd {m[1] or 'none'!r}")
        elif text == "the resolved metadata is empty":
            if details.flag_metadata:
                out.problems.append(f"metadata {dict(details.flag_metadata)}, flagd none")
        elif text == "the resolved metadata should contain":
            rows = step["argument"]["dataTable"]["rows"][1:]
            for row in rows:
                mkey, mtype, mvalue = (c["value"] for c in row["cells"])
                want = _TYPES[mtype](mvalue)
                got = details.flag_metadata.get(mkey)
                if not _same(got, want):
                    out.problems.append(f"metadata {mkey}={got!r}, flagd {want!r}")
        else:
            raise StepError(f"{vector.label}: unknown step {text!r}")
    return out


@dataclass
class Report:
    files_loaded: int
    files_total: int
    refused: dict[str, str]
    outcomes: list[Outcome]

    @property
    def agreed(self) -> int:
        return sum(o.agreed for o in self.outcomes)

    def __str__(self) -> str:
        n = len(self.outcomes)
        share = 100 * self.agreed / n if n else 100.0
        return (
            f"{self.files_loaded}/{self.files_total} flag files load; "
            f"{self.agreed}/{n} vectors agree ({share:.1f}%)"
        )

    def disagreements(self) -> list[str]:
        out = [f"{name}: refused: {why}" for name, why in self.refused.items()]
        out += [f"{o.vector.label}: {'; '.join(o.problems)}" for o in self.outcomes if not o.agreed]
        return out


def run_all(workdir: Path) -> Report:
    """Every flag file loaded on its own, then every vector: the evaluator suite on its flag file,
    the provider suite on the aggregated file (or the file a `selector` option names)."""
    refused: dict[str, str] = {}
    for path in ALL_FLAG_FILES:
        why = Flags(path).refused
        if why is not None:
            refused[path.name] = why
    evaluator = Flags(EVALUATOR_FLAG_FILE)
    aggregated = Flags(all_flags(PROVIDER_FLAGS, workdir / "allFlags.json"))
    by_file: dict[str, Flags] = {}

    def selected(name: str) -> Flags:
        if name not in by_file:
            by_file[name] = Flags(DATA / "flags" / name)
        return by_file[name]

    outcomes = [run_vector(v, evaluator, selected) for v in vectors(EVALUATOR_FEATURES)]
    outcomes += [run_vector(v, aggregated, selected) for v in vectors(PROVIDER_FEATURES)]
    return Report(len(ALL_FLAG_FILES) - len(refused), len(ALL_FLAG_FILES), refused, outcomes)


def main() -> None:
    import logging
    import tempfile

    logging.getLogger("shipyard.flags").setLevel(logging.ERROR)  # the files' warnings: expected here

    with tempfile.TemporaryDirectory() as tmp:
        report = run_all(Path(tmp))
    print(f"flagd: {report}")
    for d in report.disagreements():
        print(f"  - {d}")


if __name__ == "__main__":
    main()
