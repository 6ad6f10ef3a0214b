"""``scribe bench mic``: headless on files, live with a fake sound device, and bad input as
one-line errors with the right exit status (never a traceback)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from app import cli_bench_mic
from asr.types import SAMPLE_RATE, Segment, Transcript
from hardware.passage import PASSAGE_NB
from tests.fakes import FakeSoundDevice

RNG = np.random.default_rng(7)
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".raw", ".pcm"}


def broadband(seconds: float, sr: int, rms: float = 0.1) -> np.ndarray:
    n = int(seconds * sr)
    spec = np.fft.rfft(RNG.normal(0.0, 1.0, n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < 100) | (f > 7500)] = 0
    y = np.fft.irfft(spec, n)
    return rms * y / np.std(y)


def speech_like(seconds: float, sr: int, snr_db: float = 45.0) -> np.ndarray:
    """Broadband bursts with pauses, plus room noise: a usable 'reading'."""
    x = broadband(seconds, sr)
    for k in range(int(seconds)):
        if k % 3 == 2:
            x[k * sr : (k + 1) * sr] = 0.0
    return x + RNG.normal(0, 0.1 * 10 ** (-snr_db / 20), len(x))


class ScriptedTranscriber:
    def __init__(self, text: str) -> None:
        self.text, self.transcript, self.samples = text, Transcript(), 0

    def insert_audio_chunk(self, chunk: Any) -> None:
        self.samples += len(chunk.samples)

    def process_iter(self) -> list[Any]:
        return []

    def finish(self) -> list[Segment]:
        seg = Segment(0, 0.0, self.samples / SAMPLE_RATE, self.text, (), 0.0)
        self.transcript.add(seg)
        return [seg]


def hears(text: str) -> Any:
    return lambda clock=None: ScriptedTranscriber(text)


class PaError(Exception):
    """Like sounddevice.PortAudioError."""


class SeqSoundDevice(FakeSoundDevice):
    """A fake sounddevice: the n-th stream 'hears' the n-th clip; ``check_input_settings``
    rejects what the device cannot do, like PortAudio."""

    PortAudioError = PaError

    def __init__(
        self,
        clips: list[np.ndarray],
        samplerate: int = SAMPLE_RATE,
        *,
        check: bool = True,
        **kw: Any,
    ) -> None:
        clips = [c if c.ndim == 2 else c[:, None] for c in clips]
        super().__init__(clips[0].astype(np.float32), samplerate, **kw)
        self.clips = [c.astype(np.float32) for c in clips]
        if not check:
            self.check_input_settings = None  # type: ignore[assignment]

    def check_input_settings(
        self,
        device: Any = None,
        samplerate: Any = None,  # type: ignore[no-redef]
        channels: Any = None,
        dtype: Any = None,
    ) -> None:
        if self.busy:
            raise PaError("Error querying device 1: Device unavailable [PaErrorCode -9985]")
        if samplerate not in self.supported_rates:
            raise PaError("Invalid sample rate [PaErrorCode -9997]")
        if channels is not None and channels > self.audio.shape[1]:
            raise PaError("Invalid number of channels [PaErrorCode -9998]")

    def InputStream(self, **kwargs: Any) -> Any:  # noqa: N802
        self.audio = self.clips[min(len(self.streams), len(self.clips) - 1)]
        return super().InputStream(**kwargs)


def run(argv: list[str], capsys: pytest.CaptureFixture[str], **kw: Any) -> tuple[int, str, str]:
    code = cli_bench_mic.main(argv, fingerprint={"host_id": "test"}, **kw)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_line_error(err: str) -> str:
    """The error is one line, the last one (prompts to the reader may come before it)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("scribe:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert errors[0].startswith("scribe: error: "), err
    return errors[0]


def audio_files(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        for p in folder.rglob("*"):
            if p.suffix.lower() in AUDIO_SUFFIXES:
                found.append(p)
    return found


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SCRIBE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SCRIBE_CONFIG", str(tmp_path / "no-config.toml"))
    return tmp_path


# ------------------------------------------------------------------ headless on a file


def test_file_writes_json_and_html_reports(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = in_tmp / "rec.wav"
    x = speech_like(9, 44100)
    soundfile.write(rec, np.stack([x, x], axis=1), 44100, subtype="PCM_16")
    code, out, err = run(
        ["--file", str(rec), "--json", str(in_tmp / "r.json"), "--html", str(in_tmp / "r.html")],
        capsys,
    )
    assert code == 0, out + err
    assert "verdict: ok" in out and "44100 Hz, 2 channels, using mix" in out
    data = json.loads((in_tmp / "r.json").read_text(encoding="utf-8"))
    assert data["kind"] == "mic" and data["verdict"] == "ok"
    measures = next(s for s in data["sections"] if s["data"] and "snr_db" in s["data"])
    assert measures["data"]["snr_db"] == pytest.approx(45, abs=1.5)
    assert measures["data"]["bandwidth_hz"] >= 7000
    html = (in_tmp / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "WER" not in out  # no --reference: no transcription


def test_file_with_builtin_reference_and_silence_file(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec, sil = in_tmp / "rec.flac", in_tmp / "silence.wav"
    soundfile.write(rec, broadband(6, 16000), 16000)
    soundfile.write(sil, RNG.normal(0, 1e-3, 48000 * 2), 48000)  # another rate: aligned
    misheard = PASSAGE_NB.replace("Ramipril", "Rami pril")
    code, out, _ = run(
        ["--file", str(rec), "--silence", str(sil), "--reference", "builtin"],
        capsys,
        transcriber_factory=hears(misheard),
    )
    assert code == 0
    assert "silence recording" in out
    assert "WER" in out and "verdict: ok" in out


def test_reference_that_does_not_match_is_not_a_bad_microphone(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], king_mp3: Path, king_txt: Path
) -> None:
    code, out, _ = run(
        ["--file", str(king_mp3), "--reference", "builtin"],
        capsys,
        transcriber_factory=hears(king_txt.read_text(encoding="utf-8")),
    )
    assert code == 0, out
    assert "does not match the reference text" in out
    assert "verdict: unfit" not in out


def test_unfit_recording_exits_1(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = in_tmp / "quiet.wav"
    soundfile.write(rec, np.zeros(16000 * 3), 16000)
    code, out, _ = run(["--file", str(rec)], capsys)
    assert code == 1 and "verdict: unfit" in out and "digital silence" in out


@pytest.mark.parametrize("kind", ["corrupt", "missing", "empty", "folder", "text"])
def test_bad_files_are_one_line_errors(
    kind: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = in_tmp / "rec.wav"
    if kind == "corrupt":
        rec.write_bytes(RNG.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    elif kind == "empty":
        rec.write_bytes(b"")
    elif kind == "folder":
        rec.mkdir()
    elif kind == "text":
        rec = in_tmp / "notes.txt"
        rec.write_text("not audio", encoding="utf-8")
    code, _, err = run(["--file", str(rec)], capsys)
    assert code == 2
    line = one_line_error(err)
    assert str(rec.name) in line


def test_bad_options_are_one_line_errors(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = in_tmp / "rec.wav"
    soundfile.write(rec, broadband(2, 16000), 16000)
    for argv, needle in [
        (["--file", str(rec), "--reference", str(in_tmp / "nope.txt")], "reference text not found"),
        (["--silence", str(rec)], "--silence needs --file"),
        (["--file", str(rec), "--json", str(in_tmp / "no" / "dir" / "r.json")], "does not exist"),
        (["--file", str(rec), "--html", str(in_tmp)], "is a folder"),
    ]:
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert needle in one_line_error(err)
    (in_tmp / "empty.txt").write_text("  \n", encoding="utf-8")
    code, _, err = run(["--file", str(rec), "--reference", str(in_tmp / "empty.txt")], capsys)
    assert code == 2 and "is empty" in one_line_error(err)


# ------------------------------------------------------------------ live with a fake device


def test_live_test_records_silence_then_speech(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silence = RNG.normal(0, 1e-3, SAMPLE_RATE * 2)
    reading = speech_like(4, SAMPLE_RATE, snr_db=60)
    sd = SeqSoundDevice([silence, reading])
    code, out, err = run(
        ["--seconds-silence", "1", "--seconds-speech", "3", "--json", str(in_tmp / "m.json")],
        capsys,
        sd=sd,
        transcriber_factory=hears(PASSAGE_NB),
    )
    assert code == 0, out + err
    assert len(sd.streams) == 2
    assert sd.streams[0].kwargs["samplerate"] == 16000 and sd.streams[0].kwargs["device"] == 1
    assert "Metformin" in err  # the passage is shown to the reader
    assert "input device 'Jabra Speak 510 USB'" in out and "verdict: ok" in out
    assert "WER                  0.0 %" in out
    data = json.loads((in_tmp / "m.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "ok"
    assert audio_files(in_tmp) == []  # the recordings never touched the disk


def test_unsupported_rate_records_at_the_device_rate(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sd = SeqSoundDevice([RNG.normal(0, 1e-3, 48000 * 2), speech_like(4, 48000)], 48000)
    sd.supported_rates = {44100, 48000}
    code, out, err = run(
        ["--seconds-silence", "1", "--seconds-speech", "3", "--no-asr"], capsys, sd=sd
    )
    assert code == 0, out + err
    assert "does not support 16000 Hz; it supports 44100/48000" in err
    assert "recording at 48000 Hz" in err
    assert sd.streams[0].kwargs["samplerate"] == 48000
    assert "(48000 Hz" in out


def test_no_input_device(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sd = SeqSoundDevice(
        [np.zeros(10)],
        devices=[{"name": "HDMI", "max_input_channels": 0, "default_samplerate": 48000.0}],
    )
    for argv in (["--no-asr"], ["--list"]):
        code, _, err = run(argv, capsys, sd=sd)
        assert code == 3
        assert "no audio input device" in one_line_error(err)


@pytest.mark.parametrize("check", [True, False])
def test_busy_device(check: bool, in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sd = SeqSoundDevice([np.zeros(16000)], busy=True, check=check)
    code, _, err = run(
        ["--no-asr", "--seconds-silence", "1", "--seconds-speech", "1"], capsys, sd=sd
    )
    assert code == 3
    line = one_line_error(err)
    assert "'Jabra Speak 510 USB' is busy: close the other program using it" in line


def test_unknown_device_and_list(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sd = SeqSoundDevice([np.zeros((16000, 2))], 48000)
    code, _, err = run(["--device", "Shure", "--no-asr"], capsys, sd=sd)
    assert code == 3 and "no input device named 'Shure'" in one_line_error(err)
    code, out, _ = run(["--list"], capsys, sd=sd)
    assert code == 0
    assert "Jabra Speak 510 USB  (2 ch, 48000 Hz default; 16 kHz: no)" in out
    assert "Built-in Output" not in out


def test_device_that_stops_mid_recording(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sd = SeqSoundDevice([np.zeros(16000) + 1e-3], vanish_after_blocks=5)
    code, _, err = run(
        ["--no-asr", "--seconds-silence", "1", "--seconds-speech", "1"], capsys, sd=sd
    )
    assert code == 3 and "stopped" in one_line_error(err)


# ------------------------------------------------------------------ through `scribe`


def test_registered_under_scribe_bench(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app import cli

    try:
        cli._build_parser().parse_args(["bench", "mic", "--list"])
    except SystemExit:
        capsys.readouterr()
        pytest.skip("'bench' is not registered in app.cli yet")
    rec = in_tmp / "rec.wav"
    soundfile.write(rec, np.zeros(16000), 16000)
    code = cli.main(["bench", "mic", "--file", str(in_tmp / "missing.wav")])
    _, err = capsys.readouterr()
    assert code == 2 and "audio file not found" in one_line_error(err)
    code = cli.main(["bench", "mic", "--file", str(rec)])
    out, _ = capsys.readouterr()
    assert code == 1 and "verdict: unfit" in out
