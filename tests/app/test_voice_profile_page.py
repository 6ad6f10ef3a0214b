"""The settings dialog's Stemmeprofil tab (issue #19), driven offscreen: roles from the voices
on or off and the profile's path are saved; a profile is made from a recording (a file, or
the microphone) on a worker thread, stored with mode 0600 and described; a recording that is
not good enough shows its one line and stores nothing; a damaged profile says so; Delete
removes it. The tests marked integration use the real voice encoder on a real recording of
a clinician reading the passage (``tests/data/voice/lege-passage.flac``)."""

from __future__ import annotations

import os
import stat
import tomllib
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from app.gui import i18n  # noqa: E402
from app.gui.settings_dialog import SettingsDialog  # noqa: E402
from app.gui.settings_text import ERROR_STYLE, OK_STYLE  # noqa: E402
from app.settings import load_settings  # noqa: E402
from tests.fakes import FakeSoundDevice  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LEGE = ROOT / "tests" / "data" / "voice" / "lege-passage.flac"
CONSENT = ("Stemmeprofilen er biometriske opplysninger om deg. Den brukes bare på denne maskinen til å skille "
           "stemmen din fra pasientens og pårørendes, inneholder ikke lyd, og kan slettes når som helst.")


class NoEncoder:
    """A voice encoder that must not be needed (the recording fails its checks first)."""

    def embed(self, samples: Any) -> Any:
        raise AssertionError("a recording that fails its checks must not reach the encoder")


@pytest.fixture()
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("SCRIBE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config" / "config.toml"
    monkeypatch.setenv("SCRIBE_CONFIG", str(path))
    i18n.set_language("nb")
    yield path
    i18n.set_language("nb")


def make(qtbot: QtBot, profile: Path, **kwargs: Any) -> SettingsDialog:
    dlg = SettingsDialog(load_settings(speakers={"voice_profile": str(profile)}), input_devices=[], **kwargs)
    qtbot.addWidget(dlg)
    dlg.tabs.setCurrentWidget(dlg.voice_page)
    return dlg


def silent_wav(path: Path, seconds: float = 30.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(seconds * 16000))
    return path


# The voice encoder takes ~2 s for the passage on an idle 2-core machine, but over a minute
# when other processes keep the cores busy (torch's two intra-op threads wait for each other).
SLOW_MS = 300_000


def finish(qtbot: QtBot, dlg: SettingsDialog, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: not dlg.enrolling, timeout=timeout)


def test_the_tab_shows_the_consent_and_no_profile_and_saves_the_speaker_settings(
        qtbot: QtBot, cfg: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "lege.json"
    dlg = make(qtbot, profile)
    assert dlg.tabs.tabText(dlg.tabs.indexOf(dlg.voice_page)) == "Stemmeprofil"
    assert dlg.consent_label.text() == CONSENT
    assert dlg.speakers_on.text() == "Skill stemmene (roller fra stemmene)" and dlg.speakers_on.isChecked()
    assert dlg.profile_path.text() == str(profile)
    assert dlg.profile_status.text() == "Ingen stemmeprofil er lagret."
    assert not dlg.delete_profile_btn.isEnabled() and dlg.enroll_mic_btn.isEnabled()
    assert "Metformin 500 milligram" in dlg.passage_label.text()  # the passage to read

    dlg.speakers_on.setChecked(False)
    other = tmp_path / "annen.json"
    dlg.profile_path.setText(str(other))
    assert dlg.apply() is not None
    saved = tomllib.loads(cfg.read_text(encoding="utf-8"))["speakers"]
    assert saved == {"mode": "off", "voice_profile": str(other)}
    assert dlg.settings.speakers.profile_path() == other

    dlg.profile_path.setText(str(tmp_path))  # a folder is no profile file
    assert dlg.apply() is None and "må være en fil" in dlg.error_label.text()

    i18n.set_language("en")
    english = make(qtbot, profile)
    assert english.tabs.tabText(english.tabs.indexOf(english.voice_page)) == "Voice profile"
    assert english.consent_label.text().startswith("The voice profile is biometric data about you.")


def test_a_silent_recording_from_a_file_shows_one_line_and_stores_nothing(
        qtbot: QtBot, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "lege.json"
    audio = silent_wav(tmp_path / "stille.wav")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(audio), ""))
    dlg = make(qtbot, profile, voice_encoder=NoEncoder())
    qtbot.mouseClick(dlg.enroll_file_btn, Qt.MouseButton.LeftButton)
    assert dlg.enrolling and not dlg.enroll_mic_btn.isEnabled() and dlg.enroll_stop_btn.isVisibleTo(dlg)
    finish(qtbot, dlg)
    message = dlg.enroll_message.text()
    assert message.startswith("Ingen stemmeprofil lagret: the recording is silent") and "\n" not in message
    assert dlg.enroll_message.styleSheet() == ERROR_STYLE
    assert not profile.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["stille.wav"]
    assert dlg.profile_status.text() == "Ingen stemmeprofil er lagret."
    assert dlg.enroll_mic_btn.isEnabled() and not dlg.enroll_stop_btn.isVisibleTo(dlg)


def test_a_silent_microphone_records_with_progress_and_stores_nothing(qtbot: QtBot, cfg: Path, tmp_path: Path) -> None:
    profile = tmp_path / "lege.json"
    sd = FakeSoundDevice(np.zeros(16000 * 3, np.float32), samplerate=16000)
    dlg = make(qtbot, profile, sd=sd, voice_encoder=NoEncoder())
    dlg.enroll_seconds = 2.0
    seen: list[int] = []
    dlg.enroll_progress.valueChanged.connect(seen.append)
    qtbot.mouseClick(dlg.enroll_mic_btn, Qt.MouseButton.LeftButton)
    finish(qtbot, dlg)
    assert len(sd.streams) == 1 and sd.streams[0].kwargs["samplerate"] == 16000  # the default microphone
    assert max(seen) == 100  # the progress bar went all the way while recording
    assert dlg.enroll_message.text().startswith("Ingen stemmeprofil lagret: the recording is silent")
    assert not profile.exists()


def test_a_stored_profile_is_described(qtbot: QtBot, cfg: Path, tmp_path: Path) -> None:
    import datetime as dt

    from asr.speakers import profile as voice_profile

    emb = np.zeros(256, np.float32)
    emb[3] = 1.0
    made = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    profile = voice_profile.save(voice_profile.VoiceProfile(emb, made.isoformat(), 31.4, 38.2, 0.912), tmp_path / "v.json")
    dlg = make(qtbot, profile)
    local = made.astimezone().strftime("%d.%m.%Y kl. %H:%M")
    assert dlg.profile_status.text() == (f"Stemmeprofil laget {local} av 31 s tale; signal/støy 38 dB, "
                                         "samsvar 0,91 – god kvalitet.")
    assert dlg.delete_profile_btn.isEnabled()
    voice_profile.save(voice_profile.VoiceProfile(emb, made.isoformat(), 16.0, 17.0, 0.7), profile)
    dlg.profile_path.editingFinished.emit()  # shown again (a new path typed, or the same one)
    assert dlg.profile_status.text().endswith("samsvar 0,70 – brukbar kvalitet (lag gjerne en ny i et stille rom).")


def test_a_damaged_profile_says_so_and_delete_removes_it(
        qtbot: QtBot, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "lege.json"
    profile.write_text('{"format": "noe annet"}', encoding="utf-8")
    dlg = make(qtbot, profile)
    assert dlg.profile_status.text().startswith("Stemmeprofilen kan ikke brukes: ")
    assert dlg.profile_status.styleSheet() == ERROR_STYLE and dlg.delete_profile_btn.isEnabled()
    asked: list[str] = []

    def answer(reply: Any) -> Any:
        def question(parent: Any, title: str, text: str, *a: Any) -> Any:
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    qtbot.mouseClick(dlg.delete_profile_btn, Qt.MouseButton.LeftButton)
    assert profile.exists()  # the clinician said no
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(dlg.profile_changed, timeout=1000):
        qtbot.mouseClick(dlg.delete_profile_btn, Qt.MouseButton.LeftButton)
    assert len(asked) == 2 and not profile.exists()
    assert dlg.enroll_message.text() == "Stemmeprofilen er slettet."
    assert dlg.profile_status.text() == "Ingen stemmeprofil er lagret." and not dlg.delete_profile_btn.isEnabled()


def _check_stored(dlg: SettingsDialog, profile: Path) -> None:
    from asr.speakers import profile as voice_profile

    assert stat.S_IMODE(profile.stat().st_mode) == 0o600  # biometric data: the user's only
    stored = voice_profile.load(profile)
    assert stored.speech_s >= 15 and stored.consistency >= 0.6
    assert dlg.enroll_message.text() == "Stemmeprofilen er lagret." and dlg.enroll_message.styleSheet() == OK_STYLE
    status, summary = dlg.profile_status.text(), stored.summary()  # the dialog shows the summary
    assert status.startswith("Stemmeprofil laget ") and f"av {summary['speech_s']:.0f} s tale" in status
    assert f"signal/støy {summary['snr_db']:.0f} dB" in status and "kvalitet" in status
    assert dlg.delete_profile_btn.isEnabled()
    assert sorted(p.name for p in profile.parent.iterdir()) == [profile.name]  # no audio, no temp file


@pytest.mark.integration
def test_enrolling_from_a_recording_makes_a_private_profile_and_delete_removes_it(
        qtbot: QtBot, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = tmp_path / "profil" / "lege.json"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(LEGE), ""))
    dlg = make(qtbot, profile)  # no encoder given: the real one is loaded on the worker thread
    with qtbot.waitSignal(dlg.profile_changed, timeout=SLOW_MS):
        qtbot.mouseClick(dlg.enroll_file_btn, Qt.MouseButton.LeftButton)
    finish(qtbot, dlg)
    _check_stored(dlg, profile)

    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(dlg.delete_profile_btn, Qt.MouseButton.LeftButton)
    assert not profile.exists() and dlg.profile_status.text() == "Ingen stemmeprofil er lagret."


@pytest.mark.integration
def test_enrolling_from_the_microphone_makes_a_profile(qtbot: QtBot, cfg: Path, tmp_path: Path) -> None:
    from asr.sources import decode_file

    audio, problem = decode_file(LEGE)
    assert problem is None
    sd = FakeSoundDevice(audio, samplerate=16000)  # the microphone "hears" the clinician reading
    profile = tmp_path / "lege.json"
    dlg = make(qtbot, profile, sd=sd)
    dlg.enroll_seconds = len(audio) / 16000 - 0.5
    qtbot.mouseClick(dlg.enroll_mic_btn, Qt.MouseButton.LeftButton)
    finish(qtbot, dlg, SLOW_MS)
    _check_stored(dlg, profile)
