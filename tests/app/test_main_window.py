"""The clinician's window, driven offscreen: record from a file-fed fake microphone → Stop →
draft → a flag blocks Approve → resolve → Approve → the clipboard holds the note → the
session's memory is empty. Also: restoring dropped small talk, editing the transcript,
Discard, Pause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QUrl  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from asr.types import SAMPLE_RATE  # noqa: E402
from summarize.consultation.engine import Scribe  # noqa: E402
from tests.fakes import FakeLlm, FakeSoundDevice, ScriptedTranscriber, to_native  # noqa: E402

SCRIPT = [
    ("Vi var på hytta i helgen og fisket ørret.", 1.0),
    ("Jeg har hatt vondt i brystet i tre dager.", 2.0),
    ("Blodtrykket er hundre og førti over nitti.", 3.0),
    ("Du fortsetter med amlodipin fem milligram daglig.", 4.0),
]

ANSWERS = {
    "hytta": "Anamnese: Var på hytta i helgen og fisket ørret.",
    "brystet": "Anamnese: Vondt i brystet i 3 dager.",
    "Blodtrykket": "Funn: Blodtrykk 150/90.",  # 150 was never said: flagged
    "amlodipin": "Legemidler: Amlodipin 5 mg daglig.",
}


def _answer(messages: list[Any]) -> str:
    said = messages[-1].content.rsplit("\n", 1)[-1]
    return next((a for k, a in ANSWERS.items() if k in said), "Ingen.")


class FakeAsr:
    """A loaded "Whisper" whose transcriber is the scripted one."""

    model_id = "scripted"
    model_dir = None

    def __init__(self, transcriber: ScriptedTranscriber) -> None:
        self._transcriber = transcriber

    def transcriber(self, clock: Any = None, vocabulary: tuple[str, ...] = ()) -> ScriptedTranscriber:
        return self._transcriber


class FakeScribe(Scribe):
    """The consultation engine with a file-fed fake microphone, a scripted transcriber and a
    scripted LLM; everything else (consultation, session, filter, drafting, verifier, sink) is real."""

    def __init__(self, seconds: float = 6.0) -> None:
        rng = np.random.default_rng(0)
        audio = (0.05 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
        settings = SimpleNamespace(app=SimpleNamespace(
            default_template="allmennmedisin", note_language="nb", clipboard_clear_s=0, sink="clipboard",
            consultations_dir="", template_dir=""))
        self.transcriber = ScriptedTranscriber(SCRIPT, unsure=("amlodipin",))
        super().__init__(settings, asr=FakeAsr(self.transcriber), llm=FakeLlm(_answer),
                         sd=FakeSoundDevice(to_native(audio), pace=0.2))  # 5× real time

    def microphone(self, device: str | int | None = None, **kwargs: Any) -> Any:
        return super().microphone(device, stall_timeout_s=10)


@pytest.fixture
def window(qtbot: Any) -> Iterator[Any]:
    from app.gui.main_window import MainWindow

    win = MainWindow(FakeScribe(), template="allmennmedisin")
    qtbot.addWidget(win)
    win.show()
    win.load_models()
    qtbot.waitUntil(win.record_btn.isEnabled, timeout=5000)
    win.quiet_close = True  # pytest-qt closes the window after the test: do not ask then
    yield win


def _record_all(qtbot: Any, win: Any) -> None:
    from PySide6.QtCore import Qt

    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    assert win.rec_label.text()  # the recording indicator is on
    qtbot.waitUntil(lambda: len(win.session.segments) == len(SCRIPT), timeout=10000)
    # segments are committed on the consultation's thread; the window shows them when the event arrives
    qtbot.waitUntil(lambda: "amlodipin" in win.transcript.toPlainText(), timeout=10000)


def test_record_stop_review_approve_and_the_session_is_wiped(qtbot: Any, window: Any) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    win = window
    scribe = win.scribe
    assert "KI" in win.notice.text() and "godkjenner" in win.notice.text()
    _record_all(qtbot, win)
    html = win.transcript.toHtml()
    assert "brystet" in html and "hytta" in html
    assert "#ffe08a" in html  # the uncertain drug name is highlighted
    session = win.session
    assert 0 in {d.id for d in session.filtered.dropped}  # the weather is small talk

    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.stop_btn, Qt.MouseButton.LeftButton)
    assert set(win.section_edits) >= {"anamnese", "funn", "legemidler"}
    assert "brystet" in win.section_edits["anamnese"].toPlainText()
    assert "hytta" not in win.section_edits["anamnese"].toPlainText()  # small talk stays out
    kinds = {f.flag.kind for f in session.flags}
    assert "unsupported_number" in kinds and "uncertain_asr" in kinds
    assert win.flags_list.count() == len(session.flags)
    assert not win.approve_btn.isEnabled()  # an unresolved flag blocks approval

    # evidence: clicking the sentence highlights the utterance it rests on
    edit = win.section_edits["anamnese"]
    cursor = edit.textCursor()
    cursor.setPosition(3)
    edit.setTextCursor(cursor)
    assert win._selected == {1}

    # resolve: edit the wrong number away, accept the rest explicitly
    win.section_edits["funn"].setPlainText("Blodtrykk 140/90.")
    assert any(f.resolution == "edited" for f in session.flags)
    while session.unresolved:
        win.flags_list.setCurrentRow(session.flags.index(session.unresolved[0]))
        assert not win.approve_btn.isEnabled()
        qtbot.mouseClick(win.accept_btn, Qt.MouseButton.LeftButton)
    assert win.approve_btn.isEnabled()

    note = win.consultation.note
    with qtbot.waitSignal(win.session_ended, timeout=10000) as ended:
        qtbot.mouseClick(win.approve_btn, Qt.MouseButton.LeftButton)
    assert ended.args == ["approved"]
    clip = QApplication.clipboard().text()
    assert "Blodtrykk 140/90." in clip and "brystet" in clip and "Anamnese" in clip
    assert QApplication.clipboard().mimeData().hasHtml()  # rich text where the target accepts it
    assert "godkjent" in clip  # the rendered note says it was drafted by software and approved
    assert "Sendt" in win.receipt.text()

    # memory: the session object, the transcriber's audio and the drafted lines are empty
    assert win.session is None
    assert session.is_empty and session.segments == [] and session.section_texts == {}
    assert scribe.transcriber.samples == [] and scribe.transcriber.transcript.segments == []
    qtbot.waitUntil(lambda: not note.incremental._lines, timeout=10000)
    assert win.transcript.toPlainText().strip() == ""
    assert not win.section_edits and win.flags_list.count() == 0


def test_a_restored_small_talk_segment_goes_into_the_draft(qtbot: Any, window: Any) -> None:
    from PySide6.QtCore import Qt

    win = window
    _record_all(qtbot, win)
    assert 'href="restore:0"' in win.transcript.toHtml()
    win._transcript_link(QUrl("restore:0"))
    assert 0 in win.session.filtered.kept and 0 in win.session.restored
    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.stop_btn, Qt.MouseButton.LeftButton)
    assert "hytta" in win.section_edits["anamnese"].toPlainText()


def test_an_edited_or_removed_segment_changes_the_draft_after_redraft(qtbot: Any, window: Any) -> None:
    from PySide6.QtCore import Qt

    win = window
    _record_all(qtbot, win)
    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.stop_btn, Qt.MouseButton.LeftButton)
    win.search.setText("brystet")
    assert "1 treff" in win.hits.text()
    win.delete_segment(1)  # e.g. talk about another patient
    assert not win.approve_btn.isEnabled() and win.redraft_btn.isVisibleTo(win)
    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.redraft_btn, Qt.MouseButton.LeftButton)
    assert "brystet" not in " ".join(e.toPlainText() for e in win.section_edits.values())


def test_discard_asks_once_then_wipes(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    win = window
    _record_all(qtbot, win)
    session = win.session
    asked: list[str] = []

    def answer(no: bool) -> Any:
        def question(parent: Any, title: str, text: str, *a: Any) -> Any:
            asked.append(text)
            return QMessageBox.StandardButton.No if no else QMessageBox.StandardButton.Yes
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(no=True))
    assert win.discard(ask=True) is False and win.session is session and session.segments
    monkeypatch.setattr(QMessageBox, "question", answer(no=False))
    with qtbot.waitSignal(win.session_ended, timeout=10000):
        assert win.discard(ask=True) is True
    assert len(asked) == 2 and session.is_empty and win.session is None
    assert win.record_btn.isEnabled()  # an empty window, ready for the next patient


def test_closing_mid_session_asks(qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    win = window
    win.quiet_close = False
    _record_all(qtbot, win)
    asked: list[str] = []

    def no(parent: Any, title: str, text: str, *a: Any) -> Any:
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", no)
    assert win.close() is False and asked and win.session is not None  # nothing lost
    win.quiet_close = True


def test_pause_drops_audio_and_resume_continues(qtbot: Any, window: Any) -> None:
    from PySide6.QtCore import Qt

    win = window
    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(win.pause_btn, Qt.MouseButton.LeftButton)
    assert win.session.state.value == "paused" and "PAUSE" in win.rec_label.text()
    assert win.consultation.audio_paused
    qtbot.mouseClick(win.pause_btn, Qt.MouseButton.LeftButton)
    assert win.session.state.value == "recording" and not win.consultation.audio_paused
    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.stop_btn, Qt.MouseButton.LeftButton)
    assert win.session.state.value == "review"


def test_nynorsk_setting_picks_the_nynorsk_template_and_superusers_get_the_editor(qtbot: Any) -> None:
    from app.gui.main_window import MainWindow

    scribe = FakeScribe()
    scribe.settings.app.note_language = "nn"
    win = MainWindow(scribe, superuser=True)
    qtbot.addWidget(win)
    assert win.template_box.currentData() == "allmennmedisin-nn"
    assert win.templates_btn.text() == "Maler"  # the template editor, for superusers only
    plain = MainWindow(FakeScribe())
    qtbot.addWidget(plain)
    assert plain.template_box.currentData() == "allmennmedisin" and not hasattr(plain, "templates_btn")


def test_changed_model_settings_reload_the_models_between_consultations(qtbot: Any, window: Any) -> None:
    from types import SimpleNamespace

    win = window
    loads: list[str] = []
    win.scribe.load = lambda progress: loads.append("load")  # type: ignore[method-assign]
    new = SimpleNamespace(app=win.settings.app, asr=SimpleNamespace(model="nb-whisper-large"), llm=None)
    with qtbot.waitSignal(win.models_ready, timeout=5000):
        win._settings_saved(new)
    assert loads == ["load"] and win.scribe.settings is new and win.record_btn.isEnabled()
    win._settings_saved(new)  # nothing model-related changed: no reload
    assert loads == ["load"] and "lagret" in win.status.text()


def test_the_core_never_imports_qt() -> None:
    import subprocess
    import sys

    code = ("import sys, asr.pipeline, asr.sources, summarize.draft.note, summarize.consultation.session, "
            "summarize.delivery.sinks; "
            "sys.exit(1 if any(m.startswith('PySide6') for m in sys.modules) else 0)")
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
