"""Grounding verifier: everything checkable in an LLM draft must be in the transcript.

The clinician must never get a hallucinated dose into the record. For every sentence of
every section of a :class:`~summarize.types.NoteDraft` the verifier checks

* every number, dose, percent, ratio, date and clock time (both sides normalised with
  :func:`summarize.grounding.numbers.normalize_numbers`) -> ``unsupported_number`` /
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
  – unnskyld, høyre", :mod:`summarize.draft.retractions`) is not said: the number, drug, side or
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
from typing import Any

from summarize.draft.records import implausible_values
from summarize.draft.retractions import resolve, retractions_in
from summarize.grounding.drugs import (  # re-exported: the verifier's public names
    DRUG_LEXICON_PATH,
    DrugMention,
    _drug_index,
    _DrugIndex,
    _read_lexicon,
    canonical_drug,
    drug_mentions,
    find_drugs,
    load_drug_aliases,
    load_drug_lexicon,
)
from summarize.grounding.numbers import (
    Quantity,
    extract_quantities,
    is_number_word,
    normalize_numbers,
    quantity_supports,
)
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
    retracted: list[Any] = field(default_factory=list)  # summarize.draft.retractions.Retraction

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
