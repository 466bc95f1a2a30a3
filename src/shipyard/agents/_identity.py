"""What an agent's code is, for its version id: the entry module and every module it imports from
the agent's own code, found by reading the source (never by what happens to be loaded already).

The closure is static: `import a.b`, `from a import b` (a module or a name), relative imports, and
imports inside functions are followed; imports of anything outside the agent's own folder (the
standard library, installed packages, Shipyard) are not. The agent's own folder is the project
folder when the entry module lives there, else the folder of the entry module's package (an agent
shipped inside an installed package). Folders whose name starts with a dot and `site-packages` are
never the agent's code, so a virtual environment inside the project does not count.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

_NOT_CODE = ("site-packages", "dist-packages", "__pycache__", "node_modules")


@dataclass(frozen=True, slots=True)
class CodeIdentity:
    """The source files an agent is made of (relative to `scope`) and their combined hash."""

    scope: Path
    files: tuple[str, ...]
    digest: str


def _module_file(base: Path, name: str) -> Path | None:
    """The source file of module `name` under `base` (a module file or a package's __init__)."""
    parts = name.split(".")
    as_module = base.joinpath(*parts).with_suffix(".py")
    if as_module.is_file():
        return as_module
    as_package = base.joinpath(*parts, "__init__.py")
    return as_package if as_package.is_file() else None


def _is_code(path: Path, scope: Path) -> bool:
    try:
        rel = path.resolve().relative_to(scope)
    except ValueError:
        return False
    return not any(p.startswith(".") or p in _NOT_CODE for p in rel.parts[:-1])


def _module_name(base: Path, path: Path) -> str:
    rel = path.relative_to(base).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name an AST may import: `a.b.c` also names `a` and `a.b` (they run first), and
    `from a import b` names `a.b` in case `b` is a module."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".") if package else []
                if node.level > 1:
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base:
                names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    expanded: set[str] = set()
    for name in names:
        parts = name.split(".")
        expanded.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return expanded


def code_identity(module_file: Path, module_name: str, project: Path) -> CodeIdentity:
    """The import closure of the agent's entry module inside the agent's own folder.

    Args:
        module_file: the entry module's source file.
        module_name: its dotted name, as imported (`agent`, `support.agent`).
        project: the project folder (where shipyard.yaml is).
    """
    module_file = module_file.resolve()
    project = project.resolve()
    depth = module_name.count(".") + (1 if module_file.name == "__init__.py" else 0)
    base = module_file.parents[depth]  # the folder the module's dotted name is relative to
    # an agent shipped in an installed package: its own package folder is its code
    scope = project if _is_code(module_file, project) else module_file.parent
    seen: dict[Path, bytes] = {}  # each file of the closure, read once: what is parsed is what is hashed
    todo = [module_file]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = source = path.read_bytes()
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError:
            continue  # the loader reports it; its bytes are still hashed
        name = _module_name(base, path)
        for imported in _imported_names(tree, name, path.name == "__init__.py"):
            found = _module_file(base, imported)
            if found is not None and found.resolve() not in seen and _is_code(found, scope):
                todo.append(found.resolve())
    files = sorted(seen, key=lambda p: p.relative_to(scope).as_posix())
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(scope).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(seen[path]).digest())
    return CodeIdentity(scope, tuple(p.relative_to(scope).as_posix() for p in files), h.hexdigest())
