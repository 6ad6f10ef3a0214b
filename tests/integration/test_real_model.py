"""The real embedded Whisper model on the shared audio (no mocks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.decoder import DecodeOptions, WhisperDecoder
from asr.errors import DeviceLostError
from asr.evaluation import error_rates
from asr.pipeline import run_stream
from asr.sources import FileSource, SoundDeviceSource
from asr.types import SAMPLE_RATE
from tests.fakes import FakeSoundDevice, countries_heard, to_native

pytestmark = pytest.mark.integration


def test_king_speech_streams_with_reasonable_accuracy(engine, king_mp3: Path, king_txt: Path) -> None:
    result = run_stream(FileSource(king_mp3), engine.transcriber)
    rates = error_rates(king_txt.read_text(encoding="utf-8"), result.transcript.text)
    # Whisper base offline reaches 38-41 % here; the benchmark compares the two precisely
    assert rates.wer < 0.65, rates
    assert rates.cer < 0.35, rates
    segs = result.transcript.segments
    assert segs and all(s.start <= s.end for s in segs)
    assert all(a.end <= b.start + 0.5 for a, b in zip(segs, segs[1:], strict=False))
    words = [w for s in segs for w in s.words]
    assert all(0.0 <= w.probability <= 1.0 for w in words)
    assert words[-1].end <= 85.5


TWO_PATHS_LOSE_A_TURN = pytest.mark.xfail(
    strict=False,  # Whisper's int8 numerics differ by CPU: on another machine the turn may be heard
    reason="issue #20, open: with the cheap path on (as live), allmenn-luftveisinfeksjon turn 15 "
    "(117.9-121.0 s) is missing from the record; the cause is not yet found (not the pause or "
    "no-new-words commits, which are off)",
)
# The suite checks a part: the whole six consultations on both paths take about 35 minutes on
# a 2-core AMD EPYC (no AVX-512), more than CI has; `python -m benchmarks.turn_coverage` runs
# them all. The accurate path (what the record is made of) on two whole consultations (the one
# where a turn went missing and the longest); both paths on the first 130 s of the first.
COVERAGE_RUNS = [
    pytest.param(False, ("allmenn-luftveisinfeksjon", "psykiatri-depresjon"), None, id="accurate-path-only"),
    pytest.param(True, ("allmenn-luftveisinfeksjon",), 130.0, marks=TWO_PATHS_LOSE_A_TURN, id="two-paths-as-live"),
]


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(("tentative", "names", "seconds"), COVERAGE_RUNS)
def test_every_turn_of_every_consultation_is_covered(engine, consultations_dir: Path, tentative: bool,
                                                       names: tuple[str, ...], seconds: float | None) -> None:
    """No speech is dropped after silence gaps: each turn overlaps a committed segment,
    also with the cheap path on (its pause and no-new-words commits), as when live."""
    from benchmarks.turn_coverage import uncovered_turns

    uncovered: list[str] = []
    for name in names:
        r = uncovered_turns(engine, consultations_dir / f"{name}.flac", tentative=tentative, seconds=seconds)
        if tentative:
            assert r["tentative_decodes"] > 0
        assert r["error"] is None and r["turns"] > 10
        assert r["audio_s"] == pytest.approx(seconds or r["last_turn_end"], abs=2.0)  # ran to the end
        uncovered += r["uncovered"]
    assert not uncovered, uncovered


def test_microphone_path_with_injected_device_module(engine, king_audio: np.ndarray) -> None:
    """A file played through a fake 48 kHz stereo device is transcribed like the file."""
    audio = king_audio[: SAMPLE_RATE * 20]
    sd = FakeSoundDevice(to_native(audio, 48_000, 2), vanish_after_blocks=int(20 / 0.05) - 20)
    source = SoundDeviceSource("Jabra", sd=sd, stall_timeout_s=1.0)
    result = run_stream(source, engine.transcriber)
    # the device vanished one second before the end: reported, and the text is kept
    assert isinstance(result.error, DeviceLostError)
    assert result.clock == "wall"
    text = result.transcript.text.lower()
    assert len(text.split()) >= 15
    assert countries_heard(text) >= 2


def test_long_vocabulary_and_prompt_fit_whisper_context(engine, king_audio: np.ndarray) -> None:
    """A specialty's vocabulary plus 400 characters of recent text and a 25 s final buffer
    must fit Whisper's 448 decoder positions (this crashed `scribe note` once)."""
    from summarize.templates.template import load_template

    vocabulary = tuple(load_template("allmennmedisin").vocabulary) * 3
    decoder = WhisperDecoder(engine.model, DecodeOptions(vocabulary=vocabulary))
    words = decoder.decode(king_audio[: 25 * 16000], prompt="ord " * 100, final=True)
    assert words and all(0 <= w.start <= w.end <= 25.0 for w in words)


def test_vocabulary_prompt_is_faster_whisper_hotwords(engine) -> None:
    """The template's vocabulary goes where faster-whisper's ``hotwords`` go (after
    <|startofprev|>, before the recent text): the same tokens, so switching to hotwords
    would change nothing (issue #20 asked to measure it)."""
    vocab = ("metformin", "amlodipin", "Lachman")
    decoder = WhisperDecoder(engine.model, DecodeOptions(vocabulary=vocab))
    for recent in ("", "pasienten bruker"):
        ours = decoder._prompt_tokens(recent, 100, without_timestamps=False)
        previous = decoder._tokenizer.encode(" " + recent) if recent else []
        theirs = engine.model.get_prompt(decoder._tokenizer, previous, without_timestamps=False,
                                         hotwords=", ".join(vocab) + ".")
        assert ours == list(theirs)


def test_tentative_decode_is_cheap_text_after_the_forced_context(engine, king_audio: np.ndarray) -> None:
    decoder = WhisperDecoder(engine.model, DecodeOptions())
    audio = king_audio[8 * SAMPLE_RATE : 16 * SAMPLE_RATE]
    words = decoder.decode(audio[: 3 * SAMPLE_RATE], prompt="", final=True)
    context = "".join(w.word for w in words).strip()
    text = decoder.decode_tentative(audio, prompt="", prefix=context)
    assert text and countries_heard(context + " " + text) >= 2
    assert not text.lower().startswith(context.lower()[:12])  # the forced context is not returned
    assert decoder.stats.tentative_calls == 1 and decoder.stats.tentative_seconds > 0
