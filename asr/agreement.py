"""LocalAgreement-2: commit what two consecutive hypotheses agree on.

Follows ufal/whisper_streaming's ``HypothesisBuffer``: each re-decoding of the growing
audio buffer gives a hypothesis (words with absolute times). The longest common prefix
of the previous and the new hypothesis (after the already committed words) is
committed; the rest stays tentative. Words that re-appear because their audio is still
in the buffer are recognised by time and by an n-gram overlap with the committed tail
and skipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from asr.types import Word

_PUNCT = re.compile(r"[^\w]+", re.UNICODE)


def normalize_word(text: str) -> str:
    """Compare words case- and punctuation-insensitively (æøå kept)."""
    return _PUNCT.sub("", unicodedata.normalize("NFC", text).casefold())


class LocalAgreement:
    """The LocalAgreement-n policy over word hypotheses (n = 2 by default)."""

    def __init__(self, *, time_tolerance: float = 0.4, max_ngram: int = 5) -> None:
        self.time_tolerance = time_tolerance
        self.max_ngram = max_ngram
        self.committed: list[Word] = []  # committed words whose audio may still be buffered
        self._previous: list[Word] = []  # last hypothesis, uncommitted part
        self._last_committed_end = 0.0

    @property
    def last_committed_end(self) -> float:
        return self._last_committed_end

    def _strip_committed(self, hypothesis: Sequence[Word]) -> list[Word]:
        """Drop words of the new hypothesis that lie in already committed audio."""
        new = [w for w in hypothesis if w.start > self._last_committed_end - self.time_tolerance]
        if not new or not self.committed:
            return new
        # The first new word starts right where committed text ended: the hypothesis
        # may repeat the last committed words. Remove the longest such n-gram.
        if abs(new[0].start - self._last_committed_end) < 1.0:
            tail = [normalize_word(w.word) for w in self.committed]
            head = [normalize_word(w.word) for w in new]
            for n in range(min(len(tail), len(head), self.max_ngram), 0, -1):
                if tail[-n:] == head[:n]:
                    return new[n:]
        return new

    def insert(self, hypothesis: Sequence[Word]) -> list[Word]:
        """Add a new hypothesis; return the words committed by agreement."""
        new = self._strip_committed(hypothesis)
        agreed: list[Word] = []
        for old, cur in zip(self._previous, new, strict=False):
            if normalize_word(old.word) != normalize_word(cur.word):
                break
            agreed.append(cur)
        self._previous = new[len(agreed) :]
        self._commit(agreed)
        return agreed

    def observe(self, hypothesis: Sequence[Word]) -> None:
        """Keep ``hypothesis`` as the tentative text (and the next comparison) without
        committing anything."""
        self._previous = self._strip_committed(hypothesis)

    def commit_all(self, hypothesis: Sequence[Word] | None = None) -> list[Word]:
        """Commit everything outstanding (end of utterance or of the stream).

        With ``hypothesis`` given, that final hypothesis is committed (after removing
        what is already committed); otherwise the last tentative hypothesis is.
        """
        words = self._strip_committed(hypothesis) if hypothesis is not None else self._previous
        words = list(words)
        self._previous = []
        self._commit(words)
        return words

    def _commit(self, words: list[Word]) -> None:
        if words:
            self.committed.extend(words)
            self._last_committed_end = max(self._last_committed_end, words[-1].end)

    @property
    def tentative(self) -> list[Word]:
        return list(self._previous)

    def forget_before(self, time: float) -> None:
        """The audio before ``time`` left the buffer: forget committed words there."""
        self.committed = [w for w in self.committed if w.end > time]

    def reset(self) -> None:
        """Forget everything (the buffer was cleared at an utterance end)."""
        self.committed.clear()
        self._previous = []
