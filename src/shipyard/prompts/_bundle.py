"""A prompt bundle: the folder of prompt files that, with the code and model settings, makes an
agent version (DESIGN.md §1). Loaded from a folder or from a git revision, hashed, rendered."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, RootModel

from shipyard.config import StrictModel, load_yaml_with_lines, parse_model
from shipyard.errors import ConfigError, ShipyardError

SYSTEM_PROMPT = "system_prompt.txt"
TOOL_DESCRIPTIONS = "tool_descriptions.yaml"
SAFETY_RULES = "safety_rules.txt"
VERSION = "version.txt"
FILES: tuple[str, ...] = (SYSTEM_PROMPT, TOOL_DESCRIPTIONS, SAFETY_RULES, VERSION)
REQUIRED: frozenset[str] = frozenset({SYSTEM_PROMPT, VERSION})
BUILTIN_SAFETY = "safety_rules"

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Lines = Mapping[tuple[str | int, ...], int]
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed


class PromptBundleError(ShipyardError):
    """A prompt bundle folder or one of its files is missing or unreadable."""


class PromptVariableError(ShipyardError):
    """A prompt template uses a variable that was given no value."""


@dataclass(frozen=True, slots=True)
class ToolDescription:
    """How the bundle describes one tool to the model.

    Args:
        description: the text the model sees for the tool.
        parameters: argument name -> its description, or None when the bundle describes no arguments.
    """

    description: str
    parameters: dict[str, str] | None = None


class _ToolDescriptionModel(StrictModel):
    description: str
    parameters: dict[str, str] | None = Field(None, description="argument name -> its description")


class _ToolDescriptionsFile(RootModel[dict[str, _ToolDescriptionModel]]):
    pass


@dataclass(frozen=True, slots=True)
class Template:
    """A template split at its placeholders: `pieces` alternate literal text and variable names."""

    pieces: tuple[str, ...]
    placeholders: tuple[tuple[str, int], ...]  # (variable, line) in order of appearance

    @classmethod
    def parse(cls, text: str) -> Template:
        found = tuple((m.group(1), text.count("\n", 0, m.start()) + 1) for m in PLACEHOLDER.finditer(text))
        return cls(tuple(PLACEHOLDER.split(text)), found)

    def names(self) -> set[str]:
        return {name for name, _ in self.placeholders}

    def render(self, values: Mapping[str, str], file: str) -> str:
        """Substitute `values`; raise PromptVariableError naming every variable without one."""
        missing = [(n, line) for n, line in self.placeholders if n not in values]
        if missing:
            where = ", ".join(f"{n!r} (line {line})" for n, line in missing)
            raise PromptVariableError(
                f"{file}: template variable(s) with no value: {where}",
                hint="give them a value under the agent's `prompt_variables:` in shipyard.yaml",
            )
        return "".join(p if i % 2 == 0 else values[p] for i, p in enumerate(self.pieces))


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def bundle_hash(files: Mapping[str, str]) -> str:
    """sha256 over the bundle files' names and (newline-normalised) contents, in a fixed order."""
    h = hashlib.sha256()
    for name in FILES:
        if name in files:
            h.update(name.encode())
            h.update(b"\0")
            h.update(normalise_newlines(files[name]).encode())
            h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class PromptBundle:
    """The prompt files of one agent version.

    Args:
        path: the bundle folder (for a git bundle, where it lives in the work tree).
        system_prompt: the raw system prompt template.
        tool_descriptions: tool name -> how the bundle describes it.
        safety_rules: the raw safety rules ('' when the file is absent).
        label: the version label from version.txt.
        hash: sha256 hex of the files (see `bundle_hash`).
        files: file name -> newline-normalised text, for the files present.
        source: how to name the bundle in messages: its folder, or `REV:folder` for a git bundle.
        tool_lines: field path in tool_descriptions.yaml -> line number.
    """

    path: Path
    system_prompt: str
    tool_descriptions: Mapping[str, ToolDescription]
    safety_rules: str
    label: str
    hash: str
    files: Mapping[str, str] = field(default_factory=dict, repr=False)
    source: str = ""
    tool_lines: Lines = field(default_factory=dict, repr=False, compare=False)
    _system: Template = field(init=False, repr=False, compare=False)
    _safety: Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_system", Template.parse(self.system_prompt))
        object.__setattr__(self, "_safety", Template.parse(self.safety_rules.strip()))
        if not self.source:
            object.__setattr__(self, "source", str(self.path))

    def __hash__(self) -> int:
        return hash(self.hash)

    @property
    def short_hash(self) -> str:
        return self.hash[:7]

    def file(self, name: str) -> str:
        """How messages name one of the bundle's files."""
        return f"{self.source.rstrip('/')}/{name}"

    def variables(self) -> set[str]:
        """The variables the templates use, without the built-in `safety_rules`."""
        return (self._system.names() | self._safety.names()) - {BUILTIN_SAFETY}

    def render(self, variables: Mapping[str, str]) -> str:
        """The system prompt with `{{ name }}` placeholders filled in.

        Args:
            variables: name -> value (the agent's `prompt_variables`). `{{ safety_rules }}` is the
                bundle's safety rules (themselves rendered with `variables`) unless given here.
        Raises PromptVariableError naming each variable that has no value."""
        values = dict(variables)
        if BUILTIN_SAFETY not in values and BUILTIN_SAFETY in self._system.names():
            values[BUILTIN_SAFETY] = self._safety.render(variables, self.file(SAFETY_RULES))
        return self._system.render(values, self.file(SYSTEM_PROMPT))

    def tool_description(self, name: str) -> ToolDescription | None:
        """The bundle's description of tool `name`, or None when it has none."""
        return self.tool_descriptions.get(name)


def parse_tool_descriptions(text: str, file: str) -> tuple[dict[str, ToolDescription], Lines]:
    """Parse tool_descriptions.yaml text. Raises ConfigError naming file, field and line."""
    data, lines = load_yaml_with_lines(Path(file), text)
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError(file, ["line 1: the file must map tool names to {description, parameters}"])
    parsed = parse_model(_ToolDescriptionsFile, data, file, lines)
    # report a tool on the line of its name, not of its first field
    node = yaml.compose(text, Loader=_YAML_LOADER)
    key_lines = dict(lines)
    if isinstance(node, yaml.MappingNode):
        key_lines.update({(str(k.value),): k.start_mark.line + 1 for k, _ in node.value})
    return (
        {str(name): ToolDescription(d.description, d.parameters) for name, d in parsed.root.items()},
        key_lines,
    )


def bundle_from_files(path: Path, files: Mapping[str, str], source: str | None = None) -> PromptBundle:
    """Build a bundle from file name -> text of the files present. Raises PromptBundleError when a
    required file is missing and ConfigError when tool_descriptions.yaml is malformed."""
    source = source or str(path)
    for name in FILES:
        if name in REQUIRED and name not in files:
            raise PromptBundleError(
                f"prompt bundle {source}: {name} is missing",
                hint=f"create {source}/{name}"
                + (" with the version label, e.g. 1.0.0" if name == VERSION else " with the system prompt"),
            )
    texts = {name: normalise_newlines(text) for name, text in files.items() if name in FILES}
    tools: dict[str, ToolDescription] = {}
    lines: Lines = {}
    if TOOL_DESCRIPTIONS in texts:
        tools, lines = parse_tool_descriptions(texts[TOOL_DESCRIPTIONS], f"{source}/{TOOL_DESCRIPTIONS}")
    return PromptBundle(
        path=path,
        system_prompt=texts[SYSTEM_PROMPT],
        tool_descriptions=tools,
        safety_rules=texts.get(SAFETY_RULES, ""),
        label=texts[VERSION].strip(),
        hash=bundle_hash(texts),
        files=texts,
        source=source,
        tool_lines=lines,
    )


def read_bundle_files(path: Path) -> dict[str, str]:
    """The text of each bundle file present in `path`. Raises PromptBundleError for a missing
    folder or a file that cannot be read as UTF-8."""
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise PromptBundleError(
            f"prompt bundle folder {path} {what}",
            hint="check `prompts:` of the agent in shipyard.yaml (relative to the file's folder)",
        )
    files: dict[str, str] = {}
    for name in FILES:
        p = path / name
        try:
            files[name] = p.read_bytes().decode("utf-8")
        except FileNotFoundError:
            continue
        except UnicodeDecodeError as e:
            raise PromptBundleError(
                f"{p}: not UTF-8 text (byte {e.start})", hint="save it as UTF-8"
            ) from None
        except OSError as e:
            raise PromptBundleError(f"{p}: cannot read: {e.strerror}") from None
    return files


_cache: dict[Any, tuple[Any, PromptBundle]] = {}
_cache_lock = threading.Lock()


def _stamp(path: Path) -> tuple[tuple[int, int] | None, ...]:
    stamps: list[tuple[int, int] | None] = []
    for name in FILES:
        try:
            st = os.stat(path / name)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def load_bundle(path: Path | str) -> PromptBundle:
    """Load the prompt bundle in folder `path`; cached until one of its files changes.

    Raises PromptBundleError (missing folder or required file) or ConfigError (malformed
    tool_descriptions.yaml, with file, field and line)."""
    folder = Path(path)
    key = folder.resolve()
    stamp = _stamp(key)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    bundle = bundle_from_files(folder, read_bundle_files(folder))
    with _cache_lock:
        _cache[key] = (stamp, bundle)
    return bundle


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise PromptBundleError("git is not installed, so bundles cannot be read from revisions") from None


def load_bundle_from_git(repo_dir: Path | str, rev: str, path: Path | str) -> PromptBundle:
    """Load the bundle folder `path` as it is at git revision `rev` (`git show REV:PATH`).

    Args:
        repo_dir: a folder inside the git work tree; a relative `path` is relative to it.
        rev: any revision git understands (a branch, tag, commit, `HEAD~1`).
        path: the bundle folder (absolute or relative to repo_dir).
    """
    repo = Path(repo_dir)
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise PromptBundleError(
            f"{rev!r} is not a git revision in {repo}",
            hint="use a branch, tag or commit (git log --oneline lists commits), or a folder path",
        )
    commit = found.stdout.decode().strip()
    rel = Path(os.path.relpath(Path(path), repo)) if Path(path).is_absolute() else Path(path)
    spec = f"./{rel.as_posix()}".rstrip("/")
    source = f"{rev}:{rel.as_posix()}"
    key = ("git", str(repo.resolve()), commit, spec)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit[1]
    kind = _git(repo, "cat-file", "-t", f"{commit}:{spec}")
    if kind.returncode != 0 or kind.stdout.strip() != b"tree":
        raise PromptBundleError(
            f"prompt bundle folder {rel.as_posix()} does not exist at {rev}",
            hint="check the path (relative to the project folder) and the revision",
        )
    files: dict[str, str] = {}
    for name in FILES:
        shown = _git(repo, "show", f"{commit}:{spec}/{name}")
        if shown.returncode == 0:
            try:
                files[name] = shown.stdout.decode("utf-8")
            except UnicodeDecodeError:
                raise PromptBundleError(f"{source}/{name}: not UTF-8 text") from None
    bundle = bundle_from_files(repo / rel, files, source)
    with _cache_lock:
        _cache[key] = (None, bundle)
    return bundle
