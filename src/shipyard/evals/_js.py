"""A JavaScript engine for promptfoo's `javascript` assertions and transforms: Node.js when `node` is on
PATH, else the PyPI package `quickjs` when installed; a clear error when neither is.

Code runs as promptfoo runs it: an inline value is the body of `function (output, context)` (one line:
an expression whose value is returned), a `file://` value is a CommonJS module whose export (or named
export) is called with `(output, context)`. Results travel as JSON."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

NO_ENGINE = (
    "javascript needs a JavaScript engine: install Node.js (node on PATH) or the PyPI package quickjs "
    "(`pip install quickjs`)"
)
TIMEOUT_S = 30.0

# reads {body | file, fn, args} as JSON on stdin, prints {ok, value | error}
_NODE_RUNNER = r"""
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  try {
    let fn;
    if (req.file) {
      const m = req.file.endsWith('.mjs')
        ? await import(require('url').pathToFileURL(req.file).href)
        : require(req.file);
      fn = req.fn ? m[req.fn] : (typeof m === 'function' ? m : m.default);
      if (typeof fn !== 'function') {
        throw new Error(`${req.file} exports no function${req.fn ? ' named ' + req.fn : ''}`);
      }
    } else {
      fn = new Function('output', 'context', req.body);
    }
    const value = await fn(...req.args);
    process.stdout.write(JSON.stringify({ ok: true, value: value === undefined ? null : value }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: String((e && e.message) || e) }));
  }
});
"""


class JsError(Exception):
    """The JavaScript code threw, or returned what JSON cannot carry."""


def _last_statement_semicolon(code: str) -> int:
    """Index of the last `;` outside string literals, or -1."""
    last, quote, i = -1, "", 0
    while i < len(code):
        ch = code[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            last = i
        i += 1
    return last


def function_body(code: str) -> str:
    """promptfoo's rule for inline code: several lines are a function body; one line is an expression
    to return (after `const x = ...;` declarations, the last expression)."""
    code = code.rstrip()
    if "\n" in code:
        return code
    trimmed = re.sub(r";+\s*$", "", code.strip())
    if re.match(r"^(const|let|var)\s", trimmed):
        at = _last_statement_semicolon(trimmed)
        if at != -1 and trimmed[at + 1 :].strip():
            return f"{trimmed[: at + 1]} return {trimmed[at + 1 :].strip()}"
        return trimmed
    return f"return {trimmed}"


def engine() -> str | None:
    """The engine that will run code: `node`, `quickjs`, or None."""
    if shutil.which("node"):
        return "node"
    try:
        import quickjs  # noqa: F401
    except ImportError:
        return None
    return "quickjs"


async def call_js(code: str, args: list[Any], *, file: Path | None = None, fn: str | None = None) -> Any:
    """Run inline `code` (promptfoo's function-body rule) or the module `file` (its export, or export
    `fn`) with `args`; returns the JSON value. Raises JsError (the code threw) or RuntimeError (no engine)."""
    request = {"body": function_body(code) if file is None else None, "args": args}
    if file is not None:
        request |= {"file": str(file.resolve()), "fn": fn}
    kind = engine()
    if kind == "node":
        reply = await _node(request)
    elif kind == "quickjs":
        reply = await asyncio.to_thread(_quickjs, request, file)
    else:
        raise RuntimeError(NO_ENGINE)
    if not reply.get("ok"):
        raise JsError(reply.get("error") or "the code failed")
    return reply.get("value")


async def _node(request: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "-e",
        _NODE_RUNNER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise JsError(f"the code did not finish within {TIMEOUT_S:g} s") from None
    try:
        reply: dict[str, Any] = json.loads(out or b"{}")
    except ValueError:
        raise JsError(f"node gave no result: {err.decode(errors='replace')[-300:]}") from None
    if not reply:
        raise JsError(f"node gave no result: {err.decode(errors='replace')[-300:]}")
    return reply


def _quickjs(request: dict[str, Any], file: Path | None) -> dict[str, Any]:
    import quickjs

    ctx = quickjs.Context()
    ctx.set_time_limit(TIMEOUT_S)
    args = json.dumps(request["args"])
    if file is not None:
        source = file.read_text(encoding="utf-8")
        pick = (
            f"m[{json.dumps(request['fn'])}]"
            if request.get("fn")
            else "(typeof m === 'function' ? m : m.default)"
        )
        program = (
            "var module = {exports: {}}; var exports = module.exports;\n"
            f"{source}\n;var m = module.exports; var f = {pick};\n"
        )
    else:
        program = f"var f = new Function('output', 'context', {json.dumps(request['body'])});\n"
    program += f"JSON.stringify({{v: f.apply(null, {args})}})"
    try:
        value = json.loads(ctx.eval(program))
    except quickjs.JSException as e:
        return {"ok": False, "error": str(e)}
    return {"ok": True, "value": value.get("v")}
