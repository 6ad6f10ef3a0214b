"""The verifier's words: clause tokens, content words, stem and synonym matching, and the
side words (høyre/venstre/bilateral) with the body part each belongs to."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "flip_side",
]

_STOPWORDS = frozenset(
    """
    og i på til av for med som er var har hadde ikke det den de en ei et ett at om fra
    så men eller kan vil skal må bli blir ble blitt være vært seg sin sitt sine han hun
    dem du deg jeg meg vi oss dere dykk din ditt dine min mitt mine vår vårt våre noe
    noen nokon noko ingen inga ingenting alle alt hver kvar hvis viss når da nå her der
    hvor kor hva kva hvem kven hvordan korleis også ogso bare berre litt mye mer mest
    meir enn etter før under over ved mot uten utan hos inn ut opp ned igjen allerede
    jo vel nok altså liksom eh ja nei mm ok okei sånn slik så også the dei deira sjølv
    selv både begge etc ca evt bl kl pga iht dvs osv fortsatt videre nye ny nytt
    """.split()
)

_LAT_SINGLE: dict[str, str] = {
    "høyre": "høyre",
    "høgre": "høyre",
    "høyresidig": "høyre",
    "høyresidige": "høyre",
    "høgresidig": "høyre",
    "høgresidige": "høyre",
    "dekstra": "høyre",
    "venstre": "venstre",
    "vinstre": "venstre",
    "venstresidig": "venstre",
    "venstresidige": "venstre",
    "sinistra": "venstre",
    "bilateral": "bilateral",
    "bilateralt": "bilateral",
    "bilaterale": "bilateral",
    "dobbeltsidig": "bilateral",
    "dobbeltsidige": "bilateral",
    "tosidig": "bilateral",
    "tosidige": "bilateral",
    "bilat": "bilateral",
}
_LAT_ABBR = {"hø": "høyre", "ve": "venstre"}
_BOTH = frozenset({"begge", "båe"})
_SIDES = frozenset({"sider", "sidene", "sidar", "sidane"})
_FLIP = {"høyre": "venstre", "venstre": "høyre"}

# Clinical word in the note <-> lay word in the speech; used only to score context.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "pneumoni": ("lungebetennelse",),
    "hypertensjon": ("blodtrykk",),
    "bt": ("blodtrykk",),
    "cor": ("hjerte",),
    "pulm": ("lunge",),
    "ødem": ("hevelse", "hoven", "hovne"),
    "hydrops": ("hevelse", "væske"),
    "cefalgi": ("hodepine",),
    "dyspné": ("tungpust", "pust"),
    "febril": ("feber",),
    "palpasjonsøm": ("øm", "vondt"),
    "smerte": ("vondt", "verk"),
    "ekstremitet": ("arm", "bein", "ben"),
    "caput": ("hode",),
    "genu": ("kne",),
    "normal": ("fin", "fint", "bra", "upåfallende", "normale"),
    "ua": ("fin", "fint", "bra", "normal", "upåfallende"),
    "upåfallende": ("fin", "fint", "bra", "normal"),
}


def _stem_match(a: str, b: str) -> bool:
    """Same word up to inflection or compound head ("kne"/"kneet", "fotpulser"/"pulser")."""
    if a == b:
        return True
    s, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(s) < 3:
        return False
    if len(s) >= 4 and long_.endswith(s):
        return True
    need = min(len(s), max(4, len(s) - 2))
    return long_[:need] == s[:need]


def _synonyms(w: str) -> tuple[str, ...]:
    for key, alts in _SYNONYMS.items():
        if _stem_match(w, key):
            return alts
    return ()


def _word_supported(w: str, vocab: Iterable[str]) -> bool:
    alts = (w, *_synonyms(w))
    return any(_stem_match(a, t) for t in vocab for a in alts)


@dataclass(frozen=True, slots=True)
class _Tok:
    word: str  # lower case
    start: int
    end: int
    clause: int


@dataclass(frozen=True, slots=True)
class _Lat:
    side: str
    first: int  # token index
    last: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    clause = 0
    prev_end = 0
    for m in re.finditer(r"[^\W_]+(?:-[^\W_]+)*", text):
        gap = text[prev_end : m.start()]
        if any(c in gap for c in ",;") and out:
            clause += 1
        out.append(_Tok(m.group(0).lower(), m.start(), m.end(), clause))
        prev_end = m.end()
    return out


def _lateralities(text: str, toks: list[_Tok]) -> list[_Lat]:
    out: list[_Lat] = []
    i = 0
    while i < len(toks):
        w = toks[i].word
        side = _LAT_SINGLE.get(w)
        if side is None and w in _LAT_ABBR and text[toks[i].end : toks[i].end + 1] == ".":
            side = _LAT_ABBR[w]
        if side is not None:
            out.append(_Lat(side, i, i))
        elif w in _BOTH and i + 1 < len(toks) and toks[i + 1].word in _SIDES:
            out.append(_Lat("bilateral", i, i + 1))
            i += 1
        i += 1
    return out


def _is_content(w: str) -> bool:
    """A word that carries meaning: not a stop word, not a side word, not a bare number
    ("SpO2", "HbA1c" count as words)."""
    return (
        len(w) >= 2
        and w.isalnum()
        and not w.isdigit()
        and w not in _STOPWORDS
        and w not in _LAT_SINGLE
    )


def _adjacent(text: str, a: _Tok, b: _Tok) -> bool:
    gap = text[a.end : b.start]
    if a.word in _LAT_ABBR:  # "hø. kne"
        gap = gap.replace(".", "", 1)
    return gap.strip(" ") == ""


def _anchor(text: str, toks: list[_Tok], lat: _Lat) -> int | None:
    """Index of the body-part word a side word belongs to: the next content word
    ("høyre kne"), else the previous one ("sidebånd bilateralt")."""
    j = lat.last + 1
    if j < len(toks) and _is_content(toks[j].word) and _adjacent(text, toks[lat.last], toks[j]):
        return j
    j = lat.first - 1
    if j >= 0 and _is_content(toks[j].word) and _adjacent(text, toks[j], toks[lat.first]):
        return j
    return None


def _nearest_side(p: int, lats: list[_Lat], window: int = 5) -> str | None:
    best: tuple[int, int, str] | None = None
    for lat in lats:
        if lat.first <= p <= lat.last:
            return lat.side
        if lat.last < p:
            d, pref = p - lat.last, 0  # side word before the noun: preferred on a tie
        else:
            d, pref = lat.first - p, 1
        if d <= window and (best is None or (d, pref) < best[:2]):
            best = (d, pref, lat.side)
    return best[2] if best else None


def _side_ok(side: str, found: set[str]) -> bool:
    if side in found:
        return True
    return side == "bilateral" and {"høyre", "venstre"} <= found


def flip_side(word: str) -> str | None:
    """ "høyre" <-> "venstre" keeping the capital (for tests and the UI)."""
    side = _LAT_SINGLE.get(word.lower())
    other = _FLIP.get(side or "")
    if other is None:
        return None
    return other.capitalize() if word[:1].isupper() else other
