"""Small typed values that flow through the ASR pipeline.

All times are float seconds from session start (the first sample of the session).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
"""Every stage after the source works on 16 kHz mono float32."""


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A block of 16 kHz mono float32 samples starting at ``start`` seconds."""

    samples: np.ndarray
    start: float

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its time span and Whisper's probability."""

    word: str
    start: float
    end: float
    probability: float

    def shifted(self, offset: float) -> Word:
        return Word(self.word, self.start + offset, self.end + offset, self.probability)

    def to_dict(self) -> dict[str, object]:
        return {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "probability": round(self.probability, 4),
        }


def words_text(words: tuple[Word, ...] | list[Word]) -> str:
    """Join Whisper words (which carry their own leading spaces) into text."""
    return "".join(w.word for w in words).strip()


@dataclass(frozen=True, slots=True)
class Segment:
    """Committed text: it will not change any more.

    ``emitted_at`` is the session-clock time at which it was committed, so
    ``emitted_at - end`` is the commit latency when the clock is the wall clock.
    """

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    emitted_at: float
    speaker: str | None = None  # "lege", "pasient", "pårørende" when known (labelled, or from the voices)
    speaker_id: int | None = None  # the voice (a number per consultation) when the voices were told apart

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "segment",
            "id": self.id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "emitted_at": round(self.emitted_at, 3),
            "speaker": self.speaker,
            "speaker_id": self.speaker_id,
            "words": [w.to_dict() for w in self.words],
        }


@dataclass(frozen=True, slots=True)
class Tentative:
    """The current hypothesis after the committed text, for the screen only: it replaces
    the previous one and never enters the record. It covers the audio from ``start`` to
    ``end`` (session seconds; ``end`` is how far the hypothesis reaches) and was made at
    ``emitted_at`` (session clock). An empty text clears the tail."""

    text: str
    start: float = 0.0
    end: float = 0.0
    emitted_at: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "tentative",
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "emitted_at": round(self.emitted_at, 3),
        }


@dataclass(slots=True)
class Transcript:
    """The committed segments of one session, in order. Lives only in memory."""

    segments: list[Segment] = field(default_factory=list)

    def add(self, segment: Segment) -> None:
        """Add a segment in time order (a rescued stretch of speech may come late)."""
        i = len(self.segments)
        while i > 0 and self.segments[i - 1].start > segment.start:
            i -= 1
        self.segments.insert(i, segment)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    def clear(self) -> None:
        self.segments.clear()
