"""Lint a prompt bundle: problems that would otherwise show up as a bad answer in production."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shipyard.errors import ConfigError, ShipyardError
from shipyard.prompts._bundle import (
    BUILTIN_SAFETY,
    FILES,
    REQUIRED,
    SAFETY_RULES,
    SYSTEM_PROMPT,
    TOOL_DESCRIPTIONS,
    VERSION,
    Lines,
    PromptBundle,
    Template,
    ToolDescription,
    parse_tool_descriptions,
    read_bundle_files,
)
from shipyard.types import ToolSet

Severity = Literal["error", "warning"]

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BRACES = re.compile(r"\{\{|\}\}")
NAME = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*")
SINGLE = re.compile(r"(?<!\{)\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")
_LINE = re.compile(r"^line (\d+)(?:, column \d+)?: ")


@dataclass(frozen=True, slots=True)
class LintIssue:
    """One finding. `line` is 1-based, or None when the issue is about the whole file."""

    severity: Severity
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _check_files(
    files: Mapping[str, str], file: Callable[[str], str], tools_known: bool
) -> Iterator[LintIssue]:
    for name in FILES:
        text = files.get(name)
        if text is None:
            if name in REQUIRED:
                yield LintIssue("error", file(name), None, f"{name} is missing (it is required)")
            elif name == SAFETY_RULES:
                yield LintIssue("warning", file(name), None, "no safety rules: safety_rules.txt is missing")
            elif not tools_known:
                yield LintIssue("warning", file(name), None, "no tool descriptions: the file is missing")
        elif not text.strip():
            severity: Severity = "error" if name in REQUIRED else "warning"
            yield LintIssue(severity, file(name), None, f"{name} is empty")


def _check_label(files: Mapping[str, str], file: Callable[[str], str]) -> Iterator[LintIssue]:
    text = files.get(VERSION)
    if text is None or not text.strip():
        return  # reported as missing / empty
    label = text.strip()
    if "\n" in label:
        yield LintIssue("error", file(VERSION), 2, "version.txt must hold one line: the version label")
    elif not LABEL.match(label):
        yield LintIssue(
            "error",
            file(VERSION),
            1,
            f"version label {label!r} is not a sensible label: use letters, digits, '.', '_' and '-' "
            "(no spaces, '+' or '@'; at most 64 characters), e.g. 1.4.0",
        )


def _check_braces(text: str, path: str) -> Iterator[LintIssue]:
    opened: int | None = None
    for m in BRACES.finditer(text):
        if m.group() == "{{":
            if opened is not None:
                yield LintIssue("error", path, _line_of(text, opened), "'{{' is never closed with '}}'")
            opened = m.start()
            continue
        if opened is None:
            yield LintIssue("error", path, _line_of(text, m.start()), "'}}' has no opening '{{'")
            continue
        inside = text[opened + 2 : m.start()]
        if not NAME.fullmatch(inside):
            yield LintIssue(
                "error",
                path,
                _line_of(text, opened),
                f"'{{{{{inside}}}}}' is not a placeholder: write {{{{ name }}}} with letters, digits and _",
            )
        opened = None
    if opened is not None:
        yield LintIssue("error", path, _line_of(text, opened), "'{{' is never closed with '}}'")
    for m in SINGLE.finditer(text):
        yield LintIssue(
            "warning",
            path,
            _line_of(text, m.start()),
            f"'{m.group()}' has single braces and is sent as is; a placeholder is {{{{ {m.group(1)} }}}}",
        )


def _check_templates(
    files: Mapping[str, str], file: Callable[[str], str], variables: Mapping[str, str]
) -> Iterator[LintIssue]:
    safety = files.get(SAFETY_RULES, "")
    for name in (SYSTEM_PROMPT, SAFETY_RULES):
        text = files.get(name)
        if text is None:
            continue
        yield from _check_braces(text, file(name))
        for var, line in Template.parse(text).placeholders:
            if var in variables:
                continue
            if var == BUILTIN_SAFETY and name == SYSTEM_PROMPT:
                if not safety.strip():
                    yield LintIssue(
                        "error",
                        file(name),
                        line,
                        "{{ safety_rules }} is used but safety_rules.txt is missing or empty",
                    )
                continue
            yield LintIssue(
                "error",
                file(name),
                line,
                f"template variable {var!r} has no value (add it to the agent's prompt_variables)",
            )
    system = files.get(SYSTEM_PROMPT)
    if system is not None and safety.strip() and BUILTIN_SAFETY not in Template.parse(system).names():
        yield LintIssue(
            "warning",
            file(SYSTEM_PROMPT),
            None,
            "safety_rules.txt is never sent to the model: the system prompt has no {{ safety_rules }}",
        )


def _check_tools(
    descriptions: Mapping[str, ToolDescription], lines: Lines, tools: ToolSet, path: str
) -> Iterator[LintIssue]:
    registered = ", ".join(sorted(tools.names())) or "none"
    schemas = {d["function"]["name"]: d["function"].get("parameters") or {} for d in tools.definitions()}
    for name, desc in descriptions.items():
        line = lines.get((name,))
        if name not in schemas:
            yield LintIssue(
                "error",
                path,
                line,
                f"describes tool {name!r}, which the agent does not register (registered: {registered})",
            )
            continue
        if not desc.description.strip():
            yield LintIssue(
                "error",
                path,
                lines.get((name, "description"), line),
                f"tool {name!r} has an empty description",
            )
        schema = schemas[name]
        props = schema.get("properties", {})
        described = desc.parameters or {}
        for arg, text in described.items():
            arg_line = lines.get((name, "parameters", arg), line)
            if arg not in props:
                known = ", ".join(props) or "none"
                yield LintIssue(
                    "error",
                    path,
                    arg_line,
                    f"tool {name!r} has no parameter {arg!r} (its parameters: {known})",
                )
            elif not text.strip():
                yield LintIssue("warning", path, arg_line, f"parameter {name}.{arg} has an empty description")
        for arg in schema.get("required", []):
            if arg not in described:
                yield LintIssue("warning", path, line, f"required parameter {name}.{arg} is not described")
    for name in tools.names():
        if name not in descriptions:
            yield LintIssue(
                "warning",
                path,
                None,
                f"registered tool {name!r} has no description here (the model sees its docstring)",
            )


def _config_issues(err: ConfigError, path: str) -> Iterator[LintIssue]:
    for problem in err.problems:
        m = _LINE.match(problem)
        yield LintIssue("error", path, int(m.group(1)) if m else None, problem[m.end() :] if m else problem)


def lint_bundle(
    bundle: PromptBundle | Path | str,
    *,
    tools: ToolSet | None = None,
    variables: Mapping[str, str] | None = None,
) -> list[LintIssue]:
    """Every problem found in a prompt bundle, errors first, then by file and line.

    Args:
        bundle: a loaded bundle, or the folder of one (which need not load: lint says why).
        tools: the agent's registered tools; None skips the checks against them.
        variables: the agent's prompt_variables; every template variable needs a value.
    """
    variables = variables or {}
    if isinstance(bundle, PromptBundle):
        source, files = bundle.source, dict(bundle.files)
        descriptions: Mapping[str, ToolDescription] = bundle.tool_descriptions
        lines: Lines = bundle.tool_lines
        issues: list[LintIssue] = []
    else:
        source = str(bundle)
        try:
            files = read_bundle_files(Path(bundle))
        except ShipyardError as e:
            return [LintIssue("error", source, None, e.message)]
        descriptions, lines, issues = {}, {}, []
        if TOOL_DESCRIPTIONS in files:
            tool_path = f"{source.rstrip('/')}/{TOOL_DESCRIPTIONS}"
            try:
                descriptions, lines = parse_tool_descriptions(files[TOOL_DESCRIPTIONS], tool_path)
            except ConfigError as e:
                issues += _config_issues(e, tool_path)

    def file(name: str) -> str:
        return f"{source.rstrip('/')}/{name}"

    issues += _check_files(files, file, tools_known=tools is not None)
    issues += _check_label(files, file)
    issues += _check_templates(files, file, variables)
    if tools is not None:
        issues += _check_tools(descriptions, lines, tools, file(TOOL_DESCRIPTIONS))
    return sorted(issues, key=lambda i: (i.severity != "error", i.file, i.line or 0))
