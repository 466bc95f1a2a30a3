"""Editing a project's shipyard.yaml in tests: settings added as a second block of a top-level section
(`server:` appended to a file that has one) are merged into the first, as the test means them; a file
that gives a key twice is a config error (YAML alone would silently keep the last block)."""

from __future__ import annotations

import json
import re

import yaml

_HEAD = re.compile(r"^([A-Za-z_][\w-]*):[ \t]*(#.*)?$")
_FLOW = re.compile(r"^([A-Za-z_][\w-]*):[ \t]*(\{.*\})[ \t]*$")  # `server: {port: 1, ...}`


def _as_block(head: str, body: str) -> tuple[str, str]:
    """A one-line flow mapping `key: {a: 1}` as the block `key:` with `  a: 1` lines."""
    m = _FLOW.match(head)
    if m is None:
        return head, body
    items = yaml.safe_load(m.group(2))
    lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in items.items())  # JSON is YAML
    return f"{m.group(1)}:", lines + body


def merge_sections(text: str) -> str:
    """`text` with each repeated block `key:` (a mapping on the following indented lines) merged into
    the first block of that key; everything else as it is."""
    blocks = re.split(r"(?m)^(?=\S)", text)
    first: dict[str, int] = {}
    out: list[str] = []
    for block in blocks:
        head, _, body = block.partition("\n")
        head, body = _as_block(head, body)
        m = _HEAD.match(head)
        if m is None or m.group(1) not in first:
            if m is not None:
                first[m.group(1)] = len(out)
            out.append(f"{head}\n{body}" if m is not None else block)
            continue
        i = first[m.group(1)]
        kept = out[i] if out[i].endswith("\n") else out[i] + "\n"
        out[i] = kept + body
    return "".join(out)


def add_yaml(text: str, extra: str) -> str:
    """`extra`'s top-level sections added to the config `text`, merged into the ones it has."""
    return merge_sections(text.rstrip("\n") + "\n" + extra.lstrip("\n"))
