"""Grounding verifier: everything checkable in an LLM draft must be in the transcript.

The clinician must never get a hallucinated dose into the record. For every sentence of
every section of a :class:`~summarize.types.NoteDraft` the verifier checks

* every number, dose, percent, ratio, date and clock time (both sides normalised with
  :func:`summarize.numbers.normalize_numbers`) -> ``unsupported_number`` /
  ``unsupported_date``. A dose is supported only by the same amount in the same unit
  family ("5 mg" does not support "50 mg" nor "5 g"; "1 g" is supported by "1000 mg"); a
  bare number by the same number anywhere (also a dose's number or one side of a ratio).
  A laboratory concentration ("82 µmol/l") is supported by the number said bare or with
  the same unit: the clinician adds the customary unit, a *different* unit is flagged.
* every drug name (:func:`find_drugs`: lexicon, Norwegian inflection, compounds like
  "penicillinkur", edit-distance fuzzy match for ASR misspellings) -> ``unsupported_drug``.
  A brand and its active substance support each other (``Paracet`` / ``paracetamol``).
* every laterality (høyre/høgre/hø., venstre/ve., bilateral(t)/begge sider ...)
  -> ``unsupported_laterality``.
* a sentence without evidence ids and without lexical overlap with the transcript
  -> ``no_evidence``.
* a value the speaker retracted in the same breath ("Metoprolol 50 … nei, 25 mg", "venstre
  – unnskyld, høyre", :mod:`summarize.retractions`) is not said: the number, drug, side or
  weekday -> ``retracted_value`` (text "50 (rettet til 25)"), unless it is also said elsewhere.

Where an item must be found: primarily in the sentence's evidence segments, but finding
it anywhere in the transcript is enough (the LLM's evidence links are often incomplete,
and a flag on a correct item costs the clinician time). ``VerifyOptions(evidence_only=
True)`` makes it strict. Laterality is the exception: being "somewhere" is not enough
because both sides are often mentioned (the injured right knee and the healthy left
one). The verifier finds the body part the side word belongs to ("venstre kne"), looks
up where the transcript gives that body part a side, and takes the side from the
transcript sentence that shares most words with the draft clause (the evidence segments
first, when given). "venstre kne: moderat hydrops" against "moderat hydrops i høyre kne"
is flagged even if "venstre kne er stabilt" is said elsewhere.

The transcript is data, never instructions: nothing in it is interpreted, it is only
searched for the draft's items.

Each flag: ``text`` is the offending item ("75 mg", "Warfarin", "venstre kne"),
``section`` the section id, ``detail`` the sentence. :func:`uncertain_asr_flags` flags
ASR words below a probability threshold that are drug names, numbers or units
(``detail`` = the segment id) so the UI can highlight them.

Transcript and note text is logged only at DEBUG level.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from summarize.numbers import (
    Quantity,
    extract_quantities,
    is_number_word,
    normalize_numbers,
    quantity_supports,
)
from summarize.retractions import resolve, retractions_in
from summarize.types import Flag, NoteDraft, Sentence, Utterance

logger = logging.getLogger(__name__)

__all__ = [
    "DRUG_LEXICON_PATH",
    "DrugMention",
    "Verifier",
    "VerifyOptions",
    "canonical_drug",
    "drug_mentions",
    "find_drugs",
    "flip_side",
    "load_drug_aliases",
    "load_drug_lexicon",
    "uncertain_asr_flags",
]

DRUG_LEXICON_PATH = Path(__file__).resolve().parent / "data" / "legemidler.txt"

# --------------------------------------------------------------------------------------
# Drug lexicon


@lru_cache(maxsize=4)
def _read_lexicon(path: Path) -> tuple[frozenset[str], dict[str, str]]:
    names: set[str] = set()
    aliases: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        name, sep, target = line.partition("=")
        name = " ".join(name.split())
        if not name:
            continue
        names.add(name)
        if sep:
            target = " ".join(target.split())
            if target:
                names.add(target)
                aliases[name] = target
    return frozenset(names), aliases


def load_drug_lexicon(path: Path | None = None) -> set[str]:
    """Drug names (generic INN and Norwegian brand names), lower case, from
    ``summarize/data/legemidler.txt`` (one per line; ``brand = generic`` allowed)."""
    names, _ = _read_lexicon(path or DRUG_LEXICON_PATH)
    return set(names)


def load_drug_aliases(path: Path | None = None) -> dict[str, str]:
    """Brand name -> active substance, from the ``brand = generic`` lines."""
    _, aliases = _read_lexicon(path or DRUG_LEXICON_PATH)
    return dict(aliases)


def canonical_drug(name: str, aliases: dict[str, str] | None = None) -> str:
    """The active substance a lexicon name stands for (a brand's generic, else itself)."""
    name = name.lower()
    table = aliases if aliases is not None else _read_lexicon(DRUG_LEXICON_PATH)[1]
    return table.get(name, name)


# Inflection endings (bokmål and nynorsk) tried when a word is not in the lexicon:
# "amlodipinen", "metforminet", "losartanen", "Paracetens", "insulinsprøytene"...
_SUFFIXES = tuple(
    sorted(
        {"en", "et", "a", "ene", "er", "ane", "ar", "s", "ens", "ets", "n", "t", "e", "ne"},
        key=len,
        reverse=True,
    )
)
# Compound heads after a drug name: "penicillinkur", "metforminbehandlingen"
_FORM_HEADS = (
    "tablett",
    "tabletter",
    "tabletten",
    "tablettene",
    "kur",
    "kuren",
    "behandling",
    "behandlingen",
    "dose",
    "dosen",
    "dosering",
    "doseringen",
    "bruk",
    "bruken",
    "mikstur",
    "plaster",
    "sprøyte",
    "sprøyter",
    "sprøyten",
    "penn",
    "pennen",
    "injeksjon",
    "injeksjonen",
    "kapsel",
    "kapsler",
    "salve",
    "krem",
    "dråper",
    "spray",
    "inhalator",
    "resept",
    "resepten",
)
# Ordinary words an edit distance away from a drug name: never fuzzy-matched.
_FUZZY_STOP = frozenset(
    {
        "lyrikk",
        "lyrisk",
        "metoden",
        "metode",
        "morgen",
        "morfar",
        "kalsium",
        "kalium",
        "kaliumet",
        "vitamin",
        "vitaminer",
        "kreatinin",
        "protein",
        "hormon",
        "hormonet",
        "medisin",
        "medisinen",
        "medisiner",
        "serotonin",
        "dopamin",
        "histamin",
        "adrenalinet",
        "fortsatt",
        "forteller",
        "kontroll",
        "kontrollen",
        "tabletten",
        "tabletter",
        "sertifikat",
        "sentralt",
        "sentralen",
        "mariann",
        "marianne",
        "kristin",
        "kristine",
        "martin",
        "martine",
        "nikolai",
        "kolesterol",
        "kolesterolet",
        "penicillinet",
        "antibiotika",
        "antibiotikum",
        "antidepressiva",
        "antidepressivum",
    }
)


def _phon(w: str) -> str:
    """Rough spelling normalisation for fuzzy matching (soft/hard c, ph/f, x/ks, doubles)."""
    w = w.lower().replace("-", "").replace(" ", "")
    for a, b in (("ph", "f"), ("th", "t"), ("ch", "k"), ("qu", "kv"), ("ck", "k")):
        w = w.replace(a, b)
    w = re.sub(r"c(?=[eiy])", "s", w)
    w = w.replace("c", "k").replace("x", "ks").replace("z", "s").replace("w", "v").replace("é", "e")
    return re.sub(r"(.)\1+", r"\1", w)


_SOUND_CLASS = {
    **dict.fromkeys("aeiouyæøå", "V"),
    **dict.fromkeys("sz", "S"),
    **dict.fromkeys("kgq", "K"),
    **dict.fromkeys("td", "T"),
    **dict.fromkeys("pb", "P"),
    **dict.fromkeys("fvw", "F"),
    **dict.fromkeys("mn", "N"),
}


def _sub_cost(a: str, b: str) -> int:
    if a == b:
        return 0
    ca, cb = _SOUND_CLASS.get(a), _SOUND_CLASS.get(b)
    return 1 if ca is not None and ca == cb else 2


def _indel_cost(c: str) -> int:
    return 1 if _SOUND_CLASS.get(c) == "V" or c == "h" else 2


def _edit_distance(a: str, b: str, limit: int) -> int:
    """A phonetically weighted optimal-string-alignment distance: a vowel for a vowel, a
    similar consonant (t/d, k/g, s/z, m/n, p/b, f/v), a dropped or extra vowel and a
    swap of two letters cost 1; any other consonant change costs 2. Gives up (returns
    limit+1) beyond ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = [0]
    for ch in b:
        prev.append(prev[-1] + _indel_cost(ch))
    for i in range(1, len(a) + 1):
        cur = [prev[0] + _indel_cost(a[i - 1])] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            v = min(
                prev[j] + _indel_cost(a[i - 1]),
                cur[j - 1] + _indel_cost(b[j - 1]),
                prev[j - 1] + _sub_cost(a[i - 1], b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@dataclass(frozen=True, slots=True)
class DrugMention:
    """One drug name found in text: the lexicon ``name``, the ``text`` as written, its
    span, and whether it was only a fuzzy (edit-distance) match."""

    name: str
    text: str
    start: int
    end: int
    fuzzy: bool = False


class _DrugIndex:
    def __init__(self, lexicon: frozenset[str]) -> None:
        self.single = {n for n in lexicon if " " not in n}
        multi = [tuple(n.split()) for n in lexicon if " " in n]
        self.multi = sorted(multi, key=len, reverse=True)
        self.by_prefix: dict[str, list[str]] = {}
        self.phon: dict[str, list[tuple[str, str]]] = {}
        for n in self.single:
            if len(n) >= 5:
                self.by_prefix.setdefault(n[:5], []).append(n)
            p = _phon(n)
            if p:
                self.phon.setdefault(p[0], []).append((p, n))

    def exact(self, w: str) -> str | None:
        if w in self.single:
            return w
        for suf in _SUFFIXES:
            if w.endswith(suf) and len(w) - len(suf) >= 4 and w[: -len(suf)] in self.single:
                return w[: -len(suf)]
        if "-" in w:
            head = w.split("-", 1)[0]
            if head in self.single and len(head) >= 4:
                return head
        for n in self.by_prefix.get(w[:5], ()):
            if w.startswith(n) and w[len(n) :] in _FORM_HEADS:
                return n
        return None

    def fuzzy(self, w: str, memo: dict[str, str | None] | None = None) -> str | None:
        if len(w) < 6 or w in _FUZZY_STOP or not w.isalpha():
            return None
        if memo is not None:
            if w not in memo:
                memo[w] = self.fuzzy(w)
            return memo[w]
        forms = [w] + [w[: -len(s)] for s in ("en", "et", "ene", "a") if w.endswith(s)]
        best: tuple[int, str] | None = None
        for form in forms:
            if len(form) < 6:
                continue
            p = _phon(form)
            for cand, name in self.phon.get(p[:1], ()):
                if len(name) < 6:
                    continue
                limit = 2 if max(len(p), len(cand)) >= 9 else 1
                if abs(len(p) - len(cand)) > limit:
                    continue
                d = _edit_distance(p, cand, limit)
                if d <= limit and (
                    best is None or d < best[0] or (d == best[0] and name < best[1])
                ):
                    best = (d, name)
        return best[1] if best else None

    def match(self, w: str, fuzzy: bool, memo: dict[str, str | None] | None = None) -> tuple[str, bool] | None:
        name = self.exact(w)
        if name is not None:
            return name, False
        if fuzzy:
            name = self.fuzzy(w, memo)
            if name is not None:
                return name, True
        return None


@lru_cache(maxsize=8)
def _drug_index(lexicon: frozenset[str]) -> _DrugIndex:
    return _DrugIndex(lexicon)


_WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def drug_mentions(
    text: str, lexicon: Iterable[str] | None = None, *, fuzzy: bool = True,
    memo: dict[str, str | None] | None = None,
) -> list[DrugMention]:
    """Every drug name in ``text`` with its span (see :func:`find_drugs`). ``memo``: the
    fuzzy matches of words already looked up (the verifier keeps one per transcript: a
    long transcript repeats its words, and the draft repeats the transcript's)."""
    lex = frozenset(lexicon) if lexicon is not None else _read_lexicon(DRUG_LEXICON_PATH)[0]
    index = _drug_index(lex)
    toks = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]
    out: list[DrugMention] = []
    i = 0
    while i < len(toks):
        hit = None
        for words in index.multi:
            k = len(words)
            if i + k > len(toks):
                continue
            got = [t[0] for t in toks[i : i + k]]
            if got[:-1] == list(words[:-1]) and (
                got[-1] == words[-1]
                or index.exact(got[-1]) == words[-1]
                or any(got[-1] == words[-1] + s for s in _SUFFIXES)
            ):
                s, e = toks[i][1], toks[i + k - 1][2]
                hit = (DrugMention(" ".join(words), text[s:e], s, e), k)
                break
        if hit is None:
            w, s, e = toks[i]
            m = index.match(w, fuzzy, memo)
            if m is not None:
                hit = (DrugMention(m[0], text[s:e], s, e, m[1]), 1)
            elif fuzzy and i + 1 < len(toks) and text[e : toks[i + 1][1]].isspace():
                # an ASR split: "amlo dipin"
                w2, _, e2 = toks[i + 1]
                joined = w + w2
                if len(w) >= 3 and len(w2) >= 3 and index.exact(joined) is not None:
                    hit = (DrugMention(index.exact(joined) or joined, text[s:e2], s, e2, True), 2)
        if hit is not None:
            out.append(hit[0])
            i += hit[1]
        else:
            i += 1
    return out


def find_drugs(text: str, lexicon: Iterable[str] | None = None, *, fuzzy: bool = True) -> list[str]:
    """Lexicon names of the drugs mentioned in ``text``, in order of first mention.

    Handles case, Norwegian inflection ("amlodipinen", "metforminet", "losartanen"),
    compounds with a dosage-form head ("penicillinkur"), multi-word names
    ("insulin glargin") and, for words of 6+ letters, ASR misspellings within a small
    edit distance after spelling normalisation ("amlodipien", "sertralinn", "Cipraleks").
    """
    seen: dict[str, None] = {}
    for m in drug_mentions(text, lexicon, fuzzy=fuzzy):
        seen.setdefault(m.name, None)
    return list(seen)


# --------------------------------------------------------------------------------------
# Words, stems, laterality

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


# --------------------------------------------------------------------------------------
# Transcript index


@dataclass(slots=True)
class _TSentence:
    utt: int
    text: str
    toks: list[_Tok]
    lats: list[_Lat]
    content: list[str]


@dataclass(slots=True)
class _Index:
    ids: list[int]
    quantities: dict[int, list[Quantity]]
    drugs: dict[int, set[str]]
    sentences: list[_TSentence]
    sides: dict[int, set[str]]
    vocab: set[str]
    vocab_hits: dict[str, bool] = field(default_factory=dict)
    retracted: list[Any] = field(default_factory=list)  # summarize.retractions.Retraction

    def has_word(self, w: str) -> bool:
        hit = self.vocab_hits.get(w)
        if hit is None:
            hit = _word_supported(w, self.vocab)
            self.vocab_hits[w] = hit
        return hit


def _split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?…])\s+|\n+", text) if s.strip()]


# --------------------------------------------------------------------------------------
# Verifier


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """What the verifier checks and how strictly.

    ``evidence_only``: items must be in the sentence's evidence segments when it has any
    (default: anywhere in the transcript is enough). ``no_evidence_overlap``: a sentence
    without evidence ids is flagged ``no_evidence`` when the share of its content words
    found in the transcript is at most this (0.0: only when none is found).
    """

    check_numbers: bool = True
    check_drugs: bool = True
    check_laterality: bool = True
    check_evidence: bool = True
    evidence_only: bool = False
    no_evidence_overlap: float = 0.0
    fuzzy_drugs: bool = True


class Verifier:
    """Checks a draft against the transcript; see the module docstring."""

    def __init__(
        self, options: VerifyOptions | None = None, lexicon: set[str] | None = None
    ) -> None:
        self.options = options or VerifyOptions()
        names, aliases = _read_lexicon(DRUG_LEXICON_PATH)
        self.lexicon: frozenset[str] = frozenset(lexicon) if lexicon is not None else names
        self.aliases = aliases
        self._cache: tuple[tuple[tuple[int, str], ...], _Index] | None = None
        self._memo: dict[str, str | None] = {}  # fuzzy drug matches of this transcript's words

    # -- transcript -------------------------------------------------------------------

    def _index(self, utterances: Sequence[Utterance]) -> _Index:
        key = tuple((u.id, u.text) for u in utterances)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        self._memo = {}  # a new transcript: nothing of the last one is kept
        quantities: dict[int, list[Quantity]] = {}
        drugs: dict[int, set[str]] = {}
        sentences: list[_TSentence] = []
        sides: dict[int, set[str]] = {}
        vocab: set[str] = set()
        retracted = retractions_in(utterances)
        for u in utterances:
            norm = resolve(normalize_numbers(u.text or ""))  # a retracted value is not said
            quantities.setdefault(u.id, []).extend(extract_quantities(norm, normalized=True))
            drugs.setdefault(u.id, set()).update(
                canonical_drug(m.name, self.aliases)
                for m in drug_mentions(norm, self.lexicon, fuzzy=self.options.fuzzy_drugs, memo=self._memo)
            )
            for s in _split_sentences(norm):
                toks = _tokens(s)
                lats = _lateralities(s, toks)
                sides.setdefault(u.id, set()).update(lat.side for lat in lats)
                content = [t.word for t in toks if _is_content(t.word)]
                vocab.update(t.word for t in toks if t.word.isalnum())
                sentences.append(_TSentence(u.id, s, toks, lats, content))
        index = _Index([u.id for u in utterances], quantities, drugs, sentences, sides, vocab, retracted=retracted)
        self._cache = (key, index)
        return index

    # -- public -----------------------------------------------------------------------

    def verify(self, draft: NoteDraft, utterances: list[Utterance]) -> list[Flag]:
        """Flags for every unsupported item of every sentence of ``draft``."""
        index = self._index(utterances)
        flags: list[Flag] = []
        n = 0
        for section in draft.sections:
            for sentence in section.sentences:
                n += 1
                flags.extend(self._verify_sentence(section.id, sentence, index))
        unique = list(dict.fromkeys(flags))
        logger.info(
            "verified %d sentences against %d segments: %d flags %s",
            n,
            len(utterances),
            len(unique),
            dict(Counter(f.kind for f in unique)),
        )
        return unique

    # -- one sentence -----------------------------------------------------------------

    def _scope(self, sentence: Sentence, index: _Index) -> tuple[list[int], list[int]]:
        """(valid evidence ids, ids where items may be found)."""
        known = set(index.ids)
        evidence = [i for i in sentence.evidence if i in known]
        if self.options.evidence_only and evidence:
            return evidence, evidence
        return evidence, index.ids

    def _verify_sentence(self, section: str, sentence: Sentence, index: _Index) -> list[Flag]:
        text = sentence.text or ""
        if not text.strip():
            return []
        norm = normalize_numbers(text)
        evidence, scope = self._scope(sentence, index)
        flags: list[Flag] = []
        if self.options.check_numbers:
            pool = [q for i in scope for q in index.quantities.get(i, ())]
            for q in extract_quantities(norm, normalized=True):
                if not any(quantity_supports(e, q) for e in pool):
                    kind = "unsupported_date" if q.kind == "date" else "unsupported_number"
                    flags.append(self._retracted(Flag(kind, q.text, section, text), index, "number"))
        if self.options.check_drugs:
            have = set().union(*(index.drugs.get(i, set()) for i in scope)) if scope else set()
            for m in drug_mentions(norm, self.lexicon, fuzzy=self.options.fuzzy_drugs, memo=self._memo):
                if canonical_drug(m.name, self.aliases) not in have:
                    flags.append(self._retracted(Flag("unsupported_drug", m.text, section, text), index, "drug"))
        if self.options.check_laterality:
            flags.extend(self._retracted(f, index, "side")
                         for f in self._check_laterality(section, text, norm, evidence, scope, index))
        flags.extend(self._retracted_words(section, text, norm, index))
        if self.options.check_numbers:
            from summarize.records import implausible_values

            flags.extend(Flag("implausible_value", v, section, text) for v in implausible_values(text))
        if self.options.check_evidence and not evidence:
            words = [t.word for t in _tokens(norm) if _is_content(t.word) or t.word.isdigit()]
            if words:
                found = sum(1 for w in words if index.has_word(w))
                if found / len(words) <= self.options.no_evidence_overlap:
                    flags.append(Flag("no_evidence", text, section, text))
            elif not index.ids:
                flags.append(Flag("no_evidence", text, section, text))
        if flags:
            logger.debug("sentence %r: %s", text, [(f.kind, f.text) for f in flags])
        return flags

    def _retracted(self, flag: Flag, index: _Index, kind: str) -> Flag:
        """An unsupported item that was said and then retracted ("50 … nei, 25") is a
        ``retracted_value``: the text names the correction."""
        item = flag.text.lower()
        for r in index.retracted:
            said = r.retracted.lower()
            hit = (re.match(rf"{re.escape(said)}\b", item) if kind == "number"
                   else said in item if kind == "side"
                   else canonical_drug(said, self.aliases) == canonical_drug(item, self.aliases))
            if r.kind == kind and hit:
                return Flag("retracted_value", f"{flag.text} (rettet til {r.corrected})", flag.section, flag.detail)
        return flag

    def _retracted_words(self, section: str, text: str, norm: str, index: _Index) -> list[Flag]:
        """A retracted weekday in the sentence that is not said elsewhere ("tirsdag, nei,
        onsdag": the draft says "tirsdag")."""
        out = []
        for r in index.retracted:
            if r.kind == "weekday" and re.search(rf"\b{re.escape(r.retracted)}\b", norm, re.I) \
                    and r.retracted.lower() not in index.vocab:
                out.append(Flag("retracted_value", f"{r.retracted} (rettet til {r.corrected})", section, text))
        return out

    def _check_laterality(
        self,
        section: str,
        text: str,
        norm: str,
        evidence: list[int],
        scope: list[int],
        index: _Index,
    ) -> list[Flag]:
        toks = _tokens(norm)
        lats = _lateralities(norm, toks)
        flags: list[Flag] = []
        in_scope = set(scope)
        lat_tokens = {k for lat in lats for k in range(lat.first, lat.last + 1)}
        for lat in lats:
            a = _anchor(norm, toks, lat)
            first = min(lat.first, a) if a is not None else lat.first
            last = max(lat.last, a) if a is not None else lat.last
            item = norm[toks[first].start : toks[last].end]
            supported = self._side_supported(lat, a, toks, lat_tokens, evidence, in_scope, index)
            if not supported:
                flags.append(Flag("unsupported_laterality", item, section, text))
        return flags

    def _side_supported(
        self,
        lat: _Lat,
        anchor: int | None,
        toks: list[_Tok],
        lat_tokens: set[int],
        evidence: list[int],
        scope: set[int],
        index: _Index,
    ) -> bool:
        if anchor is None:
            return any(_side_ok(lat.side, index.sides.get(i, set())) for i in scope)
        body = toks[anchor].word
        clause = toks[lat.first].clause
        context = [
            t.word
            for k, t in enumerate(toks)
            if t.clause == clause and k != anchor and k not in lat_tokens and _is_content(t.word)
        ]
        mentions: list[tuple[int, str, int]] = []  # (score, side, utterance)
        for s in index.sentences:
            if s.utt not in scope or not s.lats:
                continue
            for p, t in enumerate(s.toks):
                if not _stem_match(body, t.word):
                    continue
                side = _nearest_side(p, s.lats)
                if side is None:
                    continue
                score = sum(1 for w in context if _word_supported(w, s.content))
                mentions.append((score, side, s.utt))
        if not mentions:
            return any(_side_ok(lat.side, index.sides.get(i, set())) for i in scope)
        if evidence:
            local = [m for m in mentions if m[1] and m[2] in evidence]
            if local:
                mentions = local
        best = max(m[0] for m in mentions)
        chosen = [m for m in mentions if m[0] == best] if best > 0 else mentions
        return _side_ok(lat.side, {m[1] for m in chosen})


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


# --------------------------------------------------------------------------------------
# Uncertain ASR words

_UNIT_WORDS_ASR = frozenset(
    {
        "mg",
        "milligram",
        "mikrogram",
        "mcg",
        "µg",
        "gram",
        "milliliter",
        "ml",
        "millimol",
        "mmol",
        "enheter",
        "einingar",
        "ie",
        "prosent",
    }
)
_PUNCT = ".,;:!?()[]«»\"'…–-"


def uncertain_asr_flags(
    utterances: Sequence[Utterance],
    threshold: float = 0.5,
    lexicon: Iterable[str] | None = None,
) -> list[Flag]:
    """``uncertain_asr`` flags for ASR words below ``threshold`` probability that are drug
    names (exact, inflected or fuzzy), numbers or number words (an article only when it
    is the number 1 in context: "en tablett"), or dose units. ``text`` is the word as
    recognised, ``detail`` the segment id. A drug name split in two by the ASR
    ("amlo dipin") is flagged as the joined pair."""
    lex = frozenset(lexicon) if lexicon is not None else _read_lexicon(DRUG_LEXICON_PATH)[0]
    index = _drug_index(lex)
    flags: list[Flag] = []
    for u in utterances:
        words = [(w.word.strip().strip(_PUNCT), w.probability) for w in u.words]
        k = 0
        while k < len(words):
            w, p = words[k]
            low = w.lower()
            nxt = words[k + 1] if k + 1 < len(words) else None
            if not w:
                k += 1
                continue
            if nxt is not None and (p < threshold or nxt[1] < threshold):
                joined = low + nxt[0].lower()
                if (
                    len(low) >= 3
                    and len(nxt[0]) >= 3
                    and index.match(low, True) is None
                    and index.match(nxt[0].lower(), True) is None
                    and index.match(joined, True) is not None
                ):
                    flags.append(Flag("uncertain_asr", f"{w} {nxt[0]}", None, str(u.id)))
                    k += 2
                    continue
            if p < threshold and _uncertain_word(low, words, k, index):
                flags.append(Flag("uncertain_asr", w, None, str(u.id)))
            k += 1
    flags = list(dict.fromkeys(flags))
    logger.info("uncertain ASR: %d flags in %d segments", len(flags), len(utterances))
    return flags


def _uncertain_word(low: str, words: list[tuple[str, float]], k: int, index: _DrugIndex) -> bool:
    if is_number_word(low) or low in _UNIT_WORDS_ASR:
        return True
    if low in ("en", "ei", "et", "ein", "eit"):
        window = " ".join(w for w, _ in words[k : k + 3])
        return normalize_numbers(window)[:1].isdigit()
    return index.match(low, True) is not None


def flip_side(word: str) -> str | None:
    """ "høyre" <-> "venstre" keeping the capital (for tests and the UI)."""
    side = _LAT_SINGLE.get(word.lower())
    other = _FLIP.get(side or "")
    if other is None:
        return None
    return other.capitalize() if word[:1].isupper() else other
