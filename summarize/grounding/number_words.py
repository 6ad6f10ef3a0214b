"""Norwegian number words: their vocabulary and their values ("hundre og førtiåtte" -> 148).

The one job of this module is to say what a number word or a phrase of number words is
worth (:func:`parse_number`) and whether a word is one (:func:`is_number_word`); turning
them into digits in running text is :mod:`summarize.grounding.numbers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "is_number_word",
    "parse_number",
]

# --------------------------------------------------------------------------------------
# Vocabulary

_SIMPLE: dict[str, int] = {
    "null": 0,
    # numeral spellings of 1 (articles are handled separately)
    "én": 1,
    "éin": 1,
    "éi": 1,
    "ett": 1,
    "eitt": 1,
    "to": 2,
    "tre": 3,
    "fire": 4,
    "fem": 5,
    "seks": 6,
    "sju": 7,
    "syv": 7,
    "åtte": 8,
    "ni": 9,
    "ti": 10,
    "elleve": 11,
    "tolv": 12,
    "tretten": 13,
    "fjorten": 14,
    "femten": 15,
    "seksten": 16,
    "sytten": 17,
    "søtten": 17,
    "atten": 18,
    "nitten": 19,
}
_TENS: dict[str, int] = {
    "tjue": 20,
    "tyve": 20,
    "tretti": 30,
    "tredve": 30,
    "førti": 40,
    "firti": 40,
    "femti": 50,
    "seksti": 60,
    "sytti": 70,
    "søtti": 70,
    "åtti": 80,
    "nitti": 90,
}
_SIMPLE.update(_TENS)

_ARTICLES = frozenset({"en", "ein", "ei", "et", "eit"})
_ONE_NUMERALS = frozenset({"én", "éin", "éi", "ett", "eitt"})
# 1..9 as the second part of a compound: "tjueen", "tjueein", "førtiåtte"
_COMPOUND_UNITS: dict[str, int] = {
    "en": 1,
    "ein": 1,
    "ei": 1,
    "ett": 1,
    "eitt": 1,
    "én": 1,
    "éin": 1,
    "to": 2,
    "tre": 3,
    "fire": 4,
    "fem": 5,
    "seks": 6,
    "sju": 7,
    "syv": 7,
    "åtte": 8,
    "ni": 9,
}

_ORDINALS: dict[str, int] = {
    "første": 1,
    "fyrste": 1,
    "andre": 2,
    "tredje": 3,
    "fjerde": 4,
    "femte": 5,
    "sjette": 6,
    "sjuende": 7,
    "syvende": 7,
    "sjuande": 7,
    "åttende": 8,
    "åttande": 8,
    "niende": 9,
    "niande": 9,
    "tiende": 10,
    "tiande": 10,
    "ellevte": 11,
    "tolvte": 12,
    "trettende": 13,
    "trettande": 13,
    "fjortende": 14,
    "fjortande": 14,
    "femtende": 15,
    "femtande": 15,
    "sekstende": 16,
    "sekstande": 16,
    "syttende": 17,
    "syttande": 17,
    "attende": 18,
    "attande": 18,
    "nittende": 19,
    "nittande": 19,
    "tjuende": 20,
    "tjuande": 20,
    "tyvende": 20,
    "trettiende": 30,
    "trettiande": 30,
    "tredevte": 30,
}
_ORDINAL_UNITS = {k: v for k, v in _ORDINALS.items() if v < 10}
_HALF_WORDS = {"halvannen": "1,5", "halvannet": "1,5", "halvanna": "1,5", "halvannan": "1,5"}

# --------------------------------------------------------------------------------------
# Parsing number words


def _below100_word(w: str) -> int | None:
    """Value of one word 0..99 (no articles, no hundre/tusen)."""
    if w in _SIMPLE:
        return _SIMPLE[w]
    for t, tv in _TENS.items():
        if w.startswith(t):
            rest = w[len(t) :]
            u = _COMPOUND_UNITS.get(rest)
            if u is not None:
                return tv + u
    m = re.fullmatch(r"(\w+?)og(\w+)", w)  # archaic "femogtjue", "enogtyve"
    if m:
        unit = _COMPOUND_UNITS.get(m.group(1))
        tens = _TENS.get(m.group(2))
        if unit is not None and tens is not None:
            return tens + unit
    return None


def _split_word(w: str) -> list[str] | None:
    """A written-together number word split into parts: "tohundreogfemti" ->
    ["to", "hundre", "og", "femti"]. None if it is not (entirely) a number word."""
    w = w.lower()
    if w in ("hundre", "tusen"):
        return [w]
    if "-" in w:
        joined = w.replace("-", "")
        parts = _split_word(joined)
        return parts
    if _below100_word(w) is not None:
        return [w]
    if "hundre" not in w and "tusen" not in w:
        return None
    pieces = [p for p in re.split(r"(hundre|tusen)", w) if p]
    out: list[str] = []
    for p in pieces:
        if p in ("hundre", "tusen"):
            out.append(p)
        elif p.startswith("og") and out and out[-1] in ("hundre", "tusen"):
            rest = p[2:]
            if _below100_word(rest) is None:
                return None
            out += ["og", rest]
        elif _below100_word(p) is not None or (p in _ARTICLES and not out):
            out.append(p)
        else:
            return None
    return out if _phrase_value(out) is not None else None


def _below100(parts: list[str]) -> int | None:
    if len(parts) == 1:
        return _below100_word(parts[0])
    if len(parts) == 2:
        a, b = parts
        if a in _TENS and b in _COMPOUND_UNITS and b not in _ARTICLES:
            return _TENS[a] + _COMPOUND_UNITS[b]
    return None


def _multiplier(left: list[str], limit: int) -> int | None:
    if not left:
        return 1
    if len(left) == 1 and left[0] in _ARTICLES:
        return 1
    v = _below1000(left) if limit > 100 else _below100(left)
    if v is None or not 1 <= v < limit:
        return None
    return v


def _tail(right: list[str], f: Callable[[list[str]], int | None]) -> int | None:
    if not right:
        return 0
    if right[0] == "og":
        right = right[1:]
        if not right:
            return None
    return f(right)


def _scaled(parts: list[str], word: str, scale: int, below: Callable[[list[str]], int | None]) -> int | None:
    """Value of parts with at most one ``word`` ("hundre" = 100, "tusen" = 1000): the
    multiplier before it times ``scale`` plus the rest after it, read with ``below``;
    without ``word`` the whole is read with ``below``."""
    if parts.count(word) > 1:
        return None
    if word in parts:
        k = parts.index(word)
        lv = _multiplier(parts[:k], scale)
        rv = _tail(parts[k + 1 :], below)
        if lv is None or rv is None:
            return None
        return lv * scale + rv
    return below(parts)


def _below1000(parts: list[str]) -> int | None:
    return _scaled(parts, "hundre", 100, _below100)


def _phrase_value(parts: list[str]) -> int | None:
    """Value of a whole phrase of number-word parts, or None if it is not one number."""
    if not parts or parts[-1] == "og" or parts[0] == "og":
        return None
    return _scaled(parts, "tusen", 1000, _below1000)


def parse_number(words: str) -> int | None:
    """The value of a number written in words ("hundre og førtiåtte" -> 148), or None."""
    parts: list[str] = []
    for w in words.lower().split():
        sp = _split_word(w)
        if sp is None:
            if w in _ARTICLES or w == "og":
                parts.append(w)
                continue
            return None
        parts += sp
    return _phrase_value(parts)


def is_number_word(word: str) -> bool:
    """True for digits and unambiguous number words ("fem", "førtiåtte", "ett", "72",
    "halvannen"); False for the articles "en"/"ei"/"et"."""
    w = word.strip().strip(".,;:!?()«»\"'").lower()
    if not w:
        return False
    if any(ch.isdigit() for ch in w):
        return True
    if w in _HALF_WORDS:
        return True
    if w in _ORDINALS:
        return False
    return _split_word(w) is not None
