"""Decoder policy without a model: continuation after an early stop, prompt copies,
repetition loops."""

from __future__ import annotations

import numpy as np

from asr.decoder import WhisperDecoder, copies_prompt, cut_repetitions, speech_after
from asr.types import Word


class WindowScript:
    """Stands in for one Whisper window: returns the words of a script that lie in the
    window, but stops after ``per_window`` words (Whisper ending its output early)."""

    def __init__(self, words: list[Word], per_window: int) -> None:
        self.words = words
        self.per_window = per_window
        self.windows: list[tuple[float, float, str]] = []

    def __call__(self, audio: np.ndarray, prompt: str, final: bool) -> list[Word]:
        t0 = float(audio[0]) * 1000.0 if len(audio) else 0.0
        t1 = t0 + len(audio) / 16000
        self.windows.append((t0, t1, prompt))
        inside = [w.shifted(-t0) for w in self.words if w.start >= t0 - 1e-3 and w.end <= t1 + 1e-3]
        return inside[: self.per_window]


def make_decoder(script: WindowScript) -> WhisperDecoder:
    d = WhisperDecoder.__new__(WhisperDecoder)  # no model: only the window loop is tested
    d.max_passes, d.continue_after_s = 3, 2.0
    from asr.decoder import DecodeStats

    d.stats = DecodeStats()
    d._decode_window = script  # type: ignore[method-assign]
    return d


def ramp(seconds: float) -> np.ndarray:
    return (np.arange(int(seconds * 16000)) / 16000 / 1000.0).astype(np.float32)


def words_every(seconds: float, n: int) -> list[Word]:
    return [Word(f" w{i}", i * seconds + 0.1, i * seconds + 0.5, 0.9) for i in range(n)]


def test_final_decode_continues_after_an_early_stop() -> None:
    words = words_every(1.0, 12)  # 12 s of speech
    script = WindowScript(words, per_window=5)
    out = make_decoder(script).decode(ramp(12.0), prompt="tidligere tekst", final=True)
    assert [w.word for w in out] == [w.word for w in words[:12]]
    assert len(script.windows) == 3
    # the continuation is prompted with what was found so far
    assert script.windows[1][2].endswith("w3 w4")
    assert abs(script.windows[1][0] - 4.5) < 1e-3  # it starts at the last word's end


def test_no_continuation_over_silence_or_in_interim_decodes() -> None:
    words = words_every(1.0, 12)
    script = WindowScript(words, per_window=5)
    d = make_decoder(script)
    # the gate heard speech only up to 5 s: nothing to continue into
    d.decode(ramp(12.0), prompt="", final=True, speech=[(0.0, 5.0)])
    assert len(script.windows) == 1
    d.decode(ramp(12.0), prompt="", final=False)
    assert len(script.windows) == 2


def test_speech_after() -> None:
    assert speech_after([(0.0, 2.0), (3.0, 5.0)], 1.0) == 3.0
    assert speech_after([(0.0, 2.0)], 2.5) == 0.0


def test_a_decode_that_repeats_its_prompt_is_recognised() -> None:
    prompt = "Nordmenn er nordlendinger, trøndere, sørlendinger og folk fra alle regionene."
    assert copies_prompt("Nordmenn er nordlendinger, trøndere.", prompt)
    assert not copies_prompt("Det vi kaller hjem er der hjertet er.", prompt)
    assert not copies_prompt("ja", prompt)  # too short to judge


def test_repetition_loops_are_cut_but_real_repeats_stay() -> None:
    def ws(text: str) -> list[Word]:
        return [Word(" " + t, i, i + 0.5, 0.9) for i, t in enumerate(text.split())]

    looped = ws("som er glad i gutter som er glad i gutter som er glad")
    assert " ".join(w.word.strip() for w in cut_repetitions(looped)) == "som er glad i gutter"
    assert len(cut_repetitions(ws("nei nei det gjør ikke vondt"))) == 6


def test_an_empty_decode_with_a_prompt_is_retried_without_it() -> None:
    words = words_every(1.0, 4)

    class PromptShy(WindowScript):
        def __call__(self, audio, prompt, final):  # type: ignore[no-untyped-def]
            out = super().__call__(audio, prompt, final)
            return [] if prompt else out

    script = PromptShy(words, per_window=10)
    d = make_decoder(script)
    assert len(d.decode(ramp(4.0), prompt="forrige setning", final=False, speech=[(0.0, 4.0)])) == 4
    assert [w[2] for w in script.windows] == ["forrige setning", ""]
    # no retry when the gate heard no speech there
    assert d.decode(ramp(4.0), prompt="forrige setning", final=False, speech=[]) == []
