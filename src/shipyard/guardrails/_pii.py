"""PII and secrets: find them, redact them with typed placeholders (`[EMAIL]`), also in a stream.

    output:
      - kind: pii
        action: redact            # or block
        entities: [EMAIL, PHONE, CARD, IBAN, SSN, IP_ADDRESS, SECRET, ADDRESS]   # default: all

What counts (each checked, not only matched):
- EMAIL: an address with a dotted domain.
- PHONE: digits that `phonenumbers` (Google's libphonenumber) parses as a valid number, international
  (+ or 00) or national in one of `regions`, with extensions (ext., x, #).
- CARD: 12..19 digits, one kind of separator (space or dash) or none, Luhn-valid.
- IBAN: country code, check digits, 11..30 characters; ISO 7064 mod-97 must give 1.
- SSN: US social security numbers AAA-GG-SSSS (not 000/666/9xx areas, 00 groups, 0000 serials).
- IP_ADDRESS: IPv4 and IPv6 (validated by `ipaddress`), but not loopback or unspecified ones (127.0.0.1,
  ::1, 0.0.0.0), which identify no one.
- SECRET: API keys by their issuers' prefixes (sk-, sk_live_, ghp_/gho_/ghs_/ghu_/ghr_, github_pat_,
  AKIA/ASIA, xox?-, AIza, glpat-), JWTs, private key blocks, and high-entropy values after
  key= / token: / password= (only the value is redacted).
- ADDRESS: street addresses: a number and a street type (US/UK/Commonwealth), German-style
  "Hauptstraße 5", French/Spanish/Italian "12 rue ...", "Calle ... 5", "Via ... 5"; with unit, city,
  state and ZIP when they follow.

Full-width digits, letters and signs (`０３－１２３４－５６７８`, `ｊａｎｅ＠…`) count as their ASCII forms, and
in CJK text, which runs values into the words around them (`電話03-1234-5678です`), ideographs, kana and
hangul next to a phone number, an email or a card number do not hide it as a Latin letter would.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from shipyard._lazy import lazy_re
from shipyard.config import StrictModel
from shipyard.guardrails._registry import guardrail_kind
from shipyard.guardrails._types import ALLOW, Decision, Guardrail, GuardrailInput, Verdict

EntityType = Literal["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP_ADDRESS", "SECRET", "ADDRESS"]
ENTITY_TYPES: tuple[EntityType, ...] = (
    "EMAIL",
    "PHONE",
    "CARD",
    "IBAN",
    "SSN",
    "IP_ADDRESS",
    "SECRET",
    "ADDRESS",
)
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "ES", "IT", "NL", "AU", "CA", "JP", "MX", "CH", "SE")
# Order decides which of two overlapping finds wins (earlier first): checked types before loose ones;
# an address wins over a phone number inside it (a postcode that parses as one).
_PRIORITY = {
    t: i for i, t in enumerate(("SECRET", "EMAIL", "IBAN", "CARD", "SSN", "IP_ADDRESS", "ADDRESS", "PHONE"))
}


@dataclass(frozen=True, slots=True)
class Entity:
    type: EntityType
    start: int
    end: int
    value: str


# A word character of a script written with spaces between words: CJK text runs a number or an address
# into the words around it ("電話03-1234-5678です"), so there the ideographs, kana and hangul next to one
# do not make it part of a longer token, as a Latin letter or a digit would.
_W = r"[^\W\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff]"
_EMAIL = lazy_re(
    rf"(?<![.+-])(?<!{_W})[A-Za-z0-9._%+-]{{1,64}}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,24}}(?!{_W})"
)
# not inside a longer token (a hex id "3f9a60867284649…") nor the tail of a longer digit grouping
# (an IBAN "DE89 3704 0044 …"): neither is a card
# (the lookbehinds come after the first digit, so that the pattern starts with one: see _NUMBER_NAME)
_CARD = lazy_re(rf"\d(?<![+-]\d)(?<!{_W}\d)(?<!\d[ -]\d)(?:[ -]?\d){{11,18}}(?![-])(?!{_W})")
# \b[A-Z]{2}\d{2}..., written to start with a letter (`\b` first: no skipping, as for _CARD)
_IBAN = lazy_re(r"[A-Z](?<!\w[A-Z])[A-Z]\d\d(?:[ ]?[A-Z0-9]){11,30}\b")
_SSN = lazy_re(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
_SSN_BARE = lazy_re(
    r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\W{0,3}(?:is\W+)?((?!000|666|9\d\d)\d{9})\b"
)
_IPV4 = lazy_re(
    r"(?<!\d\.)(?<!\d)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"
)
_IPV6 = lazy_re(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")
_PHONE = lazy_re(
    # atomic groups: a long run of digits must not make the engine try every way to split it
    # "(" only in the first two groups: "+1 (415) 555-2671", "+44 (0)20 7946 0958"; so a number
    # written right after another, "(415) 555-2671 (415) 555-2672", starts a new match
    rf"(?<!\+)(?<!{_W})(?>(?:\+|00)?\(?\d{{1,4}}\)?(?:[ .\-/]?\(?\d{{1,5}}\)?)(?:[ .\-/]?\d{{1,5}}){{0,6}})"
    rf"(?>(?:\s*(?:ext\.?|extension|x|#)\s*\d{{1,6}})?)(?!{_W})",
    re.I,
)
_PHONE_SEPARATOR = lazy_re(r"[ ()./-]")
_PHONE_NEXT = lazy_re(r"\s+(?=[+(0])")  # where a number written after another may start
_PHONE_SHAPE = lazy_re(r"\(\d{2,5}\)|\d+[ .-]\d+[ .-]\d+")
# card-shaped; a Brazilian CEP; a version number (1.2.3.4000)
_NOT_PHONE = lazy_re(r"\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,7}|\d{5}-\d{3}|\d{1,2}(?:\.\d+){2,}")
_DATE = lazy_re(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
# What starts like a date, a year or a timestamp, or is an amount, is not a national phone number: no
# region's national format opens with a 4-digit group 19xx / 20xx ("2026 10 15", "2026-0042-17",
# "20261015 1430"), and a date takes the digits after it only when a time follows ("2026-10-15 14:30").
_NOT_PHONE_START = lazy_re(
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?!\d)"
    r"|(?:19|20)\d\d(?:[-/. ]|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d))"
)
_AMOUNT = lazy_re(r"\d+(?:,\d{3})*\.\d{2}")  # 1234567.89
_TIME_AFTER = lazy_re(r"[:h]\d\d")  # the last group is an hour: "... 14:30", "14h30"
_LAST_GROUP = lazy_re(r"[ .\-/]?\d{1,2}$")
_SECRET_PREFIXED = lazy_re(
    r"(?<![\w-])(?:sk-(?:proj-|ant-(?:api\d\d-)?|live-)?[A-Za-z0-9_-]{20,}|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[0-9A-Za-z_-]{20}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
_PRIVATE_KEY = lazy_re(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)
_SECRET_ASSIGNED = lazy_re(
    r"(?i)\b(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?(?:key|token)|auth[_-]?token|"
    r"token|password|passwd|pwd|bearer)\b[\"']?\s*(?:[:=]|is|was)\s*[\"']?([^\s\"',;<>]{8,})"
)
_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Square|Sq|Terrace|Ter|Way|"
    r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Trail|Trl|Row|Close|Crescent|Cres|Gardens?|Mews|Alley|Aly|Bypass|Camp|"
    r"Cape|Causeway|Parklands?|Glades?|Parts?|Centers?|Centre|Commons?|Corners?|Course|Coves?|Creek|Crossing|Crossroad|Cross|Curve|Dale|Dam|"
    r"Divide|Estates?|Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|"
    r"Freeway|Glens?|Greens?|Groves?|Harbors?|Harbours?|Haven|Heights|Hills?|Hollow|Inlet|Islands?|Isle|"
    r"Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lights?|Loaf|Locks?|Lodge|Loop|Mall|Manors?|Meadows?|Mills?|"
    r"Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parks?|Pass|Passage|Path|Pike|Pines?|Plains?|"
    r"Plaza|Points?|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|River|Roads|Roadway|Route|Rue|Run|"
    r"Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares|Station|Stravenue|Stream|Streets|Summit|Throughway|Trace|"
    r"Track|Trafficway|Tunnel|Turnpike|Underpass|Unions?|Valleys?|Via|Viaduct|Views?|Villages?|Ville|Vista|"
    r"Walks?|Wall|Ways|Wells?|Wharf|Wynd|Drives|Burgs?|Brooks?|Branch|Bridge|Bluffs?|Bottom|Bend|Beach|Canyon|"
    r"Cliffs?|Club|Courts|Crest|Gateway|Parade|Esplanade|Grange|Rise|Vale|Gate|Green|Hill|Quay|Grove|[A-Z][a-z]+way"
)
_UP = "A-ZÀ-ÖØ-Þ"  # capital letters, Latin-1 included
_NAME = rf"[{_UP}一-龥ぁ-んァ-ヶ][\w'’.-]*"
_CONNECT = r"(?:de|del|la|las|los|di|della|delle|dei|degli|do|da|dos|das|du|des|e|y|van|der|den|von)"
_UNIT = r"(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Fl\.?|Room|Rm\.?|Piso|Puerta|Piano|Scala|Appartamento|Interno|Apto\.?|Casa|Bloco|#)\s*[\w-]+)*"
_POSTCODE = r"(?:\d{4,5}(?:-\d{3,4})?|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d|\d{4}\s?[A-Z]{2}|\d{8})"
# ", City, ST 12345" / ", City, 12345" / ", 12345 City" / ", City (PR)" after a street
_TAIL = (
    rf"(?:,?\s*\n?\s*(?:{_NAME}(?:[ -](?:{_CONNECT}[ -])?[{_UP}(][\w'’.)-]*){{0,3}},?\s+)?(?:[A-Z]{{2,3}},?\s+)?{_POSTCODE}"
    rf"(?:,?\s+{_NAME}(?:[ -]{_NAME}){{0,3}}(?:\s*[/(]\s*[A-Z]{{2}}\)?)?)?)?"
)
_ROMANCE_TYPES = (
    r"Calle|C\.|Avenida|Avda\.?|Av\.|Acceso|Alameda|Camino|Carretera|Cañada|Glorieta|Pasaje|Paseo|Plaza|Ronda|"
    r"Rambla|Urbanización|Vía|Vial|Callejón|Pasadizo|Canale|Carrer|Via|Viale|Piazza|Piazzale|Corso|Strada|Vicolo|Borgo|Contrada|Largo|"
    r"Rotonda|Incrocio|Rua|Travessa|Estrada|Rodovia|Praça|Vila|Viela|Lagoa|Campo|Chácara|Colônia|Conjunto|Quadra|"
    r"Setor|Sítio|Trecho|Vereda|Parque|Passarela|Pátio|Loteamento|Núcleo|Morro|Residencial|Recanto|Vale|Trevo|"
    r"Distrito|Jardim|Esplanada|Fazenda|Ladeira|Rampa|Condomínio|Estação|Lago|Área|Viaduto|Aeroporto|Feira"
)
_COMPOUND = (
    r"straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|straat|laan|plein|gracht|kade|pad|dijk|"
    r"singel|hof|steeg|dreef|markt|plantsoen"
)
_Trie = dict[str, "_Trie"]


def _alternation(words: Iterable[str]) -> str:
    r"""A pattern matching any of `words` (literally), as a trie: `s(?:ingel|t(?:eeg|r(?:\.|a(?:at|sse))))`.
    The engine tries the alternatives of a group one by one at each position; a trie has it try a
    handful of first letters instead of every word."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def pattern(node: _Trie) -> str:
        alternatives = [re.escape(ch) + pattern(rest) for ch, rest in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        group = (
            alternatives[0] if len(alternatives) == 1 and "" not in node else f"(?:{'|'.join(alternatives)})"
        )
        return group + "?" if "" in node else group

    return pattern(trie)


def _any_of(words: Iterable[str]) -> re.Pattern[str]:
    """A pattern (written and compiled on first use) that finds any of `words` (literally): one search
    in C instead of a loop of `in` tests."""
    kept = tuple(words)
    return lazy_re(lambda: _alternation(kept))


# Each kind of address: its gate, and the pattern. The gate: the substrings one of which a text must
# contain for the pattern to be tried (a lower-case one is looked for in the lower-cased text, for a
# pattern that ignores case; empty: always tried), or a pattern a text must match (a str), or None: a
# number followed by a capitalized word (`_NUMBER_NAME`). A gate only saves work: it must let through
# every text its pattern can match in. Tried separately, so a text pays only for the kinds it may hold,
# and a process compiles only the patterns its texts get through to.
_ADDRESS_PARTS: tuple[tuple[tuple[str, ...] | str | None, str], ...] = (
    # English: 12 Main Street (Apt 4), City, ST 12345 / UK and Canadian postcodes
    (
        None,
        rf"\b\d{{1,6}}[A-Za-z]?(?:/\d{{1,5}})?,?\s+(?:[NSEW]\.?\s+|North\s+|South\s+|East\s+|West\s+)?"
        rf"(?:{_NAME}\s+){{1,4}}?(?:{_STREET_TYPES})\b\.?(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b\.?)?{_UNIT}{_TAIL}",
    ),
    # Flat 6, Claire Plaza (the number is the flat's)
    (
        ("Flat", "Apartment", "Apt", "Unit", "Suite", "Studio"),
        rf"\b(?:Flat|Apartment|Apt\.?|Unit|Suite|Studio)\s+\d+\w?\s*[,\n]\s*(?:{_NAME}\s+){{1,3}}(?:{_STREET_TYPES})\b{_TAIL}",
    ),
    # German / Dutch compounds: Hauptstraße 5, Magdalena-Hein-Allee 389, Joepsteeg 43
    (
        tuple(_COMPOUND.replace("\\", "").split("|")),
        rf"\b[{_UP}][\w.'-]*?(?i:{_COMPOUND})\s+\d{{1,5}}[a-z]?(?:[/-]\d{{1,5}})?{_TAIL}",
    ),
    # French: 12 bis, rue de la Paix, 75002 Paris
    (
        ("rue", "avenue", "boulevard", "bd", "place", "chemin", "allée", "impasse", "quai", "route", "cours",
         "square", "passage", "voie"),
        rf"\b\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|boulevard|bd|place|chemin|allée|impasse|quai|route|cours|"
        rf"square|passage|voie)\s+(?:(?:de|du|des|la|le|l'|d')\s*)*[{_UP}][\w'-]+(?:[\s-]+[{_UP}][\w'-]+){{0,3}}{_TAIL}",
    ),
    # Spanish / Italian / Portuguese: Calle de Alcalá 42, Via Cavalcanti, 21, Rua Augusta, nº 5
    (
        # its ~80 street types, each followed by a space: every alternative starts with a letter, so the
        # engine skips to those (with `\b` first it would try each alternative at every position)
        "|".join(rf"{street_type}\s" for street_type in _ROMANCE_TYPES.split("|")),
        rf"\b(?:{_ROMANCE_TYPES})\s+(?:{_CONNECT}\s+|{_NAME}\s+){{0,5}}?{_NAME},?\s+(?:n[.ºo°]\s*)?\d{{1,5}}[A-Za-z]?\b"
        rf"{_UNIT}(?:,\s*[\w .ªº-]{{0,40}}?)?{_TAIL}",
    ),
    # India: H.No. 46, Rattan / 577, Sachar Ganj, Karaikudi-301852
    (
        ("No", "Ganj", "Nagar", "Marg", "Chowk", "Colony", "Path", "Zila", "Circle", "Road"),
        rf"\b(?:H\.?\s?No\.?|House No\.?|Flat No\.?|Plot No\.?)\s*\d+[\w/-]*,?\s*\n?\s*{_NAME}(?:\s+{_NAME}){{0,3}}"
        rf"(?:,\s*{_NAME}-\d{{6}})?"
        rf"|\b\d{{1,4}}(?:/\d{{1,4}})?(?:,\s*|\s*\n\s*)(?:{_NAME}\s+){{0,2}}(?:Ganj|Nagar|Marg|Chowk|Colony|Path|Zila|"
        rf"Circle|Road)\b(?:,\s*{_NAME}-\d{{6}})?",
    ),
    # Japan: 岡山県富里市箪笥町5丁目12番3号
    (
        ("都", "道", "府", "県"),
        r"[一-龥ぁ-んァ-ヶー]{1,4}[都道府県][一-龥ぁ-んァ-ヶーヵヶ]{1,12}?[市区町村郡][一-龥ぁ-んァ-ヶーヵヶ]{0,12}?"
        r"[0-9０-９一二三四五六七八九十]+丁目(?:[0-9０-９]+番(?:[0-9０-９]+号)?)?",
    ),
)  # fmt: skip
_DIGIT = lazy_re(r"\d")
# Quick gates: each starts with a digit (or a literal), so the engine skips to those instead of trying
# every position: it does for a pattern whose first item is a character class or a literal (`\d{3}`, a
# lookbehind or `\b` first is not one). _NUMBER_NAME is bounded and possessive: no backtracking over a
# run (a [\w/] given back never lets ",?\s" match).
_NUMBER_NAME = lazy_re(rf"\d[\w/]{{0,12}}+,?\s+[{_UP}一-龥ぁ-んァ-ヶ]")
_SSN_SHAPE = lazy_re(r"\d\d\d[- ]\d\d[- ]\d{4}")
_IPV4_SHAPE = lazy_re(r"\d\d{0,2}\.\d{1,3}\.\d{1,3}\.\d")
_IPV6_SHAPE = lazy_re(r":[0-9A-Fa-f]{0,4}:")  # in every IPv6 match; a JSON text's '": "' is not


def _address_gate(gate: tuple[str, ...] | str | None) -> Callable[[str, str], object]:
    """Whether a text (and its lower-cased copy) may hold an address of a kind (see `_ADDRESS_PARTS`)."""
    if gate is None:
        return lambda text, low: _NUMBER_NAME.search(text)
    if isinstance(gate, str):
        pattern = lazy_re(gate)
        return lambda text, low: pattern.search(text)
    if not gate:
        return lambda text, low: True
    cased = [n for n in gate if n != n.lower()]  # looked for as written
    folded = [n for n in gate if n == n.lower()]  # looked for in the lower-cased text
    if not folded:
        in_text = _any_of(cased)
        return lambda text, low: in_text.search(text)
    in_low = _any_of(folded)
    if not cased:
        return lambda text, low: in_low.search(low)
    in_text = _any_of(cased)
    return lambda text, low: in_text.search(text) or in_low.search(low)


# Each compiled on first use (they are large: ~0.1 s in all)
_ADDRESS_PATTERNS = tuple((_address_gate(gate), lazy_re(pattern)) for gate, pattern in _ADDRESS_PARTS)
# The kinds gated by words are tried (each through its own gate) only when one search finds any of
# their words (as written, or in the lower-cased text): most texts hold none. The others, always.
_NOT_WORD_GATED = tuple(
    kind
    for kind, (gate, _) in zip(_ADDRESS_PATTERNS, _ADDRESS_PARTS, strict=True)
    if not isinstance(gate, tuple) or not gate
)
_ADDRESS_WORDS = _any_of(
    n for gate, _ in _ADDRESS_PARTS if isinstance(gate, tuple) for n in gate if n != n.lower()
)
_ADDRESS_WORDS_LOW = _any_of(
    n for gate, _ in _ADDRESS_PARTS if isinstance(gate, tuple) for n in gate if n == n.lower()
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _emails(text: str) -> Iterable[Entity]:
    for m in _EMAIL.finditer(text):
        yield Entity("EMAIL", m.start(), m.end(), m.group(0))


def _cards(text: str) -> Iterable[Entity]:
    for m in _CARD.finditer(text):
        raw = m.group(0)
        seps = (" " in raw) + ("-" in raw)
        digits = raw.replace(" ", "").replace("-", "")
        if seps <= 1 and 12 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            yield Entity("CARD", m.start(), m.end(), raw)


def _ibans(text: str) -> Iterable[Entity]:
    for m in _IBAN.finditer(text):
        raw = m.group(0).rstrip()
        if iban_ok(raw):
            yield Entity("IBAN", m.start(), m.start() + len(raw), raw)


def _ssns(text: str, low: str) -> Iterable[Entity]:
    if _SSN_SHAPE.search(text):
        for m in _SSN.finditer(text):
            yield Entity("SSN", m.start(), m.end(), m.group(0))
    if "ssn" in low or "social security" in low:
        for m in _SSN_BARE.finditer(text):
            yield Entity("SSN", m.start(1), m.end(1), m.group(1))


def _ips(text: str) -> Iterable[Entity]:
    """IPv4 and IPv6 addresses, except loopback and unspecified ones (127.0.0.1, ::1, 0.0.0.0, ::):
    every machine has them, so they identify no one, and they are what a local error names."""
    if _IPV4_SHAPE.search(text):
        for m in _IPV4.finditer(text):
            raw = m.group(0)
            if not (raw.startswith("127.") or raw == "0.0.0.0"):
                yield Entity("IP_ADDRESS", m.start(), m.end(), raw)
    if not _IPV6_SHAPE.search(text):
        return
    for m in _IPV6.finditer(text):
        raw = m.group(0)
        if raw.count(":") < 2 or not any(c.isalnum() for c in raw):
            continue
        try:
            address = ipaddress.IPv6Address(raw.split("%")[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_unspecified):
            yield Entity("IP_ADDRESS", m.start(), m.end(), raw)


MAX_PHONE_PARSES = 600
"""libphonenumber parses per text (a candidate takes one per region tried); past this (a hostile text
full of digit groups), a candidate written like a phone number with 8..15 digits is taken as one
unparsed: redact too much, not too little."""


class _PhoneParser:
    """Parses phone candidates with libphonenumber within a budget of `MAX_PHONE_PARSES` parses."""

    def __init__(self, regions: Sequence[str]) -> None:
        self.regions = tuple(regions)
        self.parsed = 0

    def is_phone(self, raw: str) -> bool:
        digits = sum(map(str.isdigit, raw))
        if not 7 <= digits <= 17 or _DATE.fullmatch(raw) or _NOT_PHONE.fullmatch(raw):
            return False
        international = raw.startswith(("+", "00", "(+"))
        if not international and (_NOT_PHONE_START.match(raw) or _AMOUNT.fullmatch(raw)):
            return False
        if not international and digits < 10 and not _PHONE_SEPARATOR.search(raw):
            return False  # a bare short run of digits: an order or account number, not a phone
        candidate = "+" + raw[2:] if raw.startswith("00") else raw
        # Written like a phone number (international, or 3+ groups / parentheses): a number that is
        # possible (right length for its country) counts; otherwise it must be a valid one.
        shaped = international or bool(_PHONE_SHAPE.search(raw))
        tries = (None,) if international else self.regions
        if self.parsed + len(tries) > MAX_PHONE_PARSES:
            return shaped and 8 <= digits <= 15
        phone, parses = _parsed_phone(candidate, tries, shaped and digits <= 13)
        self.parsed += parses
        return phone


@functools.lru_cache(maxsize=4096)
def _parsed_phone(
    candidate: str, tries: tuple[str | None, ...], possible_is_enough: bool
) -> tuple[bool, int]:
    """Whether libphonenumber takes `candidate` as a phone number in one of the regions `tries` (in
    order: the first that parses it as a possible number, when that is enough, or a valid one), and the
    parses that took. A pure function of its arguments, and the same numbers come back (an order's
    dates and amounts in every record of it): remembered for the last 4,096 candidates."""
    import phonenumbers  # ~60 ms: on first use, not when shipyard.guardrails is imported

    parses = 0
    for region in tries:
        parses += 1
        try:
            num = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if (possible_is_enough and phonenumbers.is_possible_number(num)) or phonenumbers.is_valid_number(num):
            return True, parses
    return False, parses


def _phones(text: str, regions: Sequence[str]) -> Iterable[Entity]:
    parser = _PhoneParser(regions)
    for m in _PHONE.finditer(text):
        raw = m.group(0)
        if _TIME_AFTER.match(text, m.end()):  # "2026-10-15 14:30": the last group is an hour
            raw = _LAST_GROUP.sub("", raw)
        start = m.start() + (len(raw) - len(raw.lstrip()))
        raw = raw.strip()
        if "." in raw and _IPV4.fullmatch(raw):  # an IPv4 address (a loopback one: not found as an IP)
            continue
        if parser.is_phone(raw):
            yield Entity("PHONE", start, start + len(raw), raw)
            continue
        # Numbers written one after the other match as one run: cut it where a number may start
        # (a space, then "+", "(" or a trunk "0") and try each piece.
        starts = [0] + [c.end() for c in _PHONE_NEXT.finditer(raw)]
        if len(starts) > 1:
            for a, b in itertools.pairwise([*starts, len(raw)]):
                piece = raw[a:b].rstrip()
                if parser.is_phone(piece):
                    yield Entity("PHONE", start + a, start + a + len(piece), piece)


_SECRET_PREFIXES = (
    "sk-",
    "sk_",
    "rk_",
    "pk_",
    "gh",
    "github_pat_",
    "AKIA",
    "ASIA",
    "xox",
    "AIza",
    "glpat-",
    "eyJ",
)
_SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "pwd", "bearer")
# what a text must contain (as written / lower-cased) for the prefixed / assigned secrets to be looked for
_SECRET_PREFIX_GATE = _any_of(_SECRET_PREFIXES)
_SECRET_WORD_GATE = _any_of(_SECRET_WORDS)


def _secrets(text: str, low: str) -> Iterable[Entity]:
    if _SECRET_PREFIX_GATE.search(text):
        for m in _SECRET_PREFIXED.finditer(text):
            yield Entity("SECRET", m.start(), m.end(), m.group(0))
    if "-----BEGIN" in text:
        for m in _PRIVATE_KEY.finditer(text):
            yield Entity("SECRET", m.start(), m.end(), m.group(0))
    if not _SECRET_WORD_GATE.search(low):
        return
    for m in _SECRET_ASSIGNED.finditer(text):
        value = m.group(1)
        keyword = m.group(0)[: m.start(1) - m.start()].lower()
        password = any(k in keyword for k in ("password", "passwd", "pwd"))
        if password or (_entropy(value) >= 3.0 and any(c.isdigit() for c in value)):
            yield Entity("SECRET", m.start(1), m.end(1), value)


def _addresses(text: str, low: str) -> Iterable[Entity]:
    """The street addresses in `text` (which has a digit: every address form has a number)."""
    words = _ADDRESS_WORDS.search(text) or _ADDRESS_WORDS_LOW.search(low)
    for gate, pattern in _ADDRESS_PATTERNS if words else _NOT_WORD_GATED:
        if not gate(text, low):
            continue
        for m in pattern.finditer(text):
            raw = m.group(0).rstrip(" ,")
            yield Entity("ADDRESS", m.start(), m.start() + len(raw), raw)


_NUMERIC = frozenset(("PHONE", "CARD", "IBAN", "SSN"))  # each needs 7+ digits (an address, 1)
# the types looked for by default, by the number of digits in a text (up to 7)
_DEFAULT_WANTED = tuple(
    frozenset(t for t in ENTITY_TYPES if (n >= 7 or t not in _NUMERIC) and (n > 0 or t != "ADDRESS"))
    for n in range(8)
)


# Full-width forms (U+FF01..U+FF5E: "０３－１２３４－５６７８", "＋８１", "ｊａｎｅ＠…"), the ideographic space and
# the dashes people type between digits, read as their ASCII counterparts: one character for one, so
# what is found keeps its place in the text as written.
_ASCII_FORMS = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {
    0x3000: 0x20,
    **dict.fromkeys((0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2212), 0x2D),
}


def find_pii(
    text: str, *, entities: Iterable[str] = ENTITY_TYPES, regions: Sequence[str] = DEFAULT_REGIONS
) -> list[Entity]:
    """The PII in `text`, in order, without overlaps (a checked type wins over a looser one, then the
    longer find). Full-width digits, letters and signs count as their ASCII forms (`_ASCII_FORMS`);
    each entity's `value` is the text as written."""
    if text.isascii():
        return _find_pii(text, entities, regions)
    found = _find_pii(text.translate(_ASCII_FORMS), entities, regions)
    return [Entity(e.type, e.start, e.end, text[e.start : e.end]) for e in found]


def _find_pii(text: str, entities: Iterable[str], regions: Sequence[str]) -> list[Entity]:
    found: list[Entity] = []
    digits = len(_DIGIT.findall(text))
    wanted: set[str] | frozenset[str]
    if entities is ENTITY_TYPES:
        wanted = _DEFAULT_WANTED[min(digits, 7)]
    else:
        wanted = set(entities)
        if digits < 7:
            wanted -= _NUMERIC
            if not digits:
                wanted.discard("ADDRESS")
    low = text.lower()
    if "SECRET" in wanted:
        found += _secrets(text, low)
    if "EMAIL" in wanted and "@" in text:
        found += _emails(text)
    if "IBAN" in wanted:
        found += _ibans(text)
    if "CARD" in wanted:
        found += _cards(text)
    if "SSN" in wanted:
        found += _ssns(text, low)
    if "IP_ADDRESS" in wanted:
        found += _ips(text)
    if "ADDRESS" in wanted:
        found += _addresses(text, low)
    if "PHONE" in wanted:
        taken = [(e.start, e.end) for e in found]
        found += [p for p in _phones(text, regions) if not any(s < p.end and p.start < e for s, e in taken)]
    if not found:
        return found
    found.sort(key=lambda e: (_PRIORITY[e.type], -(e.end - e.start), e.start))
    chosen: list[Entity] = []
    for e in found:
        if not any(c.start < e.end and e.start < c.end for c in chosen):
            chosen.append(e)
    return sorted(chosen, key=lambda e: e.start)


def redact(text: str, found: Sequence[Entity]) -> str:
    """`text` with each entity replaced by its placeholder (`[EMAIL]`)."""
    out = []
    pos = 0
    for e in sorted(found, key=lambda e: e.start):
        out.append(text[pos : e.start])
        out.append(f"[{e.type}]")
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def redact_pii(text: str, **kwargs: object) -> tuple[str, list[Entity]]:
    """`text` redacted, and what was found (see `find_pii` for the keyword arguments)."""
    found = find_pii(text, **kwargs)  # type: ignore[arg-type]
    return (redact(text, found) if found else text), found


class StreamRedactor:
    """Redacts a streamed answer: `feed` each chunk and send what it returns; `finish` at the end.

    It holds back only a bounded tail (`hold` characters, and never more than `max_buffer`), so a
    value split across chunks is still seen whole: text is released up to the last space before the
    tail, and never past the start of a value found there.
    """

    def __init__(
        self,
        *,
        entities: Iterable[str] = ENTITY_TYPES,
        regions: Sequence[str] = DEFAULT_REGIONS,
        hold: int = 96,
        max_buffer: int = 8192,
    ) -> None:
        self.entities = tuple(entities)
        self.regions = tuple(regions)
        self.hold = hold
        self.max_buffer = max_buffer
        self.buffer = ""
        self.found: list[Entity] = []

    def feed(self, chunk: str) -> str:
        """The text that is safe to send now (redacted)."""
        self.buffer += chunk
        if len(self.buffer) <= self.hold:
            return ""
        found = find_pii(self.buffer, entities=self.entities, regions=self.regions)
        cut = len(self.buffer) - self.hold
        space = max(self.buffer.rfind(" ", 0, cut), self.buffer.rfind("\n", 0, cut))
        if space > 0:
            cut = space + 1
        elif len(self.buffer) < self.max_buffer:
            return ""  # one long token so far: wait for its end
        for e in found:
            if e.start < cut < e.end or (e.end >= len(self.buffer) - 1 and e.start < cut):
                cut = e.start  # a value that may go on: keep it whole for the next chunk
        return self._release(cut, found)

    def finish(self) -> str:
        """Everything still held, redacted."""
        found = find_pii(self.buffer, entities=self.entities, regions=self.regions)
        return self._release(len(self.buffer), found)

    def _release(self, cut: int, found: list[Entity]) -> str:
        if cut <= 0:
            return ""
        inside = [e for e in found if e.end <= cut]
        self.found += inside
        out = redact(self.buffer[:cut], inside)
        self.buffer = self.buffer[cut:]
        return out


class PiiOptions(StrictModel):
    """The options of a `pii` guardrail."""

    action: Literal["redact", "block"] = Field(
        "redact", description="replace each value with [TYPE], or block"
    )
    entities: list[EntityType] = Field(default_factory=lambda: list(ENTITY_TYPES), min_length=1)
    regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REGIONS),
        min_length=1,
        description="regions whose national phone formats count (international +/00 numbers always do)",
    )
    reply: str | None = Field(None, min_length=1, description="block: what the user gets instead")

    @field_validator("regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone regions {unknown}: use ISO 3166 codes such as US, GB, DE")
        return regions


@guardrail_kind("pii")
class Pii(Guardrail):
    """Redacts (or blocks on) emails, phone numbers, cards, IBANs, SSNs, IPs, secrets and addresses."""

    options = PiiOptions
    stages = ("input", "tool_result", "output")

    def __init__(self, name: str, options: PiiOptions) -> None:
        super().__init__(name, options)
        self.opts = options

    def check(self, inp: GuardrailInput) -> Decision:
        found = find_pii(inp.text, entities=self.opts.entities, regions=self.opts.regions)
        if not found:
            return ALLOW
        counts = Counter(e.type for e in found)
        reason = "found " + ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
        if self.opts.action == "block":
            return Decision(Verdict.BLOCK, reason=reason, text=self.opts.reply, score=1.0)
        return Decision(Verdict.REDACT, reason=reason, text=redact(inp.text, found), score=1.0)

    def stream(self) -> StreamRedactor:
        """A redactor for a streamed answer with this check's settings."""
        return StreamRedactor(entities=self.opts.entities, regions=self.opts.regions)
