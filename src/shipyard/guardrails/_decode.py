"""Bounded decoding of what an attacker may have encoded: character escapes (\\u0069, &#105;), base64,
base85, hex, binary, URL encoding, rot13,
leetspeak, reversed text and letters spaced apart.

`decoded_layers(text)` returns the texts hidden in `text`, each tagged with how it was reached
(`base64`, `hex>rot13`, ...). It is bounded three ways, so a hostile input cannot make it expensive:
at most `max_depth` nested layers, at most `max_layers` results, and at most `max_chars` decoded
characters in all. A layer is kept only when it decodes to mostly printable text.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

from shipyard._lazy import lazy_re

# Simple character-class runs (fast to scan for); each run is then checked.
_B64_RUN = lazy_re(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = lazy_re(r"[0-9a-fA-F]{16,}|[2-7][0-9a-fA-F](?:[ :][2-7][0-9a-fA-F]){7,}")  # spaced: ASCII bytes
_B85_RUN = lazy_re(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20,}")
_ESCAPE = lazy_re(r"\\u\{?([0-9a-fA-F]{4,6})\}?|\\x([0-9a-fA-F]{2})|&#x([0-9a-fA-F]{1,6});|&#(\d{1,7});")
_BIN_RUN = lazy_re(r"[01]{8}(?:[\s,]?[01]{8}){3,}")
_LEET_PAIR = lazy_re(r"[A-Za-z][013457@$]|[013457@$][A-Za-z]")
_SPACED = lazy_re(r"(?<![\w])(?:\w[ .\-_*]){3,}\w(?![\w])")
_URL_ESCAPES = lazy_re(r"(?:%[0-9a-fA-F]{2}.{0,3}){3,}")
_ROT13_HINT = lazy_re(r"rot-?13|caesar|\bcipher\b", re.I)
_TOKENS = lazy_re(r"[A-Za-z0-9@$]{3,}")
_LEET_CHARS = frozenset("013457@$")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_WORDS = lazy_re(r"[a-z]+")
_COMMON = frozenset(
    [
        "the",
        "and",
        "you",
        "your",
        "to",
        "of",
        "is",
        "are",
        "all",
        "a",
        "in",
        "it",
        "that",
        "this",
        "for",
        "with",
        "ignore",
        "instructions",
        "previous",
        "prompt",
        "system",
        "tell",
        "me",
        "now",
        "print",
        "reveal",
        "say",
        "please",
    ]
)
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)
_ROT13_COMMON = frozenset(w.translate(_ROT13) for w in _COMMON)  # words whose rot13 is a common word
_REVERSED_COMMON = frozenset(w[::-1] for w in _COMMON)


@dataclass(frozen=True, slots=True)
class Layer:
    """A decoded text and the chain of encodings that led to it (`base64`, `hex>rot13`)."""

    via: str
    text: str


def _printable(s: str) -> bool:
    if not s:
        return False
    good = sum(1 for c in s if c.isprintable() or c in "\n\t\r")
    letters = sum(1 for c in s if c.isalpha())
    return good / len(s) >= 0.9 and letters / len(s) >= 0.4


def _utf8(data: bytes) -> str | None:
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if _printable(s) else None


def _base64(text: str) -> list[str]:
    found = []
    for m in _B64_RUN.finditer(text):
        run = m.group(0)
        if run.isalpha() and (run.islower() or run.isupper()):
            continue  # a plain word or identifier, not base64
        body = run.rstrip("=")
        if len(body) % 4 == 1:
            continue
        padded = body + "=" * (-len(body) % 4)
        try:
            raw = (
                base64.urlsafe_b64decode(padded) if ("-" in body or "_" in body) else base64.b64decode(padded)
            )
        except (binascii.Error, ValueError):
            continue
        s = _utf8(raw)
        if s is not None:
            found.append(s)
    return found


def _hex(text: str) -> list[str]:
    found = []
    for m in _HEX_RUN.finditer(text):
        digits = re.sub(r"[ :]", "", m.group(0))
        if len(digits) % 2:
            digits = digits[:-1]
        if digits.isdigit():
            continue  # a number, not hex text
        try:
            s = _utf8(bytes.fromhex(digits))
        except ValueError:
            continue
        if s is not None:
            found.append(s)
    return found


def _base85(text: str) -> list[str]:
    """Base85 (RFC 1924, as Python and git write it) in runs that are not plain base64 material."""
    found = []
    for m in _B85_RUN.finditer(text):
        run = m.group(0)
        if run.isalnum() or sum(not c.isalnum() for c in run) < 3:
            continue  # base64 / an identifier: base85 uses symbols throughout
        try:
            s = _utf8(base64.b85decode(run))
        except ValueError:
            continue
        if s is not None:
            found.append(s)
    return found


def _char(code: int) -> str:
    return chr(code) if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""


def _escapes(text: str) -> list[str]:
    """\\uXXXX, \\u{...}, \\xXX and HTML character references written out (a model reads them as the
    characters: "\\u0069gnore", tag characters as "\\u{E0069}"); UTF-16 surrogate pairs joined."""
    if "\\" not in text and "&#" not in text:
        return []

    def one(m: re.Match[str]) -> str:
        hex4, hex2, href, dref = m.groups()
        return _char(int(hex4 or hex2 or href, 16) if dref is None else int(dref))

    joined = re.sub(
        r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})",
        lambda m: chr(0x10000 + ((int(m.group(1), 16) - 0xD800) << 10) + int(m.group(2), 16) - 0xDC00),
        text,
    )
    s = _ESCAPE.sub(one, joined)
    return [s] if s != text else []


def _binary(text: str) -> list[str]:
    found = []
    for m in _BIN_RUN.finditer(text):
        bits = re.findall(r"[01]{8}", m.group(0))
        s = _utf8(bytes(int(b, 2) for b in bits))
        if s is not None:
            found.append(s)
    return found


@functools.lru_cache(maxsize=16)
def _rot13_and_reversed(text: str) -> tuple[list[str], list[str]]:
    """rot13 / reversed text when it reads more like English than the text does (counted on the
    words first, so the whole text is transformed only when it will be kept)."""
    words = _WORDS.findall(text.lower())
    before = sum(1 for w in words if w in _COMMON)
    rot = sum(1 for w in words if w in _ROT13_COMMON)
    rev = sum(1 for w in words if w in _REVERSED_COMMON)
    hint = _ROT13_HINT.search(text) is not None
    rot_out = [text.translate(_ROT13)] if rot > before and (rot >= 2 or hint) else []
    rev_out = [text[::-1]] if rev > before and rev >= 2 else []
    return rot_out, rev_out


def _rot13(text: str) -> list[str]:
    return _rot13_and_reversed(text)[0]


def _reversed(text: str) -> list[str]:
    return _rot13_and_reversed(text)[1]


def _spaced(text: str) -> list[str]:
    """Letters written apart ("i g n o r e", "i.g.n.o.r.e") joined back into words."""
    if not _SPACED.search(text):
        return []
    s = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    return [s] if s != text else []


def _url(text: str) -> list[str]:
    if not _URL_ESCAPES.search(text):
        return []
    s = unquote(text)
    return [s] if s != text else []


def _is_leet(word: str) -> bool:
    return any(c in _LEET_CHARS for c in word) and any(c.isalpha() for c in word)


def _leet(text: str) -> list[str]:
    """Digits and symbols read as letters ("1gn0r3 4ll") when at least 3 words, and a quarter of them,
    mix the two."""
    if len(_LEET_PAIR.findall(text)) < 3:
        return []
    words = _TOKENS.findall(text)
    leet = sum(1 for w in words if _is_leet(w))
    if leet < 3 or leet * 4 < len(words):
        return []
    s = _TOKENS.sub(lambda m: m.group(0).translate(_LEET) if _is_leet(m.group(0)) else m.group(0), text)
    return [s] if s != text else []


_DECODERS = (
    ("escapes", _escapes),
    ("base64", _base64),
    ("hex", _hex),
    ("base85", _base85),
    ("binary", _binary),
    ("url", _url),
    ("rot13", _rot13),
    ("leet", _leet),
    ("reversed", _reversed),
    ("spaced", _spaced),
)
_SELF_UNDOING = frozenset(["rot13", "url", "leet", "reversed", "spaced", "escapes"])


def decoded_layers(
    text: str, *, max_depth: int = 2, max_layers: int = 12, max_chars: int = 64_000
) -> list[Layer]:
    """The texts encoded in `text`, breadth first, within the bounds (see the module's doc)."""
    layers: list[Layer] = []
    budget = max_chars
    frontier = [Layer("", text)]
    seen = {text}
    for _ in range(max_depth):
        nxt: list[Layer] = []
        for parent in frontier:
            for name, decoder in _DECODERS:
                if parent.via.endswith(name) and name in _SELF_UNDOING:
                    continue  # applying these twice undoes or repeats them
                for s in decoder(parent.text):
                    if s in seen or len(layers) >= max_layers or len(s) > budget:
                        continue
                    seen.add(s)
                    budget -= len(s)
                    layer = Layer(f"{parent.via}>{name}" if parent.via else name, s)
                    layers.append(layer)
                    nxt.append(layer)
        frontier = nxt
        if not frontier:
            break
    return layers
