"""What a consultation tells its front end, as plain values (no Qt, no callbacks inside).

A front end passes ``on_event`` to :meth:`summarize.consultation.engine.Scribe.consultation`
and gets these objects. They are emitted on the thread that did the work (the capture
thread for :class:`Committed`, :class:`Tentative`, :class:`Level` and
:class:`RecordingEnded` and the voices' :class:`Relabelled`; the caller's thread for the rest); a GUI re-posts them to its UI
thread. They hold patient text: a front end shows them and never logs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asr.types import Segment


@dataclass(frozen=True, slots=True)
class Committed:
    """A segment the transcriber will not change any more; ``dropped`` is the small-talk
    filter's reason when the segment stays out of the note ("" when it is kept)."""

    segment: Segment
    dropped: str = ""


@dataclass(frozen=True, slots=True)
class Tentative:
    """The greyed tail after the committed text; replaced by the next one, never recorded.
    It covers the audio from ``start`` to ``end`` and was made at ``emitted_at`` (session
    seconds, as :class:`asr.types.Tentative`)."""

    text: str
    start: float = 0.0
    end: float = 0.0
    emitted_at: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"type": "tentative", "text": self.text, "start": round(self.start, 3),
                "end": round(self.end, 3), "emitted_at": round(self.emitted_at, 3)}


@dataclass(frozen=True, slots=True)
class Relabelled:
    """Segments whose speaker changed: ``labels[segment id] = (role, voice id)``. From the
    voices (a later, better guess) or from the clinician's relabel (``by_clinician``)."""

    labels: dict[int, tuple[str | None, int | None]]
    by_clinician: bool = False


@dataclass(frozen=True, slots=True)
class Level:
    """The input level in dBFS (for the level meter)."""

    dbfs: float


@dataclass(frozen=True, slots=True)
class RecordingEnded:
    """Capture and transcription are over (Stop, end of file, or a failure); ``error`` is
    a one-line message ("" if none). Everything said before it was committed."""

    error: str = ""


@dataclass(frozen=True, slots=True)
class Drafted:
    """A complete draft after Stop (or a redraft): the ``NoteResult`` (draft with its
    flags, the filtered transcript, timings)."""

    result: Any
    seconds: float


@dataclass(frozen=True, slots=True)
class Delivered:
    """The approved note reached the sink; ``receipt`` says where."""

    receipt: Any


@dataclass(frozen=True, slots=True)
class Ended:
    """The consultation ended and was wiped: ``how`` is delivered, failed, unknown or discarded."""

    how: str


Event = Committed | Tentative | Level | RecordingEnded | Drafted | Delivered | Ended
