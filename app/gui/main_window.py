"""The clinician's window: record, live transcript, draft, review with evidence, approve.

One :class:`MainWindow` per process. It drives at most one
:class:`summarize.consultation.consultation.Consultation` at a time on the process's
:class:`summarize.consultation.engine.Scribe` (everything patient-related stays in the
consultation, in memory) and shows it; slow calls run on worker threads (:mod:`app.gui.workers`).
There is no Save: Approve delivers the note to the EPJ sink and wipes the consultation;
Discard wipes it.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.gui import workers
from app.gui.delivery_view import DeliveryView
from app.gui.i18n import text as _t
from app.gui.review_view import SectionEdit
from app.gui.window_texts import TEXT
from asr.errors import first_line
from summarize.consultation.consultation import Consultation
from summarize.consultation.session import Session, State

logger = logging.getLogger(__name__)

class MainWindow(DeliveryView):
    """Record → live transcript → draft → review → approve (or discard)."""

    draft_ready = Signal()        # a draft after Stop is shown (review may begin)
    session_ended = Signal(str)   # "approved" or "discarded"; memory is wiped
    models_ready = Signal()
    load_failed = Signal(str)     # the speech model could not be loaded (one line)

    def __init__(self, scribe: Any, *, template: str | None = None, clipboard: Any = None,
                 superuser: bool = False, replay: Path | None = None, replay_speed: float = 1.0) -> None:
        super().__init__()
        from summarize.templates.template import list_templates

        self.scribe = scribe  # summarize.consultation.engine.Scribe: the models, shared by consultations
        self.settings = scribe.settings
        self.replay = replay  # a file played as if it were the microphone (demos, the UI benchmark)
        self.replay_speed = replay_speed
        self.clipboard = clipboard or QApplication.clipboard()
        self.superuser = superuser
        self.consultation: Consultation | None = None
        self._transcript_stale = False
        self._events = workers.EventRelay(self._on_event, self, after=self._events_done)
        self._tag: object = None
        self.runner = workers.Runner(self)
        self._draft_t0 = 0.0
        self._asr_ready = False
        self._selected: set[int] = set()
        self._uncertain: dict[int, set[str]] = {}  # segment id → words to highlight (this session)
        self._changed_after_draft = False
        self._elapsed = 0.0
        self._delivery: Any = None   # the approved note until it arrived (summarize.delivery.handover.Delivery)
        self._sending = False
        self._last_tick: float | None = None
        self._templates = {t.id: t for t in list_templates()}
        self.setWindowTitle(_t(TEXT, "title"))
        self._build(template)
        self.resize(1400, 860)
        self._tick = QTimer(self)
        self._tick.setInterval(200)
        self._tick.timeout.connect(self._update_clock)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(700)
        self._preview_timer.timeout.connect(self._show_preview)
        self._refresh_buttons()

    # -- layout -----------------------------------------------------------------------
    def _build(self, template: str | None) -> None:
        root = QWidget(self)
        col = QVBoxLayout(root)
        bar = QHBoxLayout()
        bar.addWidget(QLabel(_t(TEXT, "template")))
        self.template_box = QComboBox()
        for tid, t in sorted(self._templates.items()):
            self.template_box.addItem(f"{t.title} ({tid})", tid)
        app_settings = getattr(self.settings, "app", None)
        want = template or getattr(app_settings, "default_template", "allmennmedisin")
        if not template and getattr(app_settings, "note_language", "nb") == "nn" \
                and self.template_box.findData(f"{want}-nn") >= 0:
            want = f"{want}-nn"  # the nynorsk variant of the specialty's template
        idx = self.template_box.findData(want)
        self.template_box.setCurrentIndex(max(0, idx))
        bar.addWidget(self.template_box, 2)
        bar.addWidget(QLabel(_t(TEXT, "mic")))
        self.mic_box = QComboBox()
        if self.replay is not None:
            self.mic_box.addItem(_t(TEXT, "mic_replay", name=Path(self.replay).name), "")
        else:
            self.mic_box.addItem(_t(TEXT, "mic_default"), "")
            for d in self.scribe.input_devices():
                self.mic_box.addItem(f"{d['name']} ({int(d.get('default_samplerate') or 0)} Hz)", d["index"])
        bar.addWidget(self.mic_box, 2)
        self.record_btn = QPushButton(_t(TEXT, "record"))
        self.pause_btn = QPushButton(_t(TEXT, "pause"))
        self.stop_btn = QPushButton(_t(TEXT, "stop"))
        self.record_btn.clicked.connect(self.record)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.stop_btn.clicked.connect(self.stop)
        for b in (self.record_btn, self.pause_btn, self.stop_btn):
            bar.addWidget(b)
        self.clock_label = QLabel("00:00")
        bar.addWidget(self.clock_label)
        self.level = QProgressBar()
        self.level.setRange(-60, 0)
        self.level.setValue(-60)
        self.level.setTextVisible(False)
        self.level.setFixedWidth(120)
        self.level.setToolTip("dBFS")
        bar.addWidget(self.level)
        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color: #c62828; font-weight: bold;")
        bar.addWidget(self.rec_label)
        self.settings_btn = QPushButton(_t(TEXT, "settings"))
        self.settings_btn.clicked.connect(self.open_settings)
        bar.addWidget(self.settings_btn)
        from app.gui.mic_dialog import add_mic_test_button

        self.mic_test_btn = add_mic_test_button(self, bar)
        if self.superuser:
            self.templates_btn = QPushButton(_t(TEXT, "templates"))
            self.templates_btn.clicked.connect(self.open_template_editor)
            bar.addWidget(self.templates_btn)
        col.addLayout(bar)

        status = QHBoxLayout()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: models loading, drafting
        self.busy.setFixedWidth(160)
        self.busy.hide()
        self.status = QLabel("")
        status.addWidget(self.busy)
        status.addWidget(self.status, 1)
        col.addLayout(status)
        self.notice = QLabel(_t(TEXT, "notice"))
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4e5; padding: 4px; border: 1px solid #f0c36d;")
        col.addWidget(self.notice)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.addWidget(QLabel(f"<b>{_t(TEXT, 'transcript')}</b>"))
        lcol.addWidget(self._build_speakers_hint())  # where the roles came from (speaker_view)
        srow = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText(_t(TEXT, "search"))
        self.search.textChanged.connect(lambda _: self._render_transcript())
        self.hits = QLabel("")
        srow.addWidget(self.search)
        srow.addWidget(self.hits)
        lcol.addLayout(srow)
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._transcript_link)
        lcol.addWidget(self.transcript)
        split.addWidget(left)

        mid = QWidget()
        mcol = QVBoxLayout(mid)
        self.draft_title = QLabel(f"<b>{_t(TEXT, 'draft')}</b>")
        mcol.addWidget(self.draft_title)
        self.redraft_btn = QPushButton(_t(TEXT, "redraft"))
        self.redraft_btn.clicked.connect(self.redraft)
        self.redraft_btn.hide()
        mcol.addWidget(self.redraft_btn)
        self.sections_area = QScrollArea()
        self.sections_area.setWidgetResizable(True)
        self.sections_host = QWidget()
        self.sections_layout = QVBoxLayout(self.sections_host)
        self.sections_layout.addStretch(1)
        self.sections_area.setWidget(self.sections_host)
        mcol.addWidget(self.sections_area)
        self.section_edits: dict[str, SectionEdit] = {}
        split.addWidget(mid)

        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.addWidget(QLabel(f"<b>{_t(TEXT, 'flags')}</b>"))
        self.flags_list = QListWidget()
        self.flags_list.setWordWrap(True)
        self.flags_list.currentRowChanged.connect(self._flag_selected)
        rcol.addWidget(self.flags_list)
        self.accept_btn = QPushButton(_t(TEXT, "accept_flag"))
        self.accept_btn.clicked.connect(self.accept_selected_flag)
        rcol.addWidget(self.accept_btn)
        split.addWidget(right)
        split.setSizes([520, 600, 280])
        col.addWidget(split, 1)

        foot = QHBoxLayout()
        self.discard_btn = QPushButton(_t(TEXT, "discard"))
        self.discard_btn.clicked.connect(lambda: self.discard(ask=True))
        self.approve_btn = QPushButton(_t(TEXT, "approve"))
        self.approve_btn.setStyleSheet("font-weight: bold;")
        self.approve_btn.clicked.connect(self.approve)
        self.receipt = QLabel("")
        self.receipt.setWordWrap(True)
        self.patient = QLineEdit()  # the FHIR sink's patient; not needed for the clipboard
        self.patient.setPlaceholderText(_t(TEXT, "patient"))
        self.patient.setMaximumWidth(260)
        self.patient.textChanged.connect(self._check_patient)
        self.patient.setVisible(self._sink_name() == "fhir")
        self.retry_btn = QPushButton(_t(TEXT, "retry"))
        self.retry_btn.clicked.connect(self._send)
        self.copy_btn = QPushButton(_t(TEXT, "to_clipboard"))
        self.copy_btn.clicked.connect(self._send_to_clipboard)
        self.retry_btn.hide()
        self.copy_btn.hide()
        foot.addWidget(self.receipt, 1)
        foot.addWidget(self.patient)
        foot.addWidget(self.retry_btn)
        foot.addWidget(self.copy_btn)
        foot.addWidget(self.discard_btn)
        foot.addWidget(self.approve_btn)
        col.addLayout(foot)
        self.setCentralWidget(root)

    # -- models -----------------------------------------------------------------------
    def load_models(self) -> None:
        """Load the models in the background; the window is usable meanwhile."""
        self.busy.show()
        self.status.setText(_t(TEXT, "loading_asr"))
        task = workers.TaskWorker(self.scribe.load, self._loader_progress)
        self._loader = _Relay(self)
        self._loader.message.connect(self._on_load_progress)
        task.result.connect(self._on_loaded)
        task.failed.connect(self._on_load_failed)
        self.runner.start(task)

    def _loader_progress(self, stage: str) -> None:  # called on the worker thread
        self._loader.message.emit(stage)

    def _on_load_progress(self, stage: str) -> None:
        self.status.setText(_t(TEXT, {"asr": "loading_asr", "llm": "loading_llm"}.get(stage, "ready")))

    def _on_loaded(self, _: Any = None) -> None:
        self._asr_ready = True
        self.busy.hide()
        problem = self.scribe.llm_problem
        self.status.setText(_t(TEXT, "no_llm", why=problem) if problem else _t(TEXT, "ready"))
        if self.scribe.speakers_problem:  # roles work without the profile; the clinician is told why
            self.status.setText(_t(TEXT, "voice_profile_failed", why=self.scribe.speakers_problem))
        self._refresh_buttons()
        self.models_ready.emit()

    def _on_load_failed(self, why: str) -> None:
        self.busy.hide()
        self.status.setText(_t(TEXT, "load_failed", why=why))
        self._refresh_buttons()
        self.load_failed.emit(why)

    # -- recording --------------------------------------------------------------------
    @property
    def template(self) -> Any:
        return self._templates[self.template_box.currentData()]

    @property
    def session(self) -> Session | None:
        """The review session of the consultation on screen (None between consultations)."""
        c = self.consultation
        return c.session if c is not None else None

    def _make_source(self, device: str | int | None) -> Any:
        """The microphone, or the replay file played as if it were one (same path)."""
        if self.replay is None:
            return self.scribe.microphone(device)
        from asr.sources import FileSource

        speed = self.replay_speed
        return FileSource(self.replay, realtime=True, clock=lambda: time.monotonic() * speed,
                          sleep=lambda s: time.sleep(s / speed))

    def record(self) -> None:
        if not self._asr_ready or (self.session is not None and self.session.state is not State.IDLE):
            return
        tag = object()  # events carry their consultation's tag: a late one from an ended consultation is ignored
        speakers = getattr(getattr(self.settings, "speakers", None), "mode", "auto") != "off"
        try:  # a device that cannot open, a damaged voice profile: one line
            source = self._make_source(self.mic_box.currentData())
            c = self.scribe.consultation(self.template, source, on_event=functools.partial(self._events.post, tag),
                                         speakers=speakers)
        except Exception as exc:
            self.status.setText(_t(TEXT, "error", why=first_line(exc)))
            return
        self.receipt.setText("")
        self.consultation, self._tag = c, tag
        self._elapsed, self._last_tick = 0.0, time.monotonic()
        self._tick.start()
        self._clear_draft()
        self._render_transcript()
        c.start(background=False)
        self.runner.start(workers.TaskWorker(c.capture))  # capture + ASR on a QThread, events relayed
        self._refresh_buttons()

    def toggle_pause(self) -> None:
        c = self.consultation
        if c is None:
            return
        if c.state is State.RECORDING:
            c.pause()
        elif c.state is State.PAUSED:
            c.resume()
            self._last_tick = time.monotonic()
        self._refresh_buttons()

    def stop(self) -> None:
        c = self.consultation
        if c is None or c.state not in (State.RECORDING, State.PAUSED):
            return
        self._update_clock()
        c.stop()  # what was said is still transcribed; RecordingEnded follows, then the draft
        c.session.audio_s = self._elapsed
        self._tick.stop()
        self.busy.show()
        self.status.setText(_t(TEXT, "drafting"))
        self._refresh_buttons()

    def _update_clock(self) -> None:
        now = time.monotonic()
        if self.session is not None and self.session.state is State.RECORDING and self._last_tick:
            self._elapsed += now - self._last_tick
        self._last_tick = now
        m, s = divmod(int(self._elapsed), 60)
        self.clock_label.setText(f"{m:02d}:{s:02d}")

    def _on_level(self, dbfs: float) -> None:
        self.level.setValue(int(max(-60.0, min(0.0, dbfs))))

    def _on_event(self, tag: Any, ev: Any) -> None:
        """A consultation's event, on the UI thread (see summarize.consultation.events)."""
        from summarize.consultation.events import Committed, Level, RecordingEnded, Relabelled, Tentative

        if self.consultation is None or tag is not self._tag:
            return  # from a consultation that already ended
        if isinstance(ev, Level):
            self.level.setValue(int(max(-60.0, min(0.0, ev.dbfs))))
        elif isinstance(ev, Committed):
            self._transcript_stale = True
            if not self._preview_timer.isActive():
                self._preview_timer.start()
        elif isinstance(ev, Tentative):
            self._transcript_stale = True
        elif isinstance(ev, Relabelled):
            self._on_relabelled(ev)
        elif isinstance(ev, RecordingEnded):
            self._events_done()
            self._on_recording_finished(ev.error)

    def _events_done(self) -> None:
        """After a batch of events: redraw the transcript once, not once per event."""
        if self._transcript_stale:
            self._transcript_stale = False
            self._render_transcript()

    def _show_preview(self) -> None:
        c = self.consultation
        draft = c.preview() if c is not None else None
        if draft is not None:
            self._show_draft(draft, live=True)

    def _on_recording_finished(self, error: str) -> None:
        self._tick.stop()
        self.level.setValue(-60)
        s = self.session
        if error:
            self.status.setText(_t(TEXT, "error", why=error))
        if s is None or s.state is State.DONE:
            return
        self._draft()

    # -- drafting ---------------------------------------------------------------------
    def _draft(self, redraft: bool = False) -> None:
        c = self.consultation
        assert c is not None
        self.busy.show()
        if not self.status.text().startswith(_t(TEXT, "error", why="")[:4]):
            self.status.setText(_t(TEXT, "drafting"))
        task = workers.TaskWorker(c.redraft if redraft else c.draft)
        self._draft_t0 = time.perf_counter()
        task.result.connect(self._on_drafted)
        task.failed.connect(self._on_draft_failed)
        self.runner.start(task)
        self._refresh_buttons()

    def _on_drafted(self, result: Any) -> None:
        seconds = time.perf_counter() - self._draft_t0
        s = self.session
        if s is None or s.state is State.DONE:
            return
        self._changed_after_draft = False
        self.redraft_btn.hide()
        self.busy.hide()
        self.status.setText(_t(TEXT, "draft_ready", s=seconds))
        self._show_draft(result.draft, live=False)
        self._render_transcript()
        self._refresh_buttons()
        self.draft_ready.emit()

    def _on_draft_failed(self, why: str) -> None:
        if self.consultation is None:
            return  # discarded while it was drafted
        self.busy.hide()
        self.status.setText(_t(TEXT, "error", why=why))
        self._refresh_buttons()

    def redraft(self) -> None:
        s = self.session
        if s is None or s.state is not State.REVIEW:
            return
        self._draft(redraft=True)

    def discard(self, ask: bool = True) -> bool:
        if self.session is None or self.session.state is State.DONE:
            return True
        if ask and QMessageBox.question(self, _t(TEXT, "discard"), _t(TEXT, "discard_q")) \
                != QMessageBox.StandardButton.Yes:
            return False
        self._end("discarded")
        self.receipt.setText("")
        return True

    def _end(self, how: str) -> None:
        """End the consultation: its audit line, then the wipe (summarize.consultation); the
        capture thread and the background drafting are joined on a worker thread."""
        c = self.consultation
        self.consultation = None
        self._tick.stop()
        self._preview_timer.stop()
        if c is not None:
            c.end("discarded" if how == "discarded" else None, wait=False)
            self.runner.start(workers.TaskWorker(c.join))
        self._delivery = None
        self.retry_btn.hide()
        self.copy_btn.hide()
        self._selected = set()
        self._uncertain.clear()
        self._changed_after_draft = False
        self.redraft_btn.hide()
        self.search.clear()
        self._clear_draft()
        self._render_transcript()
        self.busy.hide()
        self.clock_label.setText("00:00")
        self.level.setValue(-60)
        self._refresh_buttons()
        logger.info("session %s", how)
        self.session_ended.emit(how)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        if self._sending:  # the note is on its way: wait for the answer (or the timeout)
            event.ignore()
            return
        if self.session is not None and self.session.state is not State.DONE:
            if not self.discard(ask=not getattr(self, "quiet_close", False)):
                event.ignore()
                return
        self.runner.wait_all()
        self.scribe.close()
        event.accept()

    # -- dialogs ----------------------------------------------------------------------
    def open_settings(self) -> None:
        from app.gui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, input_devices=self.scribe.input_devices(), parent=self,
                             sd=self.scribe.sd, voice_encoder=self.scribe.speaker_encoder)
        dlg.settings_saved.connect(self._settings_saved)
        dlg.exec()
        self._refresh_speakers()  # a voice profile made or deleted in the dialog (speaker_view)

    def _settings_saved(self, settings: Any) -> None:
        """New settings: models are reloaded in the background if theirs changed (between
        consultations; during one, at the next start); the window language at restart."""
        old = self.settings
        self.settings = self.scribe.settings = settings
        self.patient.setVisible(self._sink_name() == "fhir")
        self.scribe.reopen_audit()  # the next audit line goes where the new settings say
        models_changed = any(getattr(old, k, None) != getattr(settings, k, None) for k in ("asr", "llm"))
        idle = self.session is None or self.session.state is State.IDLE
        if models_changed and idle and self.runner.busy == 0:
            self._asr_ready = False
            self.scribe.close()
            self._refresh_buttons()
            self.load_models()
        else:
            self.status.setText(_t(TEXT, "saved_later") if models_changed else _t(TEXT, "saved"))

    def open_template_editor(self) -> None:
        from PySide6.QtWidgets import QDialog

        from app.gui.template_editor import TemplateEditor, template_save_dir

        dlg = QDialog(self)
        lay = QVBoxLayout(dlg)
        consult = getattr(self.settings.app, "consultations_dir", "") or None
        editor = TemplateEditor(template_save_dir(self.settings), Path(consult) if consult else None, dlg)
        lay.addWidget(editor)
        dlg.resize(1200, 800)
        dlg.exec()
        editor.wait_idle()  # a check or an import on its worker thread must end first
        dlg.deleteLater()

    # -- state of the buttons ---------------------------------------------------------
    def _refresh_buttons(self) -> None:
        s = self.session
        state = s.state if s is not None else State.IDLE
        idle = s is None or state is State.IDLE
        self.record_btn.setEnabled(self._asr_ready and idle)
        self.pause_btn.setEnabled(state in (State.RECORDING, State.PAUSED))
        self.pause_btn.setText(_t(TEXT, "resume") if state is State.PAUSED else _t(TEXT, "pause"))
        self.stop_btn.setEnabled(state in (State.RECORDING, State.PAUSED))
        self.template_box.setEnabled(idle)
        self.mic_box.setEnabled(idle)
        self.rec_label.setText(_t(TEXT, "recording") if state is State.RECORDING
                               else _t(TEXT, "paused") if state is State.PAUSED else "")
        self.approve_btn.setEnabled(bool(s and s.can_approve and not self._changed_after_draft
                                         and self._delivery is None))
        self.discard_btn.setEnabled(s is not None and state is not State.DONE and not self._sending)
        self.accept_btn.setEnabled(state is State.REVIEW and bool(s and s.unresolved))


class _Relay(QObject):
    """Carries a worker thread's progress to the UI thread."""

    message = Signal(str)
