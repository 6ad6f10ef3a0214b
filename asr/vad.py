"""Voice activity gate over webrtcvad: skip silence, mark the ends of utterances.

The gate consumes 16 kHz float32 chunks of any length, classifies 30 ms frames with
WebRTC's VAD and emits :class:`GateEvent` values in time order:

* ``speech`` events carry the audio of an utterance, from its onset through the
  trailing pause that ends it;
* ``silence`` events carry the audio between utterances (and clicks shorter than
  ``min_utterance_s``); the caller decides how much of it to keep (a pre-roll before
  the next onset, a short gap as context) and drops the rest;
* ``end`` events say that an utterance ended (``end_silence_s`` of non-speech);
* ``pause`` events say that a shorter pause (``pause_s``) fell inside an utterance that
  goes on (a comma, a breath): the transcriber may commit there.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from asr.types import SAMPLE_RATE, AudioChunk

logger = logging.getLogger(__name__)

FRAME_MS = 30
FRAME_S = FRAME_MS / 1000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


@dataclass(frozen=True, slots=True)
class VadOptions:
    """Voice activity gate settings.

    Attributes:
        aggressiveness: webrtcvad mode 0 (keeps most) to 3 (drops most non-speech).
        start_frames: speech frames among the last ``start_window`` frames that open an
            utterance.
        start_window: frames considered when opening an utterance.
        end_silence_s: seconds of non-speech that end an utterance.
        pre_roll_s: audio a caller keeps before the detected onset.
        min_utterance_s: utterances shorter than this (clicks, coughs) count as silence.
        pause_s: non-speech inside an utterance this long is reported as a ``pause``
            (0: never).
    """

    aggressiveness: int = 2
    start_frames: int = 3
    start_window: int = 5
    end_silence_s: float = 0.5
    pre_roll_s: float = 0.3
    min_utterance_s: float = 0.25
    pause_s: float = 0.21

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError("VAD aggressiveness must be 0, 1, 2 or 3")
        if not 1 <= self.start_frames <= self.start_window:
            raise ValueError("start_frames must be between 1 and start_window")


@dataclass(frozen=True, slots=True)
class GateEvent:
    """``kind`` is ``"speech"`` or ``"silence"`` (with ``chunk``), or ``"end"``
    (an utterance ended at ``time``)."""

    kind: str
    time: float
    chunk: AudioChunk | None = None


class VadGate:
    """Stateful speech gate; feed it chunks with :meth:`push`, then :meth:`flush`."""

    def __init__(self, options: VadOptions | None = None) -> None:
        import webrtcvad  # webrtcvad-wheels

        self.options = options or VadOptions()
        self._vad = webrtcvad.Vad(self.options.aggressiveness)
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0.0
        # frames not yet emitted: candidates for an onset, or an unconfirmed utterance
        self._held: deque[tuple[float, np.ndarray, bool]] = deque()
        self._in_speech = False
        self._confirmed = False
        self._silent_frames = 0
        self.speech_seconds = 0.0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def is_speech(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return bool(self._vad.is_speech(pcm, SAMPLE_RATE))

    def push(self, chunk: AudioChunk) -> list[GateEvent]:
        if len(self._pending) == 0:
            self._pending_start = chunk.start
        self._pending = np.concatenate([self._pending, chunk.samples.astype(np.float32)])
        events: list[GateEvent] = []
        n_frames = len(self._pending) // FRAME_SAMPLES
        for i in range(n_frames):
            frame = self._pending[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            t = self._pending_start + i * FRAME_S
            self._frame(t, frame.copy(), events)
        consumed = n_frames * FRAME_SAMPLES
        self._pending = self._pending[consumed:]
        self._pending_start += consumed / SAMPLE_RATE
        return _merge(events)

    def flush(self) -> list[GateEvent]:
        """End of stream: release held audio and close an open utterance."""
        events: list[GateEvent] = []
        tail_t = self._pending_start
        if len(self._pending):
            self._held.append((tail_t, self._pending.copy(), self._in_speech))
            tail_t += len(self._pending) / SAMPLE_RATE
        self._pending = np.zeros(0, dtype=np.float32)
        if self._in_speech:
            if self._confirmed:
                self._release("speech", events)
            self._close(tail_t, events)
        self._release("silence", events)
        return _merge(events)

    # -- state machine -----------------------------------------------------------------
    def _frame(self, t: float, frame: np.ndarray, events: list[GateEvent]) -> None:
        speech = self.is_speech(frame)
        opts = self.options
        if not self._in_speech:
            self._held.append((t, frame, speech))
            while len(self._held) > opts.start_window:
                ht, hf, _ = self._held.popleft()
                events.append(GateEvent("silence", ht, AudioChunk(hf, ht)))
            if speech and sum(s for _, _, s in self._held) >= opts.start_frames:
                # the utterance starts at the first speech frame of the window
                while self._held and not self._held[0][2]:
                    ht, hf, _ = self._held.popleft()
                    events.append(GateEvent("silence", ht, AudioChunk(hf, ht)))
                self._in_speech = True
                self._confirmed = False
                self._silent_frames = 0
                self._maybe_confirm(events)
            return
        if speech:
            self.speech_seconds += FRAME_S
            self._silent_frames = 0
        else:
            self._silent_frames += 1
        if self._confirmed:
            events.append(GateEvent("speech", t, AudioChunk(frame, t)))
        else:
            self._held.append((t, frame, speech))
            self._maybe_confirm(events)
        if self._silent_frames * FRAME_S >= opts.end_silence_s - 1e-9:
            self._close(t + FRAME_S, events)
        elif (
            self._confirmed and 0 < opts.pause_s < opts.end_silence_s
            and self._silent_frames == round(opts.pause_s / FRAME_S)
        ):
            events.append(GateEvent("pause", t + FRAME_S))

    def _maybe_confirm(self, events: list[GateEvent]) -> None:
        voiced = sum(s for _, _, s in self._held) * FRAME_S
        if voiced >= self.options.min_utterance_s:
            self._confirmed = True
            self._release("speech", events)

    def _release(self, kind: str, events: list[GateEvent]) -> None:
        while self._held:
            ht, hf, _ = self._held.popleft()
            events.append(GateEvent(kind, ht, AudioChunk(hf, ht)))

    def _close(self, time: float, events: list[GateEvent]) -> None:
        if self._confirmed:
            events.append(GateEvent("end", time))
        else:  # too short to be speech: a click or a cough
            self._release("silence", events)
        self._in_speech = False
        self._confirmed = False
        self._silent_frames = 0


def _merge(events: list[GateEvent]) -> list[GateEvent]:
    """Join runs of contiguous events of the same kind into one chunk each."""
    merged: list[GateEvent] = []
    run: list[AudioChunk] = []
    run_kind = ""

    def close_run() -> None:
        if run:
            samples = np.concatenate([c.samples for c in run])
            merged.append(GateEvent(run_kind, run[0].start, AudioChunk(samples, run[0].start)))
            run.clear()

    for ev in events:
        if ev.chunk is None:
            close_run()
            merged.append(ev)
            continue
        if run and (ev.kind != run_kind or abs(run[-1].end - ev.chunk.start) > 1e-6):
            close_run()
        run_kind = ev.kind
        run.append(ev.chunk)
    close_run()
    return merged
