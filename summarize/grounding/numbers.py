"""Norwegian number words to digits, spoken units to abbreviations, and numeric items.

The grounding verifier compares the numbers of an LLM draft with the numbers said in the
consultation. Speech says "hundre og førtiåtte over nittifire", "fem milligram" and
"fire komma en"; the note writes "148/94", "5 mg" and "4,1". Both sides are therefore
run through :func:`normalize_numbers` and then :func:`extract_quantities`.

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
* :func:`normalize_units` writes spoken units after a number as abbreviations:
  "5 milligram" -> ``5 mg``, "75 mikrogram"/"75 mcg" -> ``75 µg``, "91 kilo" -> ``91 kg``,
  "96 prosent" -> ``96 %``, "10 enheter" -> ``10 IE``, "millimol per liter" -> ``mmol/l``.

Nothing here logs text: transcripts and notes are patient data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

logger = logging.getLogger(__name__)

__all__ = [
    "Quantity",
    "UnitInfo",
    "extract_quantities",
    "format_number",
    "is_number_word",
    "normalize_numbers",
    "normalize_units",
    "parse_number",
    "quantity_supports",
    "unit_info",
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
_ONE_IDIOM_NEXT = frozenset({"eller", "og"})
_ONE_IDIOM_AFTER = frozenset({"annet", "annen", "anna", "annan", "andre"})

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

# Spoken units (and abbreviations) -> canonical abbreviation. Longest first in the regex.
_UNIT_WORDS: dict[str, str] = {
    "internasjonale enheter": "IE",
    "milligrammer": "mg",
    "milligram": "mg",
    "mikrogrammer": "µg",
    "mikrogram": "µg",
    "nanogram": "ng",
    "kilogram": "kg",
    "kilo": "kg",
    "grammer": "g",
    "gram": "g",
    "milliliter": "ml",
    "millilitre": "ml",
    "desiliter": "dl",
    "liter": "l",
    "millimol": "mmol",
    "mikromol": "µmol",
    "prosent": "%",
    "enheter": "IE",
    "enhet": "IE",
    "einingar": "IE",
    "eining": "IE",
    "mcg": "µg",
    "µg": "µg",
    "μg": "µg",
    "ug": "µg",
    "mg": "mg",
    "ng": "ng",
    "kg": "kg",
    "g": "g",
    "ml": "ml",
    "dl": "dl",
    "l": "l",
    "mmol": "mmol",
    "µmol": "µmol",
    "μmol": "µmol",
    "ie": "IE",
    "%": "%",
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


def _below1000(parts: list[str]) -> int | None:
    if parts.count("hundre") > 1:
        return None
    if "hundre" in parts:
        k = parts.index("hundre")
        lv = _multiplier(parts[:k], 100)
        rv = _tail(parts[k + 1 :], _below100)
        if lv is None or rv is None:
            return None
        return lv * 100 + rv
    return _below100(parts)


def _phrase_value(parts: list[str]) -> int | None:
    """Value of a whole phrase of number-word parts, or None if it is not one number."""
    if not parts or parts[-1] == "og" or parts[0] == "og":
        return None
    if parts.count("tusen") > 1:
        return None
    if "tusen" in parts:
        k = parts.index("tusen")
        lv = _multiplier(parts[:k], 1000)
        rv = _tail(parts[k + 1 :], _below1000)
        if lv is None or rv is None:
            return None
        return lv * 1000 + rv
    return _below1000(parts)


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


_UNIT_ALT = "|".join(re.escape(k) for k in sorted(_UNIT_WORDS, key=len, reverse=True) if k != "%")
_UNIT_AFTER_NUM_RE = re.compile(
    rf"(?<![\w])(\d+(?:[.,]\d+)?)[ \t\u00a0]*(%|(?:{_UNIT_ALT})(?![\w]))", re.I
)
_PER_RE = re.compile(
    r"(?<=\d )(mmol|µmol|mg|µg|ng|g|IE)\s+(?:per|pr\.?)\s+"
    r"(liter|l|mol|kilo|kg|desiliter|dl)(?![\w])",
    re.I,
)
_PER_UNIT = {
    "liter": "l",
    "l": "l",
    "mol": "mol",
    "kilo": "kg",
    "kg": "kg",
    "desiliter": "dl",
    "dl": "dl",
}


def _unit_sub(m: re.Match[str]) -> str:
    num, unit = m.group(1), m.group(2)
    canon = _UNIT_WORDS.get(unit.lower(), unit)
    return f"{num} {canon}"


def normalize_units(text: str) -> str:
    """Spoken units after a number as abbreviations: "5 milligram" -> "5 mg",
    "96 prosent" -> "96 %", "4,1 millimol per liter" -> "4,1 mmol/l". Units not after a
    number are left alone."""
    text = text.replace("μ", "µ")
    text = _UNIT_AFTER_NUM_RE.sub(_unit_sub, text)
    text = _PER_RE.sub(lambda m: f"{m.group(1)}/{_PER_UNIT[m.group(2).lower()]}", text)
    return text


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


# --------------------------------------------------------------------------------------
# Quantities


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """What a unit measures: ``family`` (mass, volume, amount, IE, %, ...), the factor to
    the family's base unit, and whether it is a laboratory concentration (``mmol/l``,
    ``µmol/l``, ``mmol/mol`` ...) rather than a dose."""

    family: str
    factor: Decimal
    lab: bool


_BASE_UNITS: dict[str, tuple[str, Decimal]] = {
    "ng": ("mass", Decimal("0.001")),
    "µg": ("mass", Decimal(1)),
    "mg": ("mass", Decimal(1000)),
    "g": ("mass", Decimal(1_000_000)),
    "kg": ("mass", Decimal(1_000_000_000)),
    "ml": ("volume", Decimal(1)),
    "dl": ("volume", Decimal(100)),
    "l": ("volume", Decimal(1000)),
    "µmol": ("amount", Decimal(1)),
    "mmol": ("amount", Decimal(1000)),
    "mol": ("amount", Decimal(1_000_000)),
    "IE": ("ie", Decimal(1)),
    "%": ("percent", Decimal(1)),
    "mmHg": ("pressure", Decimal(1)),
}
_PER_TIME = frozenset({"d", "dag", "døgn", "t", "time", "uke"})


def unit_info(unit: str | None) -> UnitInfo | None:
    """Family, factor and lab-ness of a canonical unit (None for unknown units)."""
    if not unit:
        return None
    base, _, per = unit.partition("/")
    if base not in _BASE_UNITS:
        return None
    family, factor = _BASE_UNITS[base]
    if not per or per in _PER_TIME:
        return UnitInfo(family, factor, False)
    if per == "kg":
        return UnitInfo(f"{family}/kg", factor, False)
    return UnitInfo(f"{family}/{per}", factor, True)


def _to_decimal(s: str) -> Decimal | None:
    s = s.replace("\u00a0", "").replace("\u202f", "").replace("\u2009", "").replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", s):
        s = s.replace(".", "")
    s = s.replace(",", ".")
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def format_number(d: Decimal) -> str:
    """A Decimal in canonical Norwegian form: no trailing zeros, decimal comma."""
    d = d.normalize()
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.replace(".", ",")


@dataclass(frozen=True, slots=True)
class Quantity:
    """One numeric item found in (normalised) text.

    ``value`` is canonical: ``"4,1"`` (decimal comma, no trailing zeros), ``"148/94"`` for a
    ratio, ``"3.3."``/``"3.3.2025"`` for a date, ``"14:30"`` for a clock time. ``unit`` is a
    canonical abbreviation (``mg``, ``µg``, ``g``, ``kg``, ``ml``, ``mmol/l``, ``IE``,
    ``%`` ...) or None. ``kind`` is ``number``, ``dose`` (a number with a unit),
    ``percent``, ``ratio``, ``date`` or ``time``. ``text`` is what a flag shows ("75 mg"),
    ``start``/``end`` the span in the text that was scanned.
    """

    value: str
    unit: str | None
    kind: str
    text: str
    start: int
    end: int

    @property
    def numbers(self) -> tuple[Decimal, ...]:
        """The numeric values (two for a ratio; day, month[, year] for a date)."""
        if self.kind == "date":
            return tuple(Decimal(p) for p in self.value.split(".") if p)
        if self.kind == "time":
            return tuple(Decimal(p) for p in self.value.split(":"))
        out = []
        for p in self.value.split("/"):
            d = _to_decimal(p)
            if d is not None:
                out.append(d)
        return tuple(out)

    @property
    def number(self) -> Decimal | None:
        nums = self.numbers
        return nums[0] if len(nums) == 1 and self.kind not in ("date", "time") else None


_NUM = (
    r"(?:\d{1,3}(?:[ \u00a0\u202f\u2009]\d{3})+(?![\d]|[.,]\d)"
    r"|\d{1,3}(?:\.\d{3})+(?![\d]|[.,]\d)"
    r"|\d+(?:[.,]\d+)?)"
)
_END = r"(?![\w]|[.,]\d)"
_UNIT_RE_SRC = (
    r"(?:mg|µg|μg|mcg|ug|ng|g|kg|ml|dl|l|mmol|µmol|μmol|mol|IE|mmHg|%)"
    r"(?:/(?:l|dl|ml|mol|kg|min|d|dag|døgn|t|time|uke))?(?![\w])"
)
_MONTH_SRC = "|".join(MONTHS) + "|" + "|".join(rf"{a}\." for a in _MONTH_ABBR)
_P_DATE_WORD = re.compile(rf"(\d{{1,2}})\.\s?({_MONTH_SRC})(?:\s+(\d{{4}}))?(?![\w])", re.I)
_P_DATE_NUM = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})" + _END)
_P_DATE_SHORT = re.compile(r"(\d{1,2})\.(\d{1,2})\.(?!\d)")
_DATE_PREFIX = re.compile(
    r"(?:den|dato|fra|til|innen|før|etter|fom|tom|f\.o\.m\.|t\.o\.m\.)\s+$", re.I
)
_P_TIME = re.compile(r"(\d{1,2})([.:])(\d{2})" + _END)
_TIME_PREFIX = re.compile(r"(?:kl\.?|klokka|klokken)\s*$", re.I)
_P_RATIO = re.compile(rf"({_NUM})\s*/\s*({_NUM})(?![\w/]|[.,]\d)(?:\s*(mmHg)(?![\w]))?")
_P_RATIO_AV = re.compile(rf"({_NUM})\s+av\s+(?:de\s+|dei\s+)?({_NUM}){_END}", re.I)
_P_RANGE = re.compile(rf"({_NUM})\s*[-–]\s*({_NUM}){_END}(?:\s*({_UNIT_RE_SRC}))?", re.I)
_P_SINGLE = re.compile(rf"({_NUM}){_END}(?:\s*({_UNIT_RE_SRC}))?", re.I)
_NUM_START = re.compile(r"(?<![\w])\d")


def _canon_unit(u: str | None) -> str | None:
    if not u:
        return None
    u = u.replace("μ", "µ")
    base, sep, per = u.partition("/")
    low = base.lower()
    canon = {"mcg": "µg", "ug": "µg", "ie": "IE", "mmhg": "mmHg"}.get(low, low)
    return canon + (sep + per.lower() if sep else "")


def _single(num: str, unit: str | None, start: int, end: int) -> Quantity | None:
    d = _to_decimal(num)
    if d is None:
        return None
    value = format_number(d)
    unit = _canon_unit(unit)
    if unit is None:
        return Quantity(value, None, "number", value, start, end)
    kind = "percent" if unit == "%" else "dose"
    return Quantity(value, unit, kind, f"{value} {unit}", start, end)


def _valid_date(d: int, m: int) -> bool:
    return 1 <= d <= 31 and 1 <= m <= 12


def extract_quantities(text: str, *, normalized: bool = False) -> list[Quantity]:
    """Numeric items in ``text``, in order.

    The text is first run through :func:`normalize_numbers` unless ``normalized`` is
    True; spans refer to the normalised text. "4.1" and "4,1" give the same value;
    "1.000" and "1 000" are one thousand; ranges ("4-5 timer", "25-50 mg") give one item
    per end; "X av Y" between two numbers is a ratio ("22 av 30" -> ``22/30``). Digits
    glued to letters ("SpO2", "B12", "HbA1c") are names, not numbers.
    """
    if not normalized:
        text = normalize_numbers(text)
    out: list[Quantity] = []
    pos = 0
    while True:
        m = _NUM_START.search(text, pos)
        if m is None:
            break
        s = m.start()
        q, end = _scan_at(text, s)
        out.extend(q)
        pos = max(end, s + 1)
    return out


def _scan_at(text: str, s: int) -> tuple[list[Quantity], int]:
    head = text[max(0, s - 12) : s]
    mm = _P_DATE_WORD.match(text, s)
    if mm:
        d = int(mm.group(1))
        mon = mm.group(2).lower().rstrip(".")
        month = MONTHS.get(mon) or _MONTH_ABBR.get(mon)
        if month and 1 <= d <= 31:
            year = mm.group(3)
            value = f"{d}.{month}." + (year or "")
            return [Quantity(value, None, "date", mm.group(0), s, mm.end())], mm.end()
    mm = _P_DATE_NUM.match(text, s)
    if mm and _valid_date(int(mm.group(1)), int(mm.group(2))):
        y = mm.group(3)
        year = y if len(y) == 4 else f"20{y}"
        value = f"{int(mm.group(1))}.{int(mm.group(2))}.{year}"
        return [Quantity(value, None, "date", mm.group(0), s, mm.end())], mm.end()
    mm = _P_DATE_SHORT.match(text, s)
    if mm and _DATE_PREFIX.search(head) and _valid_date(int(mm.group(1)), int(mm.group(2))):
        value = f"{int(mm.group(1))}.{int(mm.group(2))}."
        return [Quantity(value, None, "date", mm.group(0), s, mm.end())], mm.end()
    mm = _P_TIME.match(text, s)
    if mm and (mm.group(2) == ":" or _TIME_PREFIX.search(head)):
        h, mi = int(mm.group(1)), int(mm.group(3))
        if h <= 24 and mi < 60:
            value = f"{h}:{mi:02d}"
            return [Quantity(value, None, "time", mm.group(0), s, mm.end())], mm.end()
    for rx in (_P_RATIO, _P_RATIO_AV):
        mm = rx.match(text, s)
        if mm:
            a, b = _to_decimal(mm.group(1)), _to_decimal(mm.group(2))
            if a is not None and b is not None:
                value = f"{format_number(a)}/{format_number(b)}"
                unit = _canon_unit(mm.group(3)) if rx is _P_RATIO else None
                surface = mm.group(0) if rx is _P_RATIO_AV else value
                return [Quantity(value, unit, "ratio", surface, s, mm.end())], mm.end()
    mm = _P_RANGE.match(text, s)
    if mm:
        unit = mm.group(3)
        q1 = _single(mm.group(1), unit, s, mm.start(2))
        q2 = _single(mm.group(2), unit, mm.start(2), mm.end())
        return [q for q in (q1, q2) if q is not None], mm.end()
    mm = _P_SINGLE.match(text, s)
    if mm:
        q = _single(mm.group(1), mm.group(2), s, mm.end())
        return ([q] if q else []), mm.end()
    m2 = re.match(r"\d+", text[s:])
    return [], s + (m2.end() if m2 else 1)


def quantity_supports(evidence: Quantity, claim: Quantity) -> bool:
    """Does ``evidence`` (from the transcript) support ``claim`` (from the draft)?

    * bare number: any item carrying the same number (a number, a dose's number, one side
      of a ratio);
    * dose or percent: the same amount in the same unit family (``1 g`` = ``1000 mg``,
      ``75 mcg`` = ``75 µg``); ``5 mg`` does not support ``50 mg`` nor ``5 g``;
    * laboratory concentration (``82 µmol/l``, ``4,1 mmol/l``, ``62 mmol/mol``): the number
      said bare or with the same unit; a different unit does not support it;
    * ratio: the same two numbers; date: same day and month (and year if the claim has
      one); time: the same time.
    """
    if claim.kind == "ratio":
        return evidence.kind == "ratio" and evidence.numbers == claim.numbers
    if claim.kind == "date":
        if evidence.kind != "date":
            return False
        cn, en = claim.numbers, evidence.numbers
        if cn[:2] != en[:2]:
            return False
        return len(cn) < 3 or (len(en) >= 3 and cn[2] == en[2])
    if claim.kind == "time":
        return evidence.kind == "time" and evidence.value == claim.value
    cnum = claim.number
    if cnum is None:
        return False
    if claim.unit is None:
        if evidence.kind in ("date", "time"):
            return False
        return cnum in evidence.numbers
    info = unit_info(claim.unit)
    enum = evidence.number
    if enum is None:
        return False
    if info is None:  # unknown unit: the same text
        return evidence.unit == claim.unit and enum == cnum
    if info.lab:
        if evidence.unit is None:
            return enum == cnum
        einfo = unit_info(evidence.unit)
        return (
            einfo is not None
            and einfo.family == info.family
            and enum * einfo.factor == cnum * info.factor
        )
    einfo = unit_info(evidence.unit)
    if einfo is None or einfo.family != info.family:
        return False
    return enum * einfo.factor == cnum * info.factor
