"""Normalisation of running text: spoken Norwegian numbers and units as digits and abbreviations.

The grounding verifier compares the numbers of an LLM draft with the numbers said in the
consultation. Speech says "hundre og førtiåtte over nittifire", "fem milligram" and
"fire komma en"; the note writes "148/94", "5 mg" and "4,1". Both sides are therefore
run through :func:`normalize_numbers` and then
:func:`summarize.grounding.quantities.extract_quantities`. What a number word is worth is
:mod:`summarize.grounding.number_words`.

Rules (bokmål and nynorsk):

* Cardinal words become digits: ``null``..``nitten``, tens (``tjue``/``tyve``,
  ``tretti``/``tredve``, ``førti``, ... ``nitti``), compounds written together, with a
  hyphen or apart ("førtiåtte", "førti-åtte", "førti åtte", "nittien", "tjueein",
  "femogtjue"), ``hundre`` and ``tusen`` phrases ("(et/eit) hundre og førti",
  "to hundre og femti", "to tusen og tjuefire", "tohundreogfemti").
* The article/numeral problem: ``en``/``ei``/``et``/``ein``/``eit`` are articles as often
  as numbers. They become ``1`` only when clearly numeric: followed by a measuring unit
  ("en milligram"), a time span ("en uke", "ett år", "ein dag"), a dosing count noun
  ("en tablett", "ett glass"), ``gang``/``gong`` in a frequency ("en gang daglig", not
  "med en gang"), or inside a number phrase ("et hundre", "en komma tre",
  "en og en halv", "en halv tablett"). The numeral spellings ``én``/``éin``/``éi``/``ett``/
  ``eitt`` are always 1 (except the idioms "ett eller annet", "én eller annen" ...).
  ``to`` is always 2 (it is not a preposition in Norwegian); ``tre`` after ``et``/``eit``
  is the tree and stays.
* ``halvannen`` -> ``1,5``, "en halv" -> ``0,5`` and "en kvart" -> ``0,25`` before a unit,
  time span or count noun, "to og en halv" -> ``2,5``, ``½`` -> ``0,5``.
* Decimals are written with the Norwegian decimal comma: "fire komma en" -> ``4,1``.
* "X over Y" between two whole numbers with X > Y and X >= 40 (blood pressure) -> ``X/Y``.
* Ordinals before a month are dates: "tredje mars" -> ``3. mars``; "klokka halv tre" ->
  ``klokka 2.30``.
* :func:`summarize.grounding.units.normalize_units` writes spoken units after a number as abbreviations:
  "5 milligram" -> ``5 mg``, "75 mikrogram"/"75 mcg" -> ``75 µg``, "91 kilo" -> ``91 kg``,
  "96 prosent" -> ``96 %``, "10 enheter" -> ``10 IE``, "millimol per liter" -> ``mmol/l``.

Nothing here logs text: transcripts and notes are patient data.
"""

from __future__ import annotations

import logging
import re

from summarize.grounding.number_words import (
    _ARTICLES,
    _HALF_WORDS,
    _ONE_NUMERALS,
    _ORDINAL_UNITS,
    _ORDINALS,
    _TENS,
    _below100_word,
    _phrase_value,
    _split_word,
    parse_number,
)
from summarize.grounding.units import _UNIT_WORDS, normalize_units

logger = logging.getLogger(__name__)

__all__ = [
    "normalize_numbers",
]

# --------------------------------------------------------------------------------------
# Context vocabulary: the words around a number that decide what it is

_ONE_IDIOM_NEXT = frozenset({"eller", "og"})
_ONE_IDIOM_AFTER = frozenset({"annet", "annen", "anna", "annan", "andre"})

MONTHS: dict[str, int] = {
    "januar": 1,
    "februar": 2,
    "mars": 3,
    "april": 4,
    "mai": 5,
    "juni": 6,
    "juli": 7,
    "august": 8,
    "september": 9,
    "oktober": 10,
    "november": 11,
    "desember": 12,
}
_MONTH_ABBR: dict[str, int] = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "okt": 10,
    "nov": 11,
    "des": 12,
}
# Words after which "en"/"ei"/"et" is the number 1.
_MEASURE_WORDS = frozenset(
    k for k in _UNIT_WORDS if k.replace(" ", "").isalpha() and k not in ("g", "l", "ie", "ug")
)
_TIME_WORDS = frozenset(
    {
        "sekund",
        "sekunder",
        "minutt",
        "minutter",
        "kvarter",
        "time",
        "timer",
        "timar",
        "døgn",
        "dag",
        "dager",
        "dagar",
        "uke",
        "uker",
        "uka",
        "veke",
        "veker",
        "veka",
        "måned",
        "måneder",
        "måneden",
        "månad",
        "månader",
        "år",
        "halvår",
    }
)
_COUNT_WORDS = frozenset(
    {
        "tablett",
        "tabletter",
        "tablettar",
        "tbl",
        "kapsel",
        "kapsler",
        "kapslar",
        "dose",
        "doser",
        "dosar",
        "dråpe",
        "dråper",
        "dropar",
        "ampulle",
        "ampuller",
        "plaster",
        "pust",
        "inhalasjon",
        "inhalasjonar",
        "inhalasjoner",
        "drag",
        "sprut",
        "stikk",
        "sprøyte",
        "sprøyter",
        "glass",
        "flaske",
        "porsjon",
        "kopp",
        "brusetablett",
        "stikkpille",
        "stikkpiller",
        "suppositorium",
        "pakning",
        "pakke",
    }
)
_UNITISH = _MEASURE_WORDS | _TIME_WORDS | _COUNT_WORDS
_GANG = frozenset({"gang", "gong"})
_FREQ_AFTER = frozenset(
    {"daglig", "dagleg", "dgl", "ukentlig", "vekentleg", "om", "i", "per", "pr", "hver", "kvar"}
)
_FREQ_I_AFTER = frozenset(
    {
        "døgnet",
        "uka",
        "uken",
        "veka",
        "måneden",
        "månaden",
        "året",
        "timen",
        "minuttet",
        "kvartalet",
        "halvåret",
    }
)

# --------------------------------------------------------------------------------------
# Text normalisation

_TOKEN_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+(?:[.,]\d+)*|\s+|.", re.S)


def _is_word(tok: str) -> bool:
    return bool(tok) and (tok[0].isalpha())


def _is_digits(tok: str) -> bool:
    return bool(tok) and tok[0].isdigit()


def _next(toks: list[str], j: int) -> int | None:
    """Index of the token after toks[j] if only plain whitespace separates them."""
    k = j + 1
    if k < len(toks) and toks[k].isspace() and "\n" not in toks[k] and k + 1 < len(toks):
        nxt = toks[k + 1]
        if _is_word(nxt) or _is_digits(nxt):
            return k + 1
    return None


def _prev(toks: list[str], j: int) -> int | None:
    k = j - 1
    if k >= 1 and toks[k].isspace() and (_is_word(toks[k - 1]) or _is_digits(toks[k - 1])):
        return k - 1
    return None


def _low(toks: list[str], j: int | None) -> str:
    return toks[j].lower() if j is not None else ""


def _numberish(tok: str) -> bool:
    low = tok.lower()
    return low == "og" or low in _ARTICLES or _split_word(low) is not None


def _decimal_part(toks: list[str], j: int) -> tuple[str, int] | None:
    """If toks[j] is followed by "komma <digits>", return (digits, index after)."""
    k = _next(toks, j)
    if k is None or toks[k].lower() != "komma":
        return None
    d = _next(toks, k)
    if d is None:
        return None
    tok = toks[d]
    if _is_digits(tok) and tok.isdigit():
        return tok, d + 1
    low = tok.lower()
    v = 1 if low in _ARTICLES else _below100_word(low)
    if v is None:
        return None
    digits = str(v)
    end = d + 1
    if v == 0:
        e = _next(toks, d)
        if e is not None:
            v2 = _below100_word(toks[e].lower())
            if v2 is not None and v2 < 10:
                digits += str(v2)
                end = e + 1
    return digits, end


def _and_a_half(toks: list[str], j: int) -> int | None:
    """If toks[j] is followed by "og en/ei/ein halv", the index after it."""
    a = _next(toks, j)
    if a is None or toks[a].lower() != "og":
        return None
    b = _next(toks, a)
    if b is None or toks[b].lower() not in (_ARTICLES | _ONE_NUMERALS):
        return None
    c = _next(toks, b)
    if c is None or toks[c].lower() != "halv":
        return None
    return c + 1


def _article_is_one(toks: list[str], i: int) -> bool:
    """Is the article toks[i] ("en", "ei", "et" ...) the number 1 here?"""
    n = _next(toks, i)
    if n is None:
        return False
    nxt = toks[n].lower()
    if nxt in _UNITISH:
        return True
    if nxt in _GANG:
        if _low(toks, _prev(toks, i)) in ("med", "på", "noen", "nokon"):
            return False
        f = _next(toks, n)
        fw = _low(toks, f)
        if fw not in _FREQ_AFTER:
            return False
        if fw == "i" and f is not None:
            return _low(toks, _next(toks, f)) in _FREQ_I_AFTER
        return True
    return False


def _fraction_after_article(toks: list[str], i: int) -> tuple[str, int] | None:
    """ "en halv tablett" -> ("0,5", index of "tablett")."""
    n = _next(toks, i)
    if n is None:
        return None
    frac = {"halv": "0,5", "kvart": "0,25"}.get(toks[n].lower())
    if frac is None:
        return None
    u = _next(toks, n)
    if u is None or toks[u].lower() not in _UNITISH:
        return None
    return frac, n + 1


def _match_at(toks: list[str], i: int) -> tuple[str, int] | None:
    """A replacement for the number starting at token i: (digits, index after)."""
    tok = toks[i]
    low = tok.lower()

    if _is_digits(tok):
        dec = _decimal_part(toks, i)
        if dec is not None and tok.isdigit():
            return f"{tok},{dec[0]}", dec[1]
        half = _and_a_half(toks, i)
        if half is not None and tok.isdigit():
            return f"{tok},5", half
        return None

    if low in _HALF_WORDS:
        return _HALF_WORDS[low], i + 1

    # ordinal before a month: "tredje mars" -> "3. mars"
    ordinal = _ORDINALS.get(low)
    if ordinal is None:
        for t, tv in _TENS.items():
            if low.startswith(t) and low[len(t) :] in _ORDINAL_UNITS:
                ordinal = tv + _ORDINAL_UNITS[low[len(t) :]]
                break
    if ordinal is not None and 1 <= ordinal <= 31:
        n = _next(toks, i)
        if n is not None:
            m = toks[n].lower()
            if m in MONTHS or (m in _MONTH_ABBR and n + 1 < len(toks) and toks[n + 1] == "."):
                return f"{ordinal}.", i + 1
        return None

    # hyphenated numbers that are not one compound: "to-tre" -> "2-3", "to-diabetes"
    if "-" in low and _split_word(low) is None:
        pieces = low.split("-")
        vals = [parse_number(p) if p not in _ARTICLES else 1 for p in pieces]
        if all(v is not None for v in vals) and len(pieces) > 1:
            return "-".join(str(v) for v in vals), i + 1
        first = parse_number(pieces[0]) if pieces[0] not in _ARTICLES else None
        if first is not None:
            rest = tok[len(pieces[0]) :]
            return f"{first}{rest}", i + 1
        return None

    if low in _ARTICLES:
        frac = _fraction_after_article(toks, i)
        if frac is not None:
            return frac
        n = _next(toks, i)
        nxt = _low(toks, n)
        if nxt == "tre" and low in ("et", "eit"):
            return None  # the tree
        if nxt == "og":
            half = _and_a_half(toks, i)
            if half is not None:
                return "1,5", half
            return None
        if nxt in ("til", "eller"):  # "en til to tabletter", "en eller to ganger"
            after = _next(toks, n) if n is not None else None
            if after is not None and toks[after].lower() not in _ARTICLES:
                if _split_word(toks[after].lower()) is not None:
                    return "1", i + 1
            return None
        if nxt == "komma":
            dec = _decimal_part(toks, i)
            if dec is not None:
                return f"1,{dec[0]}", dec[1]
            return None
        if nxt not in ("hundre", "tusen"):
            return ("1", i + 1) if _article_is_one(toks, i) else None
        # falls through to phrase parsing: "et hundre og førti"
    elif low in _ONE_NUMERALS:
        n = _next(toks, i)
        if n is not None and toks[n].lower() in _ONE_IDIOM_NEXT:
            if _low(toks, _next(toks, n)) in _ONE_IDIOM_AFTER:
                return None

    if _split_word(low) is None and low not in _ARTICLES:
        return None
    if low == "tre" and _low(toks, _prev(toks, i)) in ("et", "eit"):
        return None  # "et tre": the tree

    # gather the run of number-ish words
    run: list[int] = [i]
    j = i
    while True:
        k = _next(toks, j)
        if k is None or not _numberish(toks[k]):
            break
        run.append(k)
        j = k
    best: tuple[int, int] | None = None  # (value, index in run)
    for end in range(len(run), 0, -1):
        parts: list[str] = []
        ok = True
        for idx in run[:end]:
            w = toks[idx].lower()
            sp = _split_word(w)
            if sp is None:
                if w in _ARTICLES or w == "og":
                    parts.append(w)
                    continue
                ok = False
                break
            parts += sp
        if not ok:
            continue
        v = _phrase_value(parts)
        if v is not None:
            best = (v, end)
            break
    if best is None:
        return None
    value, end = best
    last = run[end - 1]
    dec = _decimal_part(toks, last)
    if dec is not None:
        return f"{value},{dec[0]}", dec[1]
    half = _and_a_half(toks, last)
    if half is not None:
        return f"{value},5", half
    return str(value), last + 1


def _words_to_digits(text: str) -> str:
    toks = _TOKEN_RE.findall(text)
    out: list[str] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if _is_word(tok) or _is_digits(tok):
            res = _match_at(toks, i)
            if res is not None:
                out.append(res[0])
                # keep nothing of the consumed tokens
                i = res[1]
                continue
        out.append(tok)
        i += 1
    return "".join(out)


_OVER_RE = re.compile(r"(?<![\w.,/])(\d{2,3})\s+over\s+(\d{2,3})(?![\w/]|[.,]\d)", re.I)
_NONE_OF_RE = re.compile(r"(?<![\w])ingen(\s+av\s+(?:de\s+|dei\s+)?\d)", re.I)
_CLOCK_HALF_RE = re.compile(
    r"(?<![\w])(kl\.?|klokka|klokken)\s+halv\s+(\d{1,2})(?![\w]|[.,]\d)", re.I
)
_X_RE = re.compile(r"(?<![^\W\d_])([xX×])(?=\d)")
_HALF_CHAR_RE = re.compile(r"(\d*)½")


def _ratio_sub(m: re.Match[str]) -> str:
    a, b = int(m.group(1)), int(m.group(2))
    if a > b and a >= 40:
        return f"{m.group(1)}/{m.group(2)}"
    return m.group(0)


def _clock_sub(m: re.Match[str]) -> str:
    h = int(m.group(2))
    if not 1 <= h <= 24:
        return m.group(0)
    return f"{m.group(1)} {h - 1 if h > 1 else 12}.30"


def _half_char_sub(m: re.Match[str]) -> str:
    whole = m.group(1)
    return f"{whole},5" if whole else "0,5"


def normalize_numbers(text: str) -> str:
    """Norwegian number words in running text to digits (see the module docstring).

    Idempotent: text that is already normalised comes back unchanged.
    """
    if not text:
        return text
    text = _HALF_CHAR_RE.sub(_half_char_sub, text)
    text = _words_to_digits(text)
    text = _OVER_RE.sub(_ratio_sub, text)
    text = _NONE_OF_RE.sub(r"0\1", text)
    text = _CLOCK_HALF_RE.sub(_clock_sub, text)
    text = _X_RE.sub(r"\1 ", text)
    return normalize_units(text)
