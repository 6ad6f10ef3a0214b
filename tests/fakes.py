"""Test doubles. They refuse to run outside pytest (dangerzone's habit)."""

from __future__ import annotations

import os
import re
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from asr.types import SAMPLE_RATE, Word
from asr.vad import VadGate, VadOptions


def _only_in_tests() -> None:
    if "PYTEST_CURRENT_TEST" not in os.environ:
        raise RuntimeError("test doubles must not run outside the test suite")


def ramp_audio(seconds: float, start: float = 0.0) -> np.ndarray:
    """Audio whose every sample encodes its own session time (t / 1000)."""
    n = int(round(seconds * SAMPLE_RATE))
    return ((start + np.arange(n) / SAMPLE_RATE) / 1000.0).astype(np.float32)


class ScheduledGate(VadGate):
    """A VAD gate whose speech decision comes from a schedule instead of webrtcvad;
    reads the time from ramp audio."""

    def __init__(self, speech: list[tuple[float, float]], options: VadOptions | None = None) -> None:
        _only_in_tests()
        super().__init__(options)
        self.speech = speech

    def is_speech(self, frame: np.ndarray) -> bool:
        t = float(frame[len(frame) // 2]) * 1000.0
        return any(a <= t < b for a, b in self.speech)


class ScriptedDecoder:
    """Returns the scripted words that lie inside the buffer (recovered from ramp audio).

    The last word that is still being spoken (its end beyond the buffer) is returned in
    a different spelling on every call, like Whisper's unstable last word.
    """

    def __init__(self, words: list[Word]) -> None:
        _only_in_tests()
        self.words = words
        self.calls: list[dict[str, Any]] = []

    def decode(self, audio: np.ndarray, *, prompt: str, final: bool, speech: Any = None) -> list[Word]:
        t0 = float(audio[0]) * 1000.0
        t1 = t0 + len(audio) / SAMPLE_RATE
        self.calls.append({"start": t0, "end": t1, "prompt": prompt, "final": final})
        out = []
        for w in self.words:
            if w.start >= t0 - 1e-3 and w.end <= t1 + 1e-3:
                out.append(w.shifted(-t0))
            elif w.start >= t0 and w.start < t1 and not final:
                out.append(Word(w.word + "~" * len(self.calls), w.start - t0, t1 - t0, 0.3))
                break
        return out

    def decode_tentative(self, audio: np.ndarray, *, prompt: str, prefix: str = "") -> str:
        """The scripted words heard so far in the buffer (a word still being spoken too),
        after the ``prefix`` words (which Whisper is forced to start with)."""
        t0 = float(audio[0]) * 1000.0
        t1 = t0 + len(audio) / SAMPLE_RATE
        self.calls.append({"start": t0, "end": t1, "prompt": prompt, "final": False, "tentative": True,
                           "prefix": prefix})
        heard = [w.word for w in self.words if w.start >= t0 - 1e-3 and w.start < t1]
        return "".join(heard[len(prefix.split()):]).strip()


class FakeInputStream:
    def __init__(self, sd: FakeSoundDevice, **kwargs: Any) -> None:
        self.sd = sd
        self.kwargs = kwargs
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        if self.sd.busy:
            raise RuntimeError("Device unavailable [PaErrorCode -9985]")
        if self.kwargs["samplerate"] not in self.sd.supported_rates:
            raise RuntimeError("Invalid sample rate [PaErrorCode -9997]")
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def _play(self) -> None:
        block = self.kwargs["blocksize"]
        audio = self.sd.audio
        callback = self.kwargs["callback"]
        n_blocks = 0
        rate = self.kwargs["samplerate"]
        for i in range(0, len(audio), block):
            if self._stop.is_set():
                break
            if self.sd.pace:  # wall seconds per second of audio (0: as fast as possible)
                self._stop.wait(block / rate * self.sd.pace)
            if self.sd.vanish_after_blocks is not None and n_blocks >= self.sd.vanish_after_blocks:
                if self.sd.vanish_silently:
                    return  # no callbacks any more, no finished signal: a hung device
                break
            data = audio[i : i + block]
            if len(data) < block:
                data = np.pad(data, ((0, block - len(data)), (0, 0)))
            callback(data, block, None, None)
            n_blocks += 1
        finished = self.kwargs.get("finished_callback")
        if finished:
            finished()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()


class FakeSoundDevice:
    """Stands in for the ``sounddevice`` module: one input device that 'hears' a file."""

    def __init__(
        self,
        audio: np.ndarray,
        samplerate: int = 48_000,
        devices: list[dict[str, Any]] | None = None,
        *,
        vanish_after_blocks: int | None = None,
        vanish_silently: bool = False,
        busy: bool = False,
        pace: float = 0.0,
    ) -> None:
        _only_in_tests()
        self.pace = pace
        self.audio = audio if audio.ndim == 2 else audio[:, None]
        self.supported_rates = {samplerate}
        self.vanish_after_blocks = vanish_after_blocks
        self.vanish_silently = vanish_silently
        self.busy = busy
        self.devices = devices if devices is not None else [
            {"name": "Built-in Output", "max_input_channels": 0, "default_samplerate": 48000.0},
            {"name": "Jabra Speak 510 USB", "max_input_channels": self.audio.shape[1],
             "default_samplerate": float(samplerate)},
        ]
        self.default = SimpleNamespace(device=(1, 0))
        self.streams: list[FakeInputStream] = []

    def query_devices(self) -> list[dict[str, Any]]:
        return self.devices

    def InputStream(self, **kwargs: Any) -> FakeInputStream:  # noqa: N802 (mirrors sounddevice)
        stream = FakeInputStream(self, **kwargs)
        self.streams.append(stream)
        return stream


def to_native(audio16k: np.ndarray, rate: int = 48_000, channels: int = 2) -> np.ndarray:
    """Upsample 16 kHz mono to a device's native rate and channel count (linear interp)."""
    n = int(len(audio16k) * rate / SAMPLE_RATE)
    x = np.interp(np.arange(n) * SAMPLE_RATE / rate, np.arange(len(audio16k)), audio16k)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


class FakeLlm:
    """An LlmEngine that answers from a script (a function of the messages) and records calls."""

    name = "fake"
    model_id = "fake-llm"

    constrained_json = True  # structured calls come with their JSON schema

    def __init__(self, reply: Any, *, context_length: int = 8192, fail: Exception | None = None,
                 structured: Any = None) -> None:
        _only_in_tests()
        self.reply = reply
        self.context_length = context_length
        self.fail = fail
        self.structured = structured  # answers structured calls (default: nothing found, "{}")
        self.calls: list[list[Any]] = []
        self.structured_calls: list[list[Any]] = []

    def generate(self, messages: list[Any], *, max_tokens: int = 512, temperature: float = 0.0,
                 stop: list[str] | None = None, on_token: Any = None, json_schema: Any = None) -> Any:
        from summarize.llm.base import Generation

        if json_schema is not None and self.fail is None:
            self.structured_calls.append(list(messages))
            text = self.structured(messages) if callable(self.structured) else (self.structured or "{}")
            return Generation(text, tokens=max(1, len(text.split())), seconds=0.01, prompt_tokens=0)
        self.calls.append(list(messages))
        if self.fail is not None:
            raise self.fail
        text = self.reply(messages) if callable(self.reply) else str(self.reply)
        if on_token:
            on_token(text)
        return Generation(text, tokens=max(1, len(text.split())), seconds=0.01, prompt_tokens=0)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text.split()))

    def close(self) -> None:
        pass


def note_template(language: str = "nb") -> Any:
    """A minimal template stand-in (id, version, title, language, sections)."""
    sec = [("anamnese", "Anamnese"), ("funn", "Funn"), ("vurdering", "Vurdering"), ("plan", "Plan"),
           ("legemidler", "Legemidler")]
    return SimpleNamespace(
        id="test", version="1.0.0", title="Testnotat", language=language, vocabulary=(),
        sections=[SimpleNamespace(id=i, title=t, instruction=f"Det som hører til {t.lower()}.") for i, t in sec],
        render=lambda draft, meta=None: draft.text,
    )


class ScriptedTranscriber:
    """Stands in for :class:`asr.streaming.StreamingTranscriber`: commits scripted
    ``(text, at_s)`` segments once that much audio arrived (each word with probability
    ``probability``, except words listed in ``unsure``), shows the next one as tentative,
    and counts the audio it holds so a test can check it was wiped."""

    def __init__(self, script: list[tuple[str, float]], *, probability: float = 0.95,
                 unsure: tuple[str, ...] = ()) -> None:
        _only_in_tests()
        from asr.types import Transcript

        self.script = list(script)
        self.probability = probability
        self.unsure = unsure
        self.transcript = Transcript()
        self.heard = 0.0
        self.samples: list[np.ndarray] = []
        self._next = 0

    def insert_audio_chunk(self, chunk: Any) -> None:
        self.samples.append(chunk.samples)
        self.heard = max(self.heard, chunk.end)

    def _segment(self, i: int) -> Any:
        from asr.types import Segment

        text, at = self.script[i]
        start = self.script[i - 1][1] if i else 0.0
        words = tuple(Word(" " + w, start, at, 0.2 if w.strip(".,") in self.unsure else self.probability)
                      for w in text.split())
        seg = Segment(i, start, at, text, words, self.heard)
        self.transcript.add(seg)
        return seg

    def process_iter(self) -> list[Any]:
        from asr.types import Tentative

        out: list[Any] = []
        while self._next < len(self.script) and self.script[self._next][1] <= self.heard:
            out.append(self._segment(self._next))
            self._next += 1
        if self._next < len(self.script):
            out.append(Tentative(self.script[self._next][0].split()[0]))
        return out

    def finish(self) -> list[Any]:
        out = []
        while self._next < len(self.script):  # what was said before Stop is never lost
            if self.script[self._next][1] > self.heard + 5:
                break
            out.append(self._segment(self._next))
            self._next += 1
        return out

    def wipe(self) -> None:
        self.samples.clear()
        self.transcript.clear()


class ScriptedAsr:
    """An ASR engine whose transcribers are :class:`ScriptedTranscriber`\\ s of ``script``
    (``options`` as theirs); ``made`` lists them, so a test can check their audio was wiped."""

    model_id = "scripted"
    model_dir = None

    def __init__(self, script: list[tuple[str, float]], **options: Any) -> None:
        self.script = list(script)
        self.options = options
        self.made: list[ScriptedTranscriber] = []

    def transcriber(self, clock: Any = None, vocabulary: tuple[str, ...] = ()) -> ScriptedTranscriber:
        t = ScriptedTranscriber(self.script, **self.options)
        self.made.append(t)
        return t


KING_COUNTRIES = ("afghanistan", "pakistan", "polen", "sverige", "somalia", "syria")
"""The countries named 8-17 s into ``king.mp3`` ("Afghanistan, Pakistan og Polen, Sverige,
Somalia og Syria"): Whisper base spells a name differently from one schedule of decodes, and
one CPU's arithmetic, to the next ("Afgarnistan", "Poren", "Sydia", "PAKKISTAN", "SVEDIE",
"Somal"), so tests count names heard closely enough, not one spelling."""


def countries_heard(text: str) -> int:
    """How many of :data:`KING_COUNTRIES` a transcript of ``king.mp3`` names: a word counts
    when it starts with the name's first five letters or is at least 75 % similar to it."""
    from difflib import SequenceMatcher

    words = [w for w in re.findall(r"\w+", text.lower()) if len(w) >= 4]

    def heard(name: str, w: str) -> bool:
        return w.startswith(name[:5]) or SequenceMatcher(None, name, w).ratio() >= 0.75

    return sum(any(heard(name, w) for w in words) for name in KING_COUNTRIES)
