"""The capture socket's audio frames: an 8-byte header (u32 LE sequence number, u32 LE sample
offset) then PCM16 LE mono at 16 kHz, taken in order of their sample offset.

:class:`AudioIntake` keeps one consultation's position: a resent frame (after a reconnect) is
dropped, an overlapping one trimmed, and one that starts after the next expected sample is
refused, so the transcript gets every sample exactly once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

HEADER = struct.Struct("<II")
SAMPLE_RATE = 16000
FAR_FUTURE_S = 15 * 60  # the client's ring buffer holds ~10 min: an offset further ahead is nonsense


class FrameError(Exception):
    """A frame the server refuses: ``code`` (protocol) and a Norwegian ``message``."""

    def __init__(self, code: str, message: str, **extra: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Frame:
    sequence: int
    offset: int
    pcm: bytes


def parse_frame(data: bytes, max_bytes: int) -> Frame:
    """A binary message as a :class:`Frame`, or :class:`FrameError`."""
    if len(data) > max_bytes:
        raise FrameError("frame_too_large", f"Lydrammen er for stor ({len(data)} byte; høyst {max_bytes}).")
    if len(data) < HEADER.size:
        raise FrameError("bad_frame", "Lydrammen mangler hodet (8 byte: sekvensnummer og sampleposisjon).")
    pcm = data[HEADER.size:]
    if len(pcm) % 2:
        raise FrameError("bad_frame", "Lydrammen har et odde antall byte (PCM16 har 2 byte per sample).")
    sequence, offset = HEADER.unpack_from(data)
    return Frame(sequence, offset, pcm)


def pack_frame(sequence: int, offset: int, samples: np.ndarray) -> bytes:
    """A frame for ``samples`` (int16 or float in [-1, 1]); the clients' side, for tests and the benchmark."""
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    return HEADER.pack(sequence & 0xFFFFFFFF, offset) + samples.astype("<i2").tobytes()


class AudioIntake:
    """The next sample offset a consultation needs, and the samples of each frame it takes."""

    def __init__(self, expected: int = 0) -> None:
        self.expected = expected
        self.duplicates = 0  # frames dropped as already received (resends)

    def take(self, frame: Frame) -> np.ndarray:
        """The new samples of ``frame`` as float32 (empty for a resend); :class:`FrameError`
        for a frame that leaves a gap."""
        n = len(frame.pcm) // 2
        if frame.offset > self.expected:
            if frame.offset - self.expected > FAR_FUTURE_S * SAMPLE_RATE:
                raise FrameError("future_offset", "Lydrammens sampleposisjon ligger langt fram i tid; rammen avvises.",
                                 expected=self.expected)
            raise FrameError("gap", "Lyd mangler før denne rammen; send på nytt fra posisjonen serveren venter på.",
                             expected=self.expected)
        skip = self.expected - frame.offset
        if skip >= n:
            self.duplicates += 1
            return np.zeros(0, dtype=np.float32)
        pcm = np.frombuffer(frame.pcm, dtype="<i2")[skip:]
        self.expected += len(pcm)
        return pcm.astype(np.float32) / 32768.0
