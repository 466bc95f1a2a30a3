"""Text as the caches compare it: the normalized form the exact cache keys on, and the checks that
verify a semantic match (the same negations, the same numbers, the same names and codes, and no
content word changed for an unrelated one)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*(?:'[a-z]+)?")
_RAW_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$")
_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{1,80})[\"“”«»]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def normalize(text: str) -> str:
    """The form the exact cache keys on: Unicode NFKC, case-folded, runs of white space as one
    space, no white space at either end."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


NEGATIONS = frozenset(
    {
        "not", "no", "never", "nobody", "nothing", "none", "neither", "nor", "nowhere", "without",
        "cannot", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "wont",
        "shouldnt", "couldnt", "wouldnt", "havent", "hasnt", "hadnt", "mustnt", "neednt", "unable",
    }
)  # fmt: skip
"""Words that negate (contractions are read without their apostrophe: "can't" -> "cant")."""

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "first": "1st", "second": "2nd", "third": "3rd", "half": "0.5",
    "once": "1x", "twice": "2x", "single": "1", "double": "2x", "dozen": "12",
}  # fmt: skip

STOPWORDS = frozenset(
    """a an the i me my mine we us our you your yours he she it its they them their this that these
    those is are was were be been being am do does did doing have has had having can could would
    should shall will may might must to of in on at by for with from about as into onto up out over
    please pls hi hello hey thanks thank so just also and or but if then than there here what which
    who whom whose how when where why any some anything something whether get got still yet really
    tell know want wanted like need let im ive id youre its whats hows wheres possible able way
    kindly ok okay wondering wonder curious quick question help""".split()  # noqa: SIM905
)
"""Function words: a question changed only in these still asks the same thing."""


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers of `text`, apostrophes dropped ("can't" -> "cant")."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return [t.replace("'", "") for t in _TOKEN.findall(folded)]


def negation_count(words: list[str]) -> int:
    """How many negating words there are."""
    return sum(1 for w in words if w in NEGATIONS)


def numbers(words: list[str]) -> frozenset[str]:
    """The numbers of a text (digits with their separators dropped, and number words as digits),
    and the codes that carry digits (order ids, SKUs)."""
    out: set[str] = set()
    for w in words:
        if any(c.isdigit() for c in w):
            out.add(w.replace(",", ""))
        elif w in _NUMBER_WORDS:
            out.add(_NUMBER_WORDS[w])
    return frozenset(out)


def names(text: str) -> frozenset[str]:
    """Names a text mentions: capitalised words not opening a sentence, words in quotes, e-mail
    addresses, hyphenated or all-capital codes (case-folded)."""
    out: set[str] = {m.casefold() for m in _EMAIL.findall(text)}
    out.update(normalize(q) for q in _QUOTED.findall(text))
    start = True
    for m in _RAW_WORD.finditer(text):
        word = m.group(0)
        before = text[: m.start()]
        start = not before.strip() or bool(_SENTENCE_END.search(before))
        if word == "I" or word.startswith("I'"):
            continue
        if (word[0].isupper() and not start) or (len(word) > 1 and word.isupper()):
            out.add(word.casefold().replace("'", ""))
    return frozenset(out)


def _stem(w: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def content_words(words: list[str]) -> frozenset[str]:
    """The words that carry meaning: no function words, negations or numbers; plurals singular."""
    return frozenset(
        _stem(w)
        for w in words
        if w not in STOPWORDS and w not in NEGATIONS and not any(c.isdigit() for c in w)
    )


@dataclass(frozen=True, slots=True)
class Features:
    """What the verification of a semantic match compares, worked out once per text."""

    negations: int
    numbers: frozenset[str]
    names: frozenset[str]
    content: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Features:
        words = tokens(text)
        return cls(negation_count(words), numbers(words), names(text), content_words(words))

    def to_json(self) -> dict[str, Any]:
        return {
            "neg": self.negations,
            "num": sorted(self.numbers),
            "names": sorted(self.names),
            "content": sorted(self.content),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Features:
        return cls(int(d["neg"]), frozenset(d["num"]), frozenset(d["names"]), frozenset(d["content"]))


def mismatch(a: Features, b: Features) -> str | None:
    """Why two texts cannot mean the same (a different negation, number or name), or None.
    Changed content words are checked by the caller (they need the embedder)."""
    if a.negations != b.negations:
        return "negation"
    if a.numbers != b.numbers:
        return "number"
    if a.names != b.names:
        return "entity"
    return None
