from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.errors import AudioInputError, TruncatedAudioError
from asr.sources import FileSource, Resampler, decode_file
from asr.types import SAMPLE_RATE


@pytest.fixture(scope="module")
def clip(king_audio: np.ndarray) -> np.ndarray:
    return king_audio[: SAMPLE_RATE * 5]


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_formats_at_native_rate_and_stereo_decode_to_16k_mono(tmp_path: Path, clip: np.ndarray, fmt: str, subtype: str) -> None:
    native = np.interp(np.arange(5 * 44100) * SAMPLE_RATE / 44100, np.arange(len(clip)), clip)
    stereo = np.stack([native, native * 0.5], axis=1)
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, stereo, 44100, format=fmt, subtype=subtype)
    audio, problem = decode_file(path)
    assert problem is None
    assert audio.dtype == np.float32
    assert len(audio) / SAMPLE_RATE == pytest.approx(5.0, abs=0.05)
    # same speech as the source (up to the stereo mix level 0.75)
    n = min(len(audio), len(clip))
    corr = np.corrcoef(audio[:n], clip[:n])[0, 1]
    assert corr > 0.9


def test_mp3_decodes_whole(king_audio: np.ndarray) -> None:
    assert len(king_audio) / SAMPLE_RATE == pytest.approx(85.45, abs=0.1)


def test_missing_file() -> None:
    with pytest.raises(AudioInputError, match="not found"):
        decode_file("/nonexistent/lyd.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="directory"):
        decode_file(tmp_path)


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 20)
    with pytest.raises(AudioInputError):
        decode_file(bad)


def test_unsupported_format(tmp_path: Path) -> None:
    doc = tmp_path / "notat.docx"
    doc.write_bytes(b"PK\x03\x04 this is not audio" * 10)
    with pytest.raises(AudioInputError, match="unsupported audio format"):
        decode_file(doc)


def test_truncated_wav_keeps_what_decodes(tmp_path: Path, clip: np.ndarray) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, clip, SAMPLE_RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    audio, problem = decode_file(path)
    assert isinstance(problem, TruncatedAudioError)
    assert "truncated" in str(problem)
    assert len(audio) / SAMPLE_RATE == pytest.approx(2.5, abs=0.1)


def test_zero_length_file_is_empty_not_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    audio, problem = decode_file(empty)
    assert len(audio) == 0 and problem is None


def test_realtime_replay_waits_on_the_clock(clip: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "c.wav"
    sf.write(path, clip[:SAMPLE_RATE], SAMPLE_RATE)
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    src = FileSource(path, realtime=True, sleep=sleep, clock=lambda: now[0])
    chunks = list(src.chunks())
    assert src.live
    assert sum(c.duration for c in chunks) == pytest.approx(1.0, abs=1e-3)
    assert now[0] == pytest.approx(1.0, abs=1e-3)  # one second of audio took one second
    fast = FileSource(path, realtime=False, sleep=sleep, clock=lambda: now[0])
    n_waits = len(waits)
    list(fast.chunks())
    assert len(waits) == n_waits


def test_resampler_streams_without_changing_pitch() -> None:
    rate = 48_000
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([tone, tone], axis=1)
    r = Resampler(rate, 2)
    out = np.concatenate([r.process(stereo[i : i + 1024]) for i in range(0, len(stereo), 1024)] + [r.flush()])
    assert len(out) == pytest.approx(2 * SAMPLE_RATE, abs=200)
    spectrum = np.abs(np.fft.rfft(out[2000:18000]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / 16000
    assert peak_hz == pytest.approx(440, abs=2)


def test_a_phase_inverted_stereo_file_is_not_cancelled_to_silence(tmp_path, king_audio) -> None:
    """#17: a stereo file whose second channel is the first inverted averaged to silence (no
    transcript at all). The cancelling is detected and the first channel used."""
    import soundfile as sf

    from asr.sources import decode_file

    x = king_audio[: 16000 * 10]
    path = tmp_path / "inverted.wav"
    sf.write(path, np.stack([x, -x], axis=1), 16000)
    audio, problem = decode_file(path)
    assert problem is None and len(audio) == len(x)
    assert float(np.mean(audio ** 2)) > 0.5 * float(np.mean(x ** 2))  # not silence
    normal = tmp_path / "normal.wav"  # an ordinary stereo file is still averaged
    sf.write(normal, np.stack([x, 0.5 * x], axis=1), 16000)
    mixed, _ = decode_file(normal)
    assert np.allclose(mixed, 0.75 * x, atol=2e-3)
