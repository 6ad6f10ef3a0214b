"""Spoken self-corrections: "50 … nei, 25 mg", "tre, nei, fire ganger", "venstre – unnskyld, høyre".

A clinician who corrects a value in the same breath has said both values; the retracted
one must never reach the note. Everything here is deterministic and works on the
number-normalised text (:func:`summarize.grounding.numbers.normalize_numbers`):

    value  [pause]  marker  [up to two words]  value of the same kind

* a *value* is a number (also a ratio "150/90" or a decimal "2,5"), a side (høyre,
  venstre, høgre), a drug name of the lexicon, or a weekday;
* a *marker* is a spoken correction: "nei", "nei vent", "unnskyld", "orsak", "beklager",
  "sorry", "feil", "jeg mener", "eg meiner", "rettere sagt", "eller nei", "altså" (only
  between two numbers, sides or weekdays, where it corrects: "50, altså 25"; between two
  drug names it clarifies: "penicillin, altså fenoksymetylpenicillin");
* nothing ends a sentence between the two values ("?" or "." — a pause "…" / "..." is not
  an end), so "Feber? Nei, 38 i går" is an answer, not a correction.

:func:`resolve` removes the retracted value with its marker ("Metoprolol 25 mg"); the
drafter sees only resolved text, and :class:`summarize.grounding.verify.Verifier` flags a draft
that contains a retracted value (``retracted_value``) even though it was said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from summarize.grounding.numbers import normalize_numbers
from summarize.types import Utterance

_MARKER = (r"nei(?:\s+vent)?|eller\s+nei|unnskyld|orsak|beklager|sorry|feil|"
           r"(?:jeg|eg)\s+(?:mener|meiner|mente|meinte)|rettere\s+sagt|altså")
_NUMBER = r"\d+(?:[.,]\d+)?(?:\s*/\s*\d+)?"
_SIDES = {"høyre": "høyre", "høgre": "høyre", "venstre": "venstre", "vinstre": "venstre"}
_WEEKDAYS = ("mandag", "måndag", "tirsdag", "tysdag", "onsdag", "torsdag", "fredag", "lørdag", "laurdag",
             "søndag", "sundag")
# between the marker and the corrected value (a closed list: "nei, ikke bekymret, 2 ganger" is
# no correction of the number before it): "nei, det skal være 25", "unnskyld, jeg mente 25"
_BRIDGE_WORDS = frozenset("det skal skulle være vere var er jeg eg mener meiner mente meinte sa si altså vent eh ehm "
                          "da den så til på".split())
# after a retracted number, its unit or period ("50 mg, nei, 25 mg", "2 år siden, nei, 3")
_UNIT_WORDS = (r"mg|milligram|g|gram|ml|mikrogram|µg|mcg|ie|enheter|ganger|gang|tabletter|tablett|år|uker|veker|"
               r"dager|dagar|måneder|månader|timer|kg|kilo|prosent|%|om|dagen|daglig|dagleg|i|døgnet|siden|sidan|x")
_AFTER = rf"(?P<u>(?:\s+(?:{_UNIT_WORDS})\b\.?){{0,2}})"
_PAUSE = r"\s*(?:\.\.\.|…|–|-|,)?\s*"
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?(?:\s*/\s*\d+)?|[\wæøåÆØÅé-]+")
_SEPARATOR = re.compile(r"[\s,…–-]*(?:\.\.\.)?[\s,…–-]*")


@dataclass(frozen=True, slots=True)
class Retraction:
    """One self-correction: the ``retracted`` value as said, the ``corrected`` one, its
    ``kind`` (number, side, drug, weekday) and the span in the normalised text from the
    retracted value up to the corrected one (what :func:`resolve` removes)."""

    kind: str
    retracted: str
    corrected: str
    start: int
    end: int
    utterance: int | None = None
    unit: str = ""  # said after the retracted number ("mg", "år siden")


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    """A value, its unit, a pause and a correction marker (the corrected value is looked
    for after it by :func:`_corrected`)."""
    words = "|".join([*_SIDES, *_WEEKDAYS])
    value = rf"(?P<v>{_NUMBER}|\b(?:{words})\b|\b[A-Za-zÆØÅæøåé][\w-]{{2,}})"
    return re.compile(rf"{value}{_AFTER}{_PAUSE}\b(?P<m>{_MARKER})\b", re.I)


def _corrected(text: str, pos: int, kind: str, drugs: set[str]) -> re.Match[str] | None:
    """The first value of ``kind`` after ``pos`` with only bridge words before it."""
    for _ in range(4):
        sep = _SEPARATOR.match(text, pos)
        pos = sep.end() if sep else pos
        tok = _TOKEN.match(text, pos)
        if tok is None:
            return None
        if _kind(tok.group(0), drugs) == kind:
            return tok
        if tok.group(0).lower() not in _BRIDGE_WORDS:
            return None
        pos = tok.end()
    return None


def _kind(word: str, drugs: set[str]) -> str | None:
    low = word.lower()
    if re.fullmatch(_NUMBER, low):
        return "number"
    if low in _SIDES:
        return "side"
    if low in _WEEKDAYS:
        return "weekday"
    if low in drugs:
        return "drug"
    return None


def _drug_words(text: str) -> set[str]:
    from summarize.grounding.drugs import drug_mentions

    return {m.text.lower() for m in drug_mentions(text, fuzzy=False)}


def find_retractions(text: str, utterance: int | None = None) -> list[Retraction]:
    """The self-corrections in ``text`` (normalised for numbers first; spans refer to the
    normalised text)."""
    norm = normalize_numbers(" ".join(text.split()))
    if not re.search(rf"\b(?:{_MARKER})\b", norm, re.I):
        return []
    drugs = _drug_words(norm)
    out: list[Retraction] = []
    pos = 0
    pattern = _pattern()
    while (m := pattern.search(norm, pos)) is not None:
        a = m.group("v")
        kind = _kind(a, drugs)
        w = _corrected(norm, m.end("m"), kind, drugs) if kind else None
        if (w is not None and w.group(0).lower() != a.lower() and _same_unit(m.group("u"), norm, w.end())
                and not (kind == "drug" and _same_drug(a, w.group(0), m.group("m")))):
            out.append(Retraction(kind, a, w.group(0), m.start("v"), w.start(), utterance,  # type: ignore[arg-type]
                                  m.group("u").strip()))
            pos = w.start()
        else:
            pos = m.start("v") + max(1, len(a))
    return out


def _same_drug(a: str, b: str, marker: str) -> bool:
    """"penicillin, altså fenoksymetylpenicillin", "Paracet, altså paracetamol": the same
    drug named twice (a brand and its substance, a group and its member), or any "altså"
    between two drug names: a clarification, not a correction."""
    from summarize.grounding.drugs import canonical_drug

    x, y = a.lower(), b.lower()
    return marker.lower() == "altså" or x in y or y in x or canonical_drug(x) == canonical_drug(y)


def _same_unit(unit: str, text: str, pos: int) -> bool:
    """The corrected number has no unit or the retracted one's: "2 tabletter, altså 1000
    mg" restates a dose in another unit, it corrects nothing."""
    after = re.match(rf"\s+({_UNIT_WORDS})\b", text[pos:], re.I)
    return not unit.strip() or after is None or after.group(1).lower() == unit.split()[0].lower().rstrip(".")


def resolve(text: str) -> str:
    """``text`` with each retracted value and its marker removed ("Metoprolol 50 … nei,
    25 mg" → "Metoprolol 25 mg"; "for 2 år siden, nei, 3" → "for 3 år siden"); text
    without a correction comes back unchanged."""
    found = find_retractions(text)
    if not found:
        return text
    norm = normalize_numbers(" ".join(text.split()))
    unit = re.compile(rf"\S+\s+(?:{_UNIT_WORDS})\b", re.I)
    for r in reversed(found):
        rest = norm[r.start:]
        tail = rest[r.end - r.start:]
        keep_unit = r.unit and not unit.match(tail)
        corrected = tail[:len(r.corrected)] + (" " + r.unit if keep_unit else "")
        norm = norm[:r.start] + corrected + tail[len(r.corrected):]
    return norm


def resolve_utterances(utterances: Iterable[Utterance]) -> list[Utterance]:
    """The utterances with their self-corrections resolved (ids, times and speakers kept)."""
    return [u if not find_retractions(u.text) else replace(u, text=resolve(u.text)) for u in utterances]


def retractions_in(utterances: Sequence[Utterance]) -> list[Retraction]:
    """Every self-correction of the transcript, with its utterance id."""
    return [r for u in utterances for r in find_retractions(u.text, u.id)]
