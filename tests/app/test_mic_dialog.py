"""The "Test microphone" dialog, offscreen: a fake microphone hears silence, then a
synthetic reading; the dialog shows "Vær stille", then "Les teksten høyt" with a live
level, then the coloured verdict; the report can be saved; no audio file is written."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QHBoxLayout, QWidget  # noqa: E402

from app.gui import i18n  # noqa: E402
from app.gui.mic_dialog import MicTestDialog, add_mic_test_button  # noqa: E402
from asr.types import SAMPLE_RATE, Segment, Transcript  # noqa: E402
from hardware.passage import PASSAGE_NB, PASSAGE_NN  # noqa: E402
from tests.fakes import FakeSoundDevice  # noqa: E402

RNG = np.random.default_rng(11)
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".raw", ".pcm", ".npy"}


def sine_in_noise(seconds: float, snr_db: float = 45.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    sig = 0.1 * np.sin(2 * np.pi * 440 * t)
    return sig + RNG.normal(0, np.sqrt(0.005 / 10 ** (snr_db / 10)), len(t))


def full_band_in_noise(seconds: float, snr_db: float = 45.0) -> np.ndarray:
    """Noise band-limited to 100–7500 Hz at −20 dBFS (a stand-in for a reading), in
    white room noise."""
    n = int(seconds * SAMPLE_RATE)
    spec = np.fft.rfft(RNG.normal(0, 1, n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec[(f < 100) | (f > 7500)] = 0
    y = np.fft.irfft(spec, n)
    return 0.1 * y / np.std(y) + RNG.normal(0, 0.1 * 10 ** (-snr_db / 20), n)


class SeqSoundDevice(FakeSoundDevice):
    """The n-th input stream hears the n-th clip."""

    def __init__(self, clips: list[np.ndarray], **kw: Any) -> None:
        self.clips = [c.astype(np.float32)[:, None] for c in clips]
        super().__init__(self.clips[0], SAMPLE_RATE, **kw)

    def InputStream(self, **kwargs: Any) -> Any:  # noqa: N802
        self.audio = self.clips[min(len(self.streams), len(self.clips) - 1)]
        return super().InputStream(**kwargs)


class Heard:
    def __init__(self, text: str) -> None:
        self.text, self.transcript, self.n = text, Transcript(), 0

    def insert_audio_chunk(self, chunk: Any) -> None:
        self.n += len(chunk.samples)

    def process_iter(self) -> list[Any]:
        return []

    def finish(self) -> list[Segment]:
        seg = Segment(0, 0.0, self.n / SAMPLE_RATE, self.text, (), 0.0)
        self.transcript.add(seg)
        return [seg]


def audio_files(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES]


@pytest.fixture(autouse=True)
def bokmal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    i18n.set_language("nb")
    yield
    i18n.set_language("nb")


def make(qtbot: Any, sd: Any, **kw: Any) -> MicTestDialog:
    kw.setdefault("transcriber_factory", lambda clock=None: Heard(PASSAGE_NB))
    dlg = MicTestDialog(sd=sd, seconds_silence=0.6, seconds_speech=1.2, fingerprint={}, **kw)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def test_runs_silence_then_speech_and_shows_the_verdict(qtbot: Any, tmp_path: Path) -> None:
    silence = RNG.normal(0, 3e-4, SAMPLE_RATE * 2)
    sd = SeqSoundDevice([silence, full_band_in_noise(3)], pace=1.0)  # real time
    dlg = make(qtbot, sd)
    assert "Metformin" in dlg.passage_label.text()
    assert "Jabra Speak 510 USB (16000 Hz, 1 kanal(er))" == dlg.device_box.currentText()
    qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    assert dlg.running and not dlg.start_btn.isEnabled()
    qtbot.waitUntil(lambda: dlg.stage_label.text().startswith("Vær stille"), timeout=5000)
    qtbot.waitUntil(lambda: dlg.stage_label.text().startswith("Les teksten høyt"), timeout=5000)
    qtbot.waitUntil(lambda: dlg.level.value() > -30, timeout=5000)  # the live level meter
    with qtbot.waitSignal(dlg.test_finished, timeout=20000) as done:
        pass
    result = done.args[0]
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    assert len(sd.streams) == 2  # silence, then speech
    assert result.verdict == "ok", result.reasons
    assert result.wer == 0.0 and not result.reference_mismatch
    assert dlg.verdict_label.isVisible()
    assert dlg.verdict_label.text() == "GODT NOK" and "#1b5e20" in dlg.verdict_label.styleSheet()
    assert "Signal/støy" in dlg.numbers_label.text() and "0 %" in dlg.numbers_label.text()
    assert dlg.reasons_label.text().startswith("<ul><li>")
    assert dlg.start_btn.isEnabled() and dlg.start_btn.text() == "Test på nytt"
    assert dlg.save_btn.isEnabled()
    saved = dlg.save_report(tmp_path / "rapport")
    assert saved == tmp_path / "rapport.html" and saved.read_text(encoding="utf-8").startswith(
        "<!DOCTYPE"
    )
    assert "Rapporten er lagret" in dlg.status.text()
    assert audio_files(tmp_path, Path.cwd()) == []


def test_sine_in_noise_is_unfit_for_its_bandwidth(qtbot: Any) -> None:
    room = float(np.sqrt(0.005 / 10**4.5))  # the noise in sine_in_noise at 45 dB SNR
    sd = SeqSoundDevice([RNG.normal(0, room, SAMPLE_RATE), sine_in_noise(2)])
    dlg = make(qtbot, sd)
    with qtbot.waitSignal(dlg.test_finished, timeout=20000) as done:
        qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    a = done.args[0].analysis
    assert a.snr_db == pytest.approx(45, abs=1)
    assert dlg.verdict_label.text() == "UEGNET" and "#b00020" in dlg.verdict_label.styleSheet()
    assert "båndbredde" in dlg.reasons_label.text()
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)


def test_a_dead_microphone_is_unfit_in_red(qtbot: Any) -> None:
    sd = SeqSoundDevice([np.zeros(SAMPLE_RATE * 2), np.zeros(SAMPLE_RATE * 2)])
    dlg = make(qtbot, sd, transcriber_factory=None)
    assert "Talemodellen er ikke lastet" in dlg.status.text()
    with qtbot.waitSignal(dlg.test_finished, timeout=20000) as done:
        qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    assert done.args[0].verdict == "unfit"
    assert dlg.verdict_label.text() == "UEGNET" and "#b00020" in dlg.verdict_label.styleSheet()
    assert "digital stillhet" in dlg.reasons_label.text()
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)


def test_busy_device_shows_one_line_and_allows_a_retry(qtbot: Any) -> None:
    sd = SeqSoundDevice([np.zeros(SAMPLE_RATE)], busy=True)
    dlg = make(qtbot, sd)
    qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    assert "is busy: close the other program" in dlg.status.text()
    assert "\n" not in dlg.status.text()
    assert dlg.start_btn.isEnabled() and not dlg.save_btn.isEnabled()


def test_no_microphone(qtbot: Any) -> None:
    sd = SeqSoundDevice([np.zeros(10)], devices=[{"name": "HDMI", "max_input_channels": 0}])
    dlg = make(qtbot, sd)
    assert dlg.device_box.count() == 0 and not dlg.start_btn.isEnabled()
    assert "Ingen mikrofon funnet" in dlg.stage_label.text()


def test_closing_during_the_recording_stops_it(qtbot: Any) -> None:
    sd = SeqSoundDevice([RNG.normal(0, 1e-3, SAMPLE_RATE * 60)], pace=1.0)
    dlg = MicTestDialog(sd=sd, seconds_silence=30, seconds_speech=30, fingerprint={})
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.mouseClick(dlg.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.stage_label.text().startswith("Vær stille"), timeout=5000)
    dlg.close()  # stops the worker and waits for it
    assert not dlg.runner.busy or dlg.runner.wait_all(5000)
    assert dlg.result is None


def test_english_nynorsk_and_the_main_window_button(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    i18n.set_language("en")
    sd = SeqSoundDevice([np.zeros(SAMPLE_RATE)])
    dlg = make(qtbot, sd, passage_language="nn")
    assert dlg.windowTitle() == "Test microphone" and dlg.start_btn.text() == "Start"
    assert dlg.passage_label.text() == PASSAGE_NN

    opened: list[MicTestDialog] = []
    monkeypatch.setattr(MicTestDialog, "exec", lambda self: opened.append(self) or 0)
    window = QWidget()
    qtbot.addWidget(window)
    bar = QHBoxLayout(window)
    scribe = SimpleNamespace(
        sd=sd,
        asr=None,
        input_devices=lambda: [
            {
                "index": 1,
                "name": "Jabra Speak 510 USB",
                "channels": 1,
                "default_samplerate": 16000.0,
            }
        ],
    )
    window.scribe = scribe  # type: ignore[attr-defined]
    window.settings = SimpleNamespace(asr=SimpleNamespace(language="nn"))  # type: ignore[attr-defined]
    window.session = None  # type: ignore[attr-defined]
    button = add_mic_test_button(window, bar)
    assert button.text() == "Test microphone" and bar.indexOf(button) >= 0
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert len(opened) == 1 and opened[0].passage == PASSAGE_NN
    assert opened[0].device_box.count() == 1
    window.session = SimpleNamespace(state=SimpleNamespace(name="RECORDING"))  # type: ignore[attr-defined]
    from PySide6.QtWidgets import QMessageBox

    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert len(opened) == 1 and told and "Stop the recording" in told[0]
