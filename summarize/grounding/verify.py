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
``section`` the section id, ``detail`` the sentence. Uncertain ASR words are flagged by
:func:`summarize.grounding.uncertain_asr.uncertain_asr_flags`; the word matching and the
side words are :mod:`summarize.grounding.words`.

Transcript and note text is logged only at DEBUG level.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from summarize.draft.records import implausible_values
from summarize.draft.retractions import resolve, retractions_in
from summarize.grounding.drugs import (  # re-exported: the verifier's public names
    DRUG_LEXICON_PATH,
    DrugMention,
    _read_lexicon,
    canonical_drug,
    drug_mentions,
    find_drugs,
    load_drug_aliases,
    load_drug_lexicon,
)
from summarize.grounding.numbers import normalize_numbers
from summarize.grounding.quantities import Quantity, extract_quantities, quantity_supports
from summarize.grounding.words import (
    _anchor,
    _is_content,
    _Lat,
    _lateralities,
    _nearest_side,
    _side_ok,
    _stem_match,
    _Tok,
    _tokens,
    _word_supported,
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
    "load_drug_aliases",
    "load_drug_lexicon",
]


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

