"""``uncertain_asr`` flags: ASR words below a probability threshold that are drug names,
numbers or units, so the UI can highlight them.

Transcript text is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from summarize.grounding.drugs import DRUG_LEXICON_PATH, _drug_index, _DrugIndex, _read_lexicon
from summarize.grounding.number_words import is_number_word
from summarize.grounding.numbers import normalize_numbers
from summarize.types import Flag, Utterance

logger = logging.getLogger(__name__)

__all__ = [
    "uncertain_asr_flags",
]

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

