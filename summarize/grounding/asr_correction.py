"""Post-correction of drug names and template terms that Whisper misheard.

Whisper base writes a drug it does not know as a near-miss ("metformine", "amlodipien",
"Cipraleks"). A committed word is replaced by a drug name from the lexicon
(``summarize/data/legemidler.txt``) or a term of the template's vocabulary when all hold:

* Whisper was unsure of the word (probability below ``max_probability``);
* the word is not a real word: not already a drug name or a vocabulary term, not one of
  the ordinary words known to lie near a drug name, and not in Debian's Norwegian word
  lists (package ``wnorwegian``: ``/usr/share/dict/bokmaal`` and ``nynorsk``), so
  "metoden" or "morgen" are never turned into drugs;
* a term is close to it in spelling and sound (the drug matcher's phonetic edit
  distance: one or two sound-alike changes, by length; the closest wins), keeping a
  Norwegian inflection ("metforminen").

Two short unsure pieces that join into an exact drug name ("amlo dipin") are merged.
A corrected word keeps its low probability, so the draft still highlights it as an
uncertain drug name for the clinician to check. Without the word lists the dictionary
check is skipped and only words below half of ``max_probability`` are corrected.
"""

from __future__ import annotations

import logging
import mmap
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from summarize.grounding.drugs import _FUZZY_STOP, DRUG_LEXICON_PATH, _drug_index, _edit_distance, _phon, _read_lexicon

logger = logging.getLogger(__name__)

WORD_LISTS = (Path("/usr/share/dict/bokmaal"), Path("/usr/share/dict/nynorsk"))
_EDGE = re.compile(r"^(\W*)(.*?)(\W*)$", re.UNICODE | re.DOTALL)
_INFLECTIONS = ("ene", "en", "et", "er", "a")


class NorwegianWords:
    """Membership in Debian's bokmål and nynorsk word lists (ISO-8859-1, one word a line),
    searched in place through a read-only memory map: the 1.5 million words are never
    loaded into Python objects. Only the rare candidate words are looked up."""

    def __init__(self, paths: Iterable[Path] = WORD_LISTS) -> None:
        self._maps: list[mmap.mmap] = []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    self._maps.append(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            except (OSError, ValueError):
                continue
        self.available = bool(self._maps)

    def __contains__(self, word: object) -> bool:
        # no cache: the words looked up are a patient's (unsure words of a transcript)
        if not isinstance(word, str) or not word:
            return False
        for form in {word, word.lower(), word[:1].upper() + word[1:].lower()}:
            try:
                needle = form.encode("latin-1")
            except UnicodeEncodeError:
                continue
            for m in self._maps:
                if m[: len(needle) + 1] == needle + b"\n" or m.find(b"\n" + needle + b"\n") >= 0:
                    return True
        return False


@lru_cache(maxsize=1)
def norwegian_words() -> NorwegianWords:
    words = NorwegianWords()
    if not words.available:
        logger.info("Norwegian word lists not found (apt-get install wnorwegian): corrections are stricter")
    return words


@dataclass(frozen=True, slots=True)
class Correction:
    """One replaced word: what Whisper wrote and the term it became."""

    heard: str
    term: str


class TermCorrector:
    """Corrects the words of committed segments; one per consultation (the template's
    vocabulary is part of it)."""

    def __init__(self, vocabulary: Iterable[str] = (), *, max_probability: float = 0.7,
                 dictionary: NorwegianWords | None = None) -> None:
        lexicon, _ = _read_lexicon(DRUG_LEXICON_PATH)
        terms = {v.strip().lower() for v in vocabulary if v.strip() and " " not in v.strip()}
        self.terms = frozenset(lexicon | terms)
        self.index = _drug_index(self.terms)
        self.dictionary = dictionary if dictionary is not None else norwegian_words()
        self.max_probability = max_probability
        # the term's own spelling (vocabulary keeps its capitals: "Lachman", "Fragmin")
        self.spelling = {v.strip().lower(): v.strip() for v in vocabulary if v.strip() and " " not in v.strip()}

    def _limit(self) -> float:
        return self.max_probability if self.dictionary.available else self.max_probability / 2

    def _candidate(self, core: str) -> str | None:
        """The term ``core`` (a word without punctuation) should be, or None."""
        low = core.lower()
        if len(low) < 5 or not low.isalpha() or low in self.terms or low in _FUZZY_STOP:
            return None
        if self.index.exact(low) is not None:
            return None  # already a drug name (inflected or compound)
        name = self.index.fuzzy(low)
        if name is None or low in self.dictionary:
            return None  # nothing sounds like it, or it is a real Norwegian word
        target = _phon(name)
        whole = _edit_distance(_phon(low), target, 4)
        for suffix in _INFLECTIONS:  # keep the inflection Whisper heard ("metforminnen")
            stem = low[: -len(suffix)]
            if low.endswith(suffix) and len(stem) >= 5 and _edit_distance(_phon(stem), target, 4) < whole:
                return self.spelling.get(name, name) + suffix
        return self.spelling.get(name, name)

    def correct(self, words: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[Correction]]:
        """``words`` (``asr.types.Word``) with misheard terms replaced, and what changed."""
        out: list[Any] = []
        changes: list[Correction] = []
        limit = self._limit()
        i = 0
        while i < len(words):
            w = words[i]
            lead, core, trail = _EDGE.match(w.word.strip()).groups()  # type: ignore[union-attr]
            space = w.word[: len(w.word) - len(w.word.lstrip())]
            if w.probability < limit and core:
                merged = self._merge(words, i, limit)
                if merged is not None:
                    out.append(merged[0])
                    changes.append(merged[1])
                    i += 2
                    continue
                term = self._candidate(core)
                if term is not None:
                    if core[:1].isupper() and term[:1].islower():
                        term = term[:1].upper() + term[1:]
                    out.append(replace(w, word=f"{space}{lead}{term}{trail}"))
                    changes.append(Correction(core, term))
                    i += 1
                    continue
            out.append(w)
            i += 1
        return tuple(out), changes

    def _merge(self, words: tuple[Any, ...], i: int, limit: float) -> tuple[Any, Correction] | None:
        """Two unsure pieces that join into an exact drug name ("amlo dipin")."""
        if i + 1 >= len(words) or words[i].word.rstrip()[-1:].isalpha() is False:
            return None
        a, b = words[i], words[i + 1]
        ca, cb = a.word.strip(), _EDGE.match(b.word.strip()).group(2)  # type: ignore[union-attr]
        if not (ca.isalpha() and cb.isalpha() and len(ca) >= 3 and len(cb) >= 3) or b.probability >= limit:
            return None
        joined = (ca + cb).lower()
        name = self.index.exact(joined)
        if name is None or ca.lower() in self.dictionary or cb.lower() in self.dictionary:
            return None
        trail = b.word.strip()[len(b.word.strip().rstrip(".,;:!?")):]
        space = a.word[: len(a.word) - len(a.word.lstrip())]
        word = replace(a, word=f"{space}{joined}{trail}", end=b.end, probability=min(a.probability, b.probability))
        return word, Correction(f"{ca} {cb}", joined)

    def correct_segment(self, segment: Any) -> tuple[Any, list[Correction]]:
        """The segment with its words (and text) corrected."""
        if not segment.words:
            return segment, []
        words, changes = self.correct(tuple(segment.words))
        if not changes:
            return segment, []
        text = "".join(w.word for w in words).strip()
        return replace(segment, words=words, text=text), changes
