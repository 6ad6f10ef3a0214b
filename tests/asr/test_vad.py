from __future__ import annotations

import numpy as np
import pytest

from asr.types import SAMPLE_RATE, AudioChunk
from asr.vad import GateEvent, VadGate, VadOptions


def feed(gate: VadGate, audio: np.ndarray, chunk_s: float = 0.1) -> list[GateEvent]:
    n = int(chunk_s * SAMPLE_RATE)
    events = []
    for i in range(0, len(audio), n):
        events.extend(gate.push(AudioChunk(audio[i : i + n], i / SAMPLE_RATE)))
    events.extend(gate.flush())
    return events


def spans(events: list[GateEvent], kind: str) -> list[tuple[float, float]]:
    return [(e.chunk.start, e.chunk.end) for e in events if e.kind == kind and e.chunk is not None]


@pytest.fixture(scope="module")
def speech(king_audio: np.ndarray) -> np.ndarray:
    # 1.0-3.0 s of the King's speech: continuous voiced speech
    return king_audio[SAMPLE_RATE * 1 : SAMPLE_RATE * 3]


def test_silence_gives_no_speech_and_no_end() -> None:
    events = feed(VadGate(), np.zeros(SAMPLE_RATE * 3, np.float32))
    assert all(e.kind == "silence" for e in events)
    total = sum(e.chunk.duration for e in events if e.chunk is not None)
    assert total == pytest.approx(3.0, abs=0.001)


def test_utterance_between_silences(speech: np.ndarray) -> None:
    audio = np.concatenate([np.zeros(SAMPLE_RATE), speech, np.zeros(int(SAMPLE_RATE * 1.5))]).astype(np.float32)
    events = feed(VadGate(VadOptions(end_silence_s=0.5)), audio)
    ends = [e.time for e in events if e.kind == "end"]
    assert len(ends) == 1
    speech_spans = spans(events, "speech")
    assert speech_spans[0][0] == pytest.approx(1.0, abs=0.2)  # onset
    assert ends[0] == pytest.approx(3.0 + 0.5, abs=0.35)  # speech end + pause
    # every sample is delivered exactly once, in order
    starts = [e.chunk.start for e in events if e.chunk is not None]
    assert starts == sorted(starts)
    total = sum(e.chunk.duration for e in events if e.chunk is not None)
    assert total == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.001)


def test_chunk_size_does_not_change_the_decision(speech: np.ndarray) -> None:
    audio = np.concatenate([np.zeros(SAMPLE_RATE), speech, np.zeros(SAMPLE_RATE)]).astype(np.float32)
    a = [(e.kind, round(e.time, 3)) for e in feed(VadGate(), audio, 0.1) if e.kind == "end"]
    b = [(e.kind, round(e.time, 3)) for e in feed(VadGate(), audio, 0.037) if e.kind == "end"]
    assert a == b and a


def test_a_click_is_not_an_utterance(speech: np.ndarray) -> None:
    click = speech[: int(0.12 * SAMPLE_RATE)]
    audio = np.concatenate([np.zeros(SAMPLE_RATE), click, np.zeros(SAMPLE_RATE)]).astype(np.float32)
    events = feed(VadGate(VadOptions(min_utterance_s=0.25)), audio)
    assert not [e for e in events if e.kind in ("speech", "end")]


def test_flush_closes_an_open_utterance(speech: np.ndarray) -> None:
    gate = VadGate()
    events = gate.push(AudioChunk(speech, 0.0))
    assert not [e for e in events if e.kind == "end"]
    assert [e for e in gate.flush() if e.kind == "end"]


def test_aggressiveness_is_validated() -> None:
    with pytest.raises(ValueError):
        VadOptions(aggressiveness=4)
