"""Speakers in the stream: a streaming transcriber whose committed segments carry their role.

:class:`SpeakerStream` wraps a :class:`~asr.streaming.StreamingTranscriber` (same interface):
it keeps the last ``keep_s`` seconds of audio in memory (a bounded ring: a committed segment
is at most Whisper's 30 s window old), hands each committed segment with its audio to the
consultation's :class:`~asr.speakers.tracker.SpeakerTracker`, and passes on the segment (or
its parts, split where the voice changed) labelled, followed by a :class:`SpeakersChanged`
event when earlier segments got another label. Tentative text passes through unchanged.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from asr.speakers.tracker import Label, SpeakerTracker
from asr.types import AudioChunk, Segment, Transcript


@dataclass(frozen=True, slots=True)
class SpeakersChanged:
    """Earlier segments' new (role, voice id), by segment id."""

    labels: dict[int, Label]

    def to_dict(self) -> dict[str, object]:
        return {"type": "speakers", "changes": [{"id": i, "speaker": r, "speaker_id": v}
                                                for i, (r, v) in sorted(self.labels.items())]}


class SpeakerStream:
    """See the module docstring."""

    def __init__(self, inner: Any, tracker: SpeakerTracker, keep_s: float = 60.0) -> None:
        self.inner = inner
        self.tracker = tracker
        self.keep_s = keep_s
        self.transcript = Transcript()  # the labelled (and split) segments
        self.seconds = 0.0  # time spent on speakers (embedding, splitting, clustering)
        self._ring: deque[AudioChunk] = deque()

    def __getattr__(self, name: str) -> Any:  # everything else is the transcriber's
        return getattr(self.inner, name)

    def insert_audio_chunk(self, chunk: AudioChunk) -> None:
        self.inner.insert_audio_chunk(chunk)
        self._ring.append(chunk)
        while self._ring and self._ring[0].end < chunk.end - self.keep_s:
            self._ring.popleft()

    def process_iter(self) -> list[Any]:
        return self._tag(self.inner.process_iter())

    def finish(self) -> list[Any]:
        return self._tag(list(self.inner.finish()))

    def wipe(self) -> None:
        self.inner.wipe()
        for chunk in self._ring:
            if chunk.samples.flags.writeable:
                chunk.samples.fill(0.0)
        self._ring.clear()
        self.transcript.clear()
        self.tracker.wipe()

    def _audio(self, start: float, end: float) -> tuple[np.ndarray, float]:
        chunks = [c for c in self._ring if c.end > start and c.start < end]
        if not chunks:
            return np.zeros(0, dtype=np.float32), start
        return np.concatenate([c.samples for c in chunks]).astype(np.float32, copy=False), chunks[0].start

    def _tag(self, events: list[Any]) -> list[Any]:
        out: list[Any] = []
        changed: dict[int, Label] = {}
        for ev in events:
            if not isinstance(ev, Segment) or not ev.text.strip():
                out.append(ev)
                continue
            t0 = time.perf_counter()
            audio, audio_start = self._audio(ev.start - 0.1, ev.end + 0.1)
            parts, more = self.tracker.add(ev, audio, audio_start)
            self.seconds += time.perf_counter() - t0
            changed.update(more)
            for part in parts:
                self.transcript.add(part)
            out.extend(parts)
        if changed:
            by_id = {s.id: i for i, s in enumerate(self.transcript.segments)}
            for seg_id, (role, voice) in changed.items():
                if seg_id in by_id:
                    i = by_id[seg_id]
                    self.transcript.segments[i] = dataclasses.replace(self.transcript.segments[i], speaker=role,
                                                                      speaker_id=voice)
            out.append(SpeakersChanged(changed))
        return out
