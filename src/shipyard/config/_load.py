"""Loading YAML files into pydantic models with errors that name file, field path and line."""

import hashlib
import os
import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shipyard.config._incidents import include_regression_suites
from shipyard.config._schema import ShipyardConfig
from shipyard.config._schema_base import problem_message
from shipyard.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

CONFIG_NAME = "shipyard.yaml"

Lines = dict[tuple[str | int, ...], int]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~3x faster

_PARSED: OrderedDict[bytes, bytes] = OrderedDict()  # text digest -> pickled (data, lines), newest last
_PARSED_MAX = 64
_PARSED_LOCK = threading.Lock()


def _walk(node: yaml.Node, path: tuple[str | int, ...], lines: Lines, twice: list[str]) -> None:
    """Fill `lines` (field path -> line) and add to `twice` a problem for each key a mapping repeats."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            line = key.start_mark.line + 1
            if k in seen and k != "<<":  # YAML's merge key may be given more than once
                field = ".".join(str(x) for x in (*path, k))
                twice.append(
                    f"line {line}: {field}: given twice (first on line {seen[k]}); YAML would keep only "
                    "the last one, so merge the two"
                )
            seen.setdefault(k, line)
            _walk(value, (*path, k), lines, twice)
            # a problem with a key's value is reported on the key's line, where the reader looks
            lines[(*path, k)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, twice)


def _read(path: Path) -> bytes:
    """A file's bytes; ConfigError naming the file when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read: {e.strerror}"]) from None


def _decode(path: Path, raw: bytes) -> str:
    """A file's bytes as UTF-8 text; ConfigError naming the file and the byte when they are not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [f"byte {e.start}: the file is not UTF-8 text"]) from None


def load_yaml_with_lines(path: Path, text: str | None = None) -> tuple[Any, Lines]:
    """Parse a YAML file (read from `path` unless its `text` is given); return the data and a map
    from field path to line number.

    Raises ConfigError naming the file (and the line, or the byte) when it cannot be read, is not
    UTF-8 text, the YAML itself is malformed, or a mapping gives a key twice (YAML would silently keep
    the last: a second `server:` block appended to a file would drop every setting of the first)."""
    if text is None:
        text = _decode(path, _read(path))
    # A process reads the same files again and again (every runtime reads its rules files, every gate
    # its suites): the same text parses to the same data, so it is parsed once. Each caller gets its
    # own copy (unpickled: ~50x cheaper than parsing), free to change it.
    key = hashlib.blake2b(text.encode(), digest_size=16).digest()
    with _PARSED_LOCK:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
    if hit is not None:
        copied: tuple[Any, Lines] = pickle.loads(hit)
        return copied
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(str(path), [f"{where}: malformed YAML: {e.problem or e}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError(str(path), [f"malformed YAML: {e}"]) from None
    lines: Lines = {}
    if node is not None:
        twice: list[str] = []
        _walk(node, (), lines, twice)
        if twice:
            raise ConfigError(str(path), twice)
    parsed = pickle.dumps((data, lines), protocol=pickle.HIGHEST_PROTOCOL)
    with _PARSED_LOCK:
        _PARSED[key] = parsed
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return data, lines


def line_of(loc: tuple[str | int, ...], lines: Lines) -> int | None:
    """The line of field path `loc` (e.g. `("agents", "support", "entry")`), else of its nearest
    parent that has one; None when the file has no such lines."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def format_validation_error(
    err: ValidationError, lines: Lines, prefix: tuple[str | int, ...] = ()
) -> list[str]:
    """One message per problem: `line N: field.path: what is wrong`."""
    problems = []
    for e in err.errors():
        loc = tuple(x for x in (*prefix, *e["loc"]) if not (isinstance(x, str) and x.startswith("function-")))
        field = ".".join(str(x) for x in loc) or "(top level)"
        line = line_of(loc, lines)
        where = f"line {line}: " if line else ""
        msg = problem_message(
            e,
            unknown="unknown key (check the spelling; unknown keys are not allowed)",
            missing="required field is missing",
        )
        problems.append(f"{where}{field}: {msg}")
    return problems


def parse_model(model: type[M], data: Any, path: Path | str, lines: Lines | None = None) -> M:
    """Validate `data` against `model`; on failure raise ConfigError with one line per problem."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        raise ConfigError(str(path), format_validation_error(e, lines or {})) from None


def find_config(start: Path | None = None) -> Path:
    """The shipyard.yaml named by SHIPYARD_CONFIG, or the nearest one at or above `start`."""
    env = os.environ.get("SHIPYARD_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        str(here / CONFIG_NAME),
        ["no shipyard.yaml here or in any parent folder"],
        hint="run `shipyard init` to create a starter project, or pass --config PATH",
    )


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A shipyard.yaml as loaded: the config, where each field is, and what exactly was read."""

    config: ShipyardConfig
    lines: Lines  # field path -> line number (`line_of`)
    sha256: str  # of the file's bytes that were parsed


def load_config_file(path: Path | str) -> LoadedConfig:
    """Load and validate a shipyard.yaml, keeping its line map and hash (a server's reload reports
    problems found later by file and line, and which file content it runs). Raises ConfigError."""
    p = Path(path)
    raw = _read(p)
    data, lines = load_yaml_with_lines(p, _decode(p, raw))
    if data is not None and not isinstance(data, dict):
        raise ConfigError(str(p), ["line 1: the file must be a mapping of sections (agents, models, ...)"])
    cfg = parse_model(ShipyardConfig, data, p, lines)
    cfg._root = p.resolve().parent
    cfg._path = p.resolve()
    include_regression_suites(cfg)  # incidents promoted to cases are gated (config/_incidents.py)
    return LoadedConfig(cfg, lines, hashlib.sha256(raw).hexdigest())


def load_config(path: Path | str | None = None) -> ShipyardConfig:
    """Load and validate a shipyard.yaml. Relative paths inside it are relative to its folder."""
    return load_config_file(Path(path) if path else find_config()).config
