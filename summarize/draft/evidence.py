"""Evidence linking: the weighted terms a sentence shares with the utterances, which
links a sentence to what was said and finds repeated sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence

from summarize.draft.sentences import STOP_WORDS
from summarize.grounding.numbers import normalize_numbers
from summarize.types import Utterance

_WORD = re.compile(r"[0-9]+(?:[,./][0-9]+)*|[a-zæøåéü]+", re.IGNORECASE)


def _terms(text: str) -> dict[str, float]:
    """Weighted terms for evidence linking: numbers weigh most, then long content words
    (compared by their first six letters, so inflections match)."""
    terms: dict[str, float] = {}
    for tok in _WORD.findall(normalize_numbers(text).lower()):
        if tok[0].isdigit():
            terms[tok.replace(".", ",")] = 3.0
        elif len(tok) >= 4 and tok not in STOP_WORDS:
            terms[tok[:6]] = max(terms.get(tok[:6], 0.0), 1.5 if len(tok) >= 7 else 1.0)
    return terms


def link_evidence(sentence: str, utterances: Sequence[Utterance], min_score: float = 2.0, top: int = 3) -> tuple[int, ...]:
    """The ids of the utterances (at most ``top``, in transcript order) that support the sentence."""
    want = _terms(sentence)
    if not want:
        return ()
    scored = []
    for u in utterances:
        have = _terms(u.text)
        score = sum(w for t, w in want.items() if t in have)
        if score >= min_score:
            scored.append((score, u.id))
    best = sorted(scored, key=lambda x: -x[0])[:top]
    order = {u.id: i for i, u in enumerate(utterances)}
    return tuple(sorted((i for _, i in best), key=lambda i: order[i]))


def _dedupe(sentences: list[str], seen: list[set[str]] | None = None) -> list[str]:
    """Drop sentences whose content terms are (nearly) all in an earlier sentence (of
    this list, or of ``seen``: the sections before it, which it is extended with)."""
    out: list[str] = []
    seen = [] if seen is None else seen
    for s in sentences:
        t = set(_terms(s))
        if t and any(len(t & o) >= 0.8 * len(t) for o in seen):
            continue
        out.append(s)
        seen.append(t)
    return _without_fragments_of(out)


_NEGATED = re.compile(r"\b(ingen|ikke|ikkje|inga|aldri|uten|utan|negativ)\b", re.I)


def _without_fragments_of(sentences: list[str]) -> list[str]:
    """Drop a sentence whose terms all recur in a longer sentence of the same section
    ("Levaxin." beside "Levaxin 75 µg.", "Demens." beside "Redd for demens."); a negated
    one only beside another negated one."""
    terms = [set(_terms(s)) for s in sentences]
    out = []
    for i, s in enumerate(sentences):
        neg = bool(_NEGATED.search(s))
        if terms[i] and any(j != i and len(terms[j]) > len(terms[i]) and terms[i] <= terms[j]
                            and (not neg or _NEGATED.search(sentences[j])) for j in range(len(sentences))):
            continue
        out.append(s)
    return out

