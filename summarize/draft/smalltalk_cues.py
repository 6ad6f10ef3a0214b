"""The cues of one segment: the social and clinical words the lexicon finds in it, and
the numbers that carry clinical meaning (a unit, a dose, a measurement, an interval)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from summarize.draft.smalltalk_lexicon import Kind, Lexicon, Term, _tokens

_NUMBER_WORD = re.compile(
    r"^(?:null|én|en|ei|ett|to|tre|fire|fem|seks|sju|syv|åtte|ni|ti|elleve|tolv|tretten|"
    r"fjorten|femten|seksten|sytten|atten|nitten|tjue|tyve|tretti|tredve|førti|femti|"
    r"seksti|sytti|åtti|nitti|hundre|tusen)+$"
)
_DIGITS = re.compile(r"^\d+(?:[.,]\d+)?$")
_SLASH_VALUES = re.compile(r"\b\d{2,3}\s*/\s*\d{2,3}\b")
# a capitalised word after a lower-case word or a comma (not a sentence's first word)
_PROPER_NOUN = re.compile(r"(?<=[a-zæøå,])\s+([A-ZÆØÅ][a-zæøåéü]{2,})\b")
_PER = set("om i per pr hver hvert ganger".split())
_PERIOD = set("dag dagen døgn døgnet uke uka uken minutt minuttet time timen".split())
_INTERVAL = set("dag dager dagen uke uker uka måned måneder år mnd".split())


@dataclass(frozen=True, slots=True)
class Hit:
    """A cue found in a segment: the term's list and the word as it was said."""

    kind: Kind
    category: str
    label: str
    word: str
    hard: bool = False
    weak: bool = False
    greeting: str | None = None

    @classmethod
    def of(cls, term: Term, word: str) -> Hit:
        return cls(term.kind, term.category, term.label, word, term.hard, term.weak, term.greeting)


def _is_number(tok: str) -> bool:
    return bool(_DIGITS.match(tok) or _NUMBER_WORD.match(tok))


def _number_end(tokens: Sequence[str], i: int) -> int:
    """End (exclusive) of the spoken or written number that starts at ``i`` ("hundre og
    førtiåtte", "fire komma en", "38,6"), or ``i`` if none starts there."""
    if not _is_number(tokens[i]):
        return i
    j = i + 1
    while j < len(tokens):
        if tokens[j] in ("og", "komma") and j + 1 < len(tokens) and _is_number(tokens[j + 1]):
            j += 2
        elif _is_number(tokens[j]):
            j += 1
        else:
            break
    return j


def _is_frequency(after: Sequence[str]) -> bool:
    """ "... ganger daglig / om dagen / i døgnet / i minuttet" (a dose or a rate), not
    "tre ganger denne uka"."""
    if after and after[0] == "daglig":
        return True
    return len(after) == 2 and after[0] in _PER and after[1] in _PERIOD


@dataclass(frozen=True, slots=True)
class Cues:
    """What the lexicon found in one segment."""

    social: tuple[Hit, ...]
    clinical: tuple[Hit, ...]
    words: int
    question: bool

    @property
    def hard(self) -> bool:
        """A number with a medical unit, a dose or a drug name: never dropped."""
        return any(h.hard for h in self.clinical)

    @property
    def strong_clinical(self) -> bool:
        return any(not h.weak for h in self.clinical)

    @property
    def weak_clinical(self) -> bool:
        return bool(self.clinical) and not self.strong_clinical

    @property
    def own(self) -> str:
        """The segment's class from its own words: ``clinical``, ``social`` or ``none``."""
        if self.strong_clinical:
            return "clinical"
        if self.social:
            return "social"
        return "none"


def analyse(text: str, lexicon: Lexicon) -> Cues:
    """Find the social and clinical cues of one segment."""
    tokens = _tokens(text)
    social: list[Hit] = []
    clinical: list[Hit] = []
    used = [False] * len(tokens)

    def add(hit: Hit) -> None:
        if hit.kind == "social":
            social.append(hit)
        elif hit.kind == "clinical":
            clinical.append(hit)

    for hit in _phrase_hits(tokens, lexicon, used):
        add(hit)
    clinical.extend(_number_hits(tokens, lexicon, used))
    slash = _SLASH_VALUES.search(text)
    if slash:
        clinical.append(Hit("clinical", "måleverdier", "måleverdi", slash.group(0), hard=True))
    for i, tok in enumerate(tokens):
        if used[i] or _is_number(tok) or len(tok) < 2:
            continue
        term = lexicon.word_term(tok)
        if (term is None or term.kind == "clinical") and lexicon.is_drug_name(tok):
            clinical.append(Hit("clinical", "legemidler", "legemiddel", tok, hard=True))
        elif term is not None:
            add(Hit.of(term, tok))
    if not clinical:
        # A name inside a sentence (a pet, a place, a band: "Vi gikk opp på Segla") is a
        # topic of small talk when nothing clinical is said; drugs were found above.
        social.extend(
            Hit("social", "navn", "navn/sted", m.group(1))
            for m in _PROPER_NOUN.finditer(text)
            if lexicon.word_term(m.group(1).lower()) is None
        )
    return Cues(tuple(social), tuple(clinical), len(tokens), "?" in text)


def _phrase_hits(tokens: list[str], lexicon: Lexicon, used: list[bool]) -> list[Hit]:
    """Multi-word terms, longest first; their words are not looked at again."""
    hits: list[Hit] = []
    for words, term in lexicon.phrases:
        n = len(words)
        for i in range(len(tokens) - n + 1):
            if any(used[i : i + n]):
                continue
            if tokens[i : i + n - 1] == list(words[:-1]) and _last_word_matches(
                tokens[i + n - 1], words[-1]
            ):
                if not _greeting_in_place(term, i, n, len(tokens)):
                    continue  # "da han kom inn" in a story is no "Kom inn!"
                hits.append(Hit.of(term, " ".join(tokens[i : i + n])))
                for k in range(i, i + n):
                    used[k] = True
    return hits


_GREETING_SPAN = 6  # a greeting opens a turn, a farewell ends it: within this many words


def _greeting_in_place(term: Term, start: int, n: int, total: int) -> bool:
    """A greeting phrase counts at the start of a turn, a farewell phrase at its end."""
    if term.greeting == "hilsen":
        return start < _GREETING_SPAN
    if term.greeting == "avskjed":
        return total - (start + n) < _GREETING_SPAN or start < _GREETING_SPAN
    return True


def _last_word_matches(token: str, stem: str) -> bool:
    """The last word of a phrase is a stem ("god helg" -> "god helga"), unless it is too
    short to be one ("ha det" must not match "ha dette")."""
    return token.startswith(stem) if len(stem) >= 4 else token == stem


def _number_hits(tokens: list[str], lexicon: Lexicon, used: list[bool]) -> list[Hit]:
    """Numbers that carry clinical meaning: with a unit, "X over Y", a dose frequency,
    a follow-up interval ("om seks uker"), a decimal ("fire komma en")."""
    hits: list[Hit] = []
    i = 0
    while i < len(tokens):
        j = _number_end(tokens, i)
        if j == i:
            i += 1
            continue
        span = " ".join(tokens[i:j])
        nxt = tokens[j] if j < len(tokens) else ""
        digits = all(_DIGITS.match(t) for t in tokens[i:j])
        hit: Hit | None = None
        if nxt in lexicon.units or nxt == "%" or (digits and nxt in lexicon.short_units):
            hit = Hit("clinical", "tall med enhet", "tall med enhet", f"{span} {nxt}", hard=True)
        elif nxt == "over" and j + 1 < len(tokens) and _number_end(tokens, j + 1) > j + 1:
            hit = Hit("clinical", "måleverdier", "måleverdi", f"{span} over ...", hard=True)
        elif nxt in ("gang", "ganger") and _is_frequency(tokens[j + 1 : j + 3]):
            hit = Hit("clinical", "dosering", "dosering", f"{span} {nxt}", hard=True)
        elif i > 0 and tokens[i - 1] == "om" and nxt in _INTERVAL:
            hit = Hit("clinical", "kontrollintervall", "kontroll", f"om {span} {nxt}", weak=True)
        elif "komma" in tokens[i:j] or any("," in t or "." in t for t in tokens[i:j]):
            hit = Hit("clinical", "måleverdier", "måleverdi", span)
        if hit is not None:
            hits.append(hit)
            for k in range(i, min(j + 1, len(tokens))):
                used[k] = True
        i = max(j, i + 1)
    return hits
