"""Text normalization before any detector looks: what a model reads, not what a regex sees.

Evasions this undoes:
- Unicode tag characters (U+E0000..E007F): invisible, yet models read them as ASCII ("ASCII
  smuggling"). Their ASCII is recovered as a hidden payload and scanned on its own.
- Variation selectors (U+FE00..FE0F, U+E0100..E01EF): a run of them after a character can carry one
  byte each ("emoji smuggling"). Runs are decoded to bytes and scanned as a hidden payload.
- Zero-width and other format characters (ZWSP, ZWJ, word joiner, BOM, soft hyphen, Mongolian vowel
  separator, Hangul fillers) and bidi controls (LRE..RLO, LRI..PDI, LRM/RLM, ALM): removed.
- Compatibility forms (fullwidth, ligatures, mathematical alphanumerics, circled letters): NFKC.
- Homoglyphs (Cyrillic "о", Greek "ο", ...) in words that mix them with Latin letters or are made
  only of look-alikes: folded to the ASCII letter or digit they imitate (words of another script stay
  as they are, so Russian or Greek text is still read as itself), from
  Unicode's confusables data as the `confusable_homoglyphs` package ships it (MIT; data: Unicode
  confusables.txt, Unicode License v3), read once on first use.

The normalized text is for detection only; what the user or the model gets is never rewritten here.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources

TAG_FIRST, TAG_LAST = 0xE0000, 0xE007F
_VS_BMP = range(0xFE00, 0xFE10)  # VS1..VS16: byte values 0..15
_VS_SUP = range(0xE0100, 0xE01F0)  # VS17..VS256: byte values 16..255
_BIDI = frozenset([0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_INVISIBLE_EXTRA = frozenset([0x115F, 0x1160, 0x3164, 0xFFA0, 0x034F, 0x180E, 0x2800])
_KEEP_CF: frozenset[int] = frozenset()  # format characters we keep (none: \n and \t are Cc)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)  # letters only: a word is folded as a whole
_SMUGGLED_MIN = 4  # a run of at least this many variation selectors is read as smuggled bytes


@dataclass(slots=True)
class Normalized:
    """A text as detectors read it.

    Attributes:
        text: NFKC, invisible and bidi characters removed, homoglyphs folded to ASCII.
        hidden: payloads recovered from tag characters and variation-selector runs.
        signals: what was found: `tag_chars`, `variation_selectors`, `invisible`, `bidi`, `homoglyphs`.
    """

    text: str
    hidden: list[str] = field(default_factory=list)
    signals: set[str] = field(default_factory=set)


@functools.cache
def _fold_table() -> dict[int, str]:
    """Non-ASCII characters that Unicode lists as confusable with an ASCII letter or digit."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    data: dict[str, list[dict[str, str]]] = json.loads(raw)
    table: dict[int, str] = {}
    # Prefer lowercase letters, then digits, then uppercase, so "Ɩ" folds to "l" rather than "1".
    targets = sorted(
        (k for k in data if len(k) == 1 and k.isascii() and k.isalnum()),
        key=lambda k: (not k.islower(), not k.isdigit(), k),
    )
    for ascii_char in targets:
        for entry in data[ascii_char]:
            c = entry["c"]
            if len(c) == 1 and not c.isascii():
                table.setdefault(ord(c), ascii_char)
    for key, entries in data.items():  # a non-ASCII key whose confusables include ASCII
        if len(key) != 1 or key.isascii() or ord(key) in table:
            continue
        for entry in entries:
            c = entry["c"]
            if len(c) == 1 and c.isascii() and c.isalnum():
                table[ord(key)] = c
                break
    return table


def _vs_value(cp: int) -> int | None:
    if cp in _VS_BMP:
        return cp - 0xFE00
    if cp in _VS_SUP:
        return cp - 0xE0100 + 16
    return None


def _decode_bytes(data: bytes) -> str:
    return data.decode("utf-8", errors="ignore")


def normalize(text: str) -> Normalized:
    """Normalize `text` for detection (see the module's doc)."""
    out = Normalized(text="")
    if text.isascii():
        out.text = text
        return out
    kept: list[str] = []
    tag_payload: list[str] = []
    vs_run: list[int] = []

    def end_vs_run() -> None:
        if len(vs_run) >= _SMUGGLED_MIN:
            payload = _decode_bytes(bytes(vs_run))
            if payload.strip():
                out.hidden.append(payload)
                out.signals.add("variation_selectors")
        vs_run.clear()

    for ch in text:
        cp = ord(ch)
        if cp < 0x80:
            if vs_run:
                end_vs_run()
            kept.append(ch)
            continue
        vs = _vs_value(cp)
        if vs is not None:
            vs_run.append(vs)
            continue
        if vs_run:
            end_vs_run()
        if TAG_FIRST <= cp <= TAG_LAST:
            out.signals.add("tag_chars")
            if 0xE0020 <= cp <= 0xE007E:
                tag_payload.append(chr(cp - TAG_FIRST))
            continue
        if cp in _BIDI:
            out.signals.add("bidi")
            continue
        if cp in _INVISIBLE_EXTRA or (unicodedata.category(ch) == "Cf" and cp not in _KEEP_CF):
            out.signals.add("invisible")
            continue
        kept.append(ch)
    end_vs_run()
    if tag_payload:
        out.hidden.append("".join(tag_payload))
    folded = unicodedata.normalize("NFKC", "".join(kept))
    if not folded.isascii():
        table = _fold_table()

        def fold(m: re.Match[str]) -> str:
            word = m.group(0)
            if word.isascii():
                return word
            sub = word.translate(table)
            # A word is a disguise when it mixes in Latin letters, or when every letter of it has a
            # Latin look-alike; a word of another script that stays itself (Russian, Greek) is text.
            if sub != word and (sub.isascii() or any("a" <= c.lower() <= "z" for c in word)):
                out.signals.add("homoglyphs")
                return sub
            return word

        folded = _WORD.sub(fold, folded)
    out.text = folded
    return out
