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
import html
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.gui import workers
from app.gui.i18n import text as _t
from summarize.consultation.consultation import Consultation
from summarize.consultation.session import Session, SessionError, State

logger = logging.getLogger(__name__)

_TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Ambient scribe – tale til notat",
        "notice": "Utkastet er laget av KI (tale-til-tekst og språkmodell) og kan inneholde feil. "
                  "Du kontrollerer og godkjenner notatet; programmet stiller ingen diagnose.",
        "template": "Mal:", "mic": "Mikrofon:", "mic_default": "Systemets standard",
        "mic_replay": "Avspilling: {name}",
        "record": "● Ta opp", "pause": "Pause", "resume": "Fortsett", "stop": "■ Stopp",
        "recording": "● OPPTAK", "paused": "❚❚ PAUSE",
        "loading_asr": "Laster talemodell …", "loading_llm": "Laster språkmodell …",
        "ready": "Klar", "no_llm": "Uten språkmodell ({why}): utkastet blir et uttrekk, merket",
        "load_failed": "Talemodellen kunne ikke lastes: {why}",
        "transcript": "Transkripsjon", "search": "Søk i transkripsjonen …", "hits": "{n} treff",
        "draft": "Utkast til notat", "flags": "Må sjekkes før godkjenning",
        "accept_flag": "Godta valgt", "approve": "Godkjenn og send til journal",
        "discard": "Forkast", "redraft": "Lag utkast på nytt",
        "drafting": "Lager utkast …", "draft_ready": "Utkast klart på {s:.1f} s etter stopp.",
        "draft_live": "Utkast så langt (oppdateres under opptaket)",
        "restore": "gjenopprett", "edit": "rediger", "delete": "fjern",
        "dropped": "småprat", "deleted": "fjernet",
        "edit_title": "Rediger segment", "edit_label": "Tekst:",
        "changed": "Transkripsjonen er endret etter utkastet: lag utkast på nytt.",
        "sent": "Sendt: {detail}. Økten er slettet fra minnet.",
        "send_failed": "Ikke sendt ({why}). Notatet er beholdt; prøv igjen.",
        "sending": "Sender til journalen …",
        "retry": "Send på nytt", "to_clipboard": "Kopier til utklippstavlen",
        "patient": "Fødselsnr., D-nr. eller Patient/ID",
        "discard_q": "Forkaste opptak, transkripsjon og utkast? Dette kan ikke angres.",
        "close_q": "En konsultasjon er i gang. Forkaste den og lukke?",
        "error": "Feil: {why}", "no_evidence": "uten kilde i transkripsjonen",
        "extractive": "Uttrekk uten språkmodell – kontroller nøye.",
        "settings": "Innstillinger", "templates": "Maler",
        "saved": "Innstillingene er lagret (språket i vinduet endres ved neste oppstart).",
        "saved_later": "Innstillingene er lagret; nye modeller lastes ved neste oppstart.",
        "flag_kind.unsupported_number": "tall ikke sagt", "flag_kind.unsupported_drug": "legemiddel ikke sagt",
        "flag_kind.unsupported_laterality": "side ikke sagt", "flag_kind.unsupported_date": "dato ikke sagt",
        "flag_kind.retracted_value": "rettet i samme setning",
        "flag_kind.implausible_value": "umulig måleverdi",
        "flag_kind.no_evidence": "uten kilde", "flag_kind.uncertain_asr": "usikkert ord",
        "flag_kind.added_from_transcript": "lagt til fra transkripsjonen", "flag_kind.extractive": "uttrekk",
        "flag_kind.llm_error": "språkmodellfeil", "flag_kind.empty": "tomt",
        "flag_kind.removed_unsupported": "fjernet fordi det ikke ble sagt",
    },
    "en": {
        "title": "Ambient scribe – speech to note",
        "notice": "The draft is AI-generated (speech recognition and a language model) and may be "
                  "wrong. You check and approve the note; the program makes no diagnosis.",
        "template": "Template:", "mic": "Microphone:", "mic_default": "System default",
        "mic_replay": "Replay: {name}",
        "record": "● Record", "pause": "Pause", "resume": "Resume", "stop": "■ Stop",
        "recording": "● RECORDING", "paused": "❚❚ PAUSED",
        "loading_asr": "Loading speech model …", "loading_llm": "Loading language model …",
        "ready": "Ready", "no_llm": "No language model ({why}): the draft is an extract, flagged",
        "load_failed": "The speech model could not be loaded: {why}",
        "transcript": "Transcript", "search": "Search the transcript …", "hits": "{n} hits",
        "draft": "Draft note", "flags": "To check before approval",
        "accept_flag": "Accept selected", "approve": "Approve and send to the record",
        "discard": "Discard", "redraft": "Draft again",
        "drafting": "Drafting …", "draft_ready": "Draft ready {s:.1f} s after Stop.",
        "draft_live": "Draft so far (updated while recording)",
        "restore": "restore", "edit": "edit", "delete": "remove",
        "dropped": "small talk", "deleted": "removed",
        "edit_title": "Edit segment", "edit_label": "Text:",
        "changed": "The transcript changed after the draft: draft again.",
        "sent": "Sent: {detail}. The session is wiped from memory.",
        "send_failed": "Not sent ({why}). The note is kept; try again.",
        "sending": "Sending to the record …",
        "retry": "Send again", "to_clipboard": "Copy to the clipboard",
        "patient": "National ID number, D number or Patient/ID",
        "discard_q": "Discard recording, transcript and draft? This cannot be undone.",
        "close_q": "A consultation is in progress. Discard it and close?",
        "error": "Error: {why}", "no_evidence": "no source in the transcript",
        "extractive": "Extract without a language model – check carefully.",
        "settings": "Settings", "templates": "Templates",
        "saved": "Settings saved (the window language changes at the next start).",
        "saved_later": "Settings saved; new models load at the next start.",
    },
}

_UNCERTAIN_BG = "#ffe08a"
_EVIDENCE_BG = "#cfe8ff"
_SEARCH_BG = "#b6f2b0"


class SectionEdit(QPlainTextEdit):
    """One section of the draft; reports the sentence under the cursor."""

    sentence_clicked = Signal(str, int)  # section id, index of the draft sentence

    def __init__(self, section_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.section_id = section_id
        self.sentences: list[tuple[str, tuple[int, ...]]] = []
        self.setTabChangesFocus(True)
        self.cursorPositionChanged.connect(self._clicked)

    def spans(self) -> list[tuple[int, int, int]]:
        """(start, end, index) of the draft's sentences still found in the text."""
        out, pos, body = [], 0, self.toPlainText()
        for i, (sentence, _) in enumerate(self.sentences):
            at = body.find(sentence, pos)
            if at >= 0:
                out.append((at, at + len(sentence), i))
                pos = at + len(sentence)
        return out

    def _clicked(self) -> None:
        pos = self.textCursor().position()
        for a, b, i in self.spans():
            if a <= pos <= b:
                self.sentence_clicked.emit(self.section_id, i)
                return

    def mark(self, flagged: set[str]) -> None:
        """Underline sentences without evidence and those with a flag."""
        sels = []
        body = self.toPlainText()
        for a, b, i in self.spans():
            sentence, evidence = self.sentences[i]
            hit = not evidence or any(f and f in sentence for f in flagged)
            if hit:
                sel = QTextEdit.ExtraSelection()
                fmt = QTextCharFormat()
                fmt.setBackground(QColor("#ffd6cc" if evidence else "#fff0b3"))
                fmt.setToolTip(_t(_TEXT, "no_evidence") if not evidence else "")
                sel.format = fmt
                cur = QTextCursor(self.document())
                cur.setPosition(a)
                cur.setPosition(min(b, len(body)), QTextCursor.MoveMode.KeepAnchor)
                sel.cursor = cur
                sels.append(sel)
        self.setExtraSelections(sels)


class MainWindow(QMainWindow):
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
        self._events = workers.EventRelay(self)
        self._events.event.connect(self._on_event)
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
        self.setWindowTitle(_t(_TEXT, "title"))
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
        bar.addWidget(QLabel(_t(_TEXT, "template")))
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
        bar.addWidget(QLabel(_t(_TEXT, "mic")))
        self.mic_box = QComboBox()
        if self.replay is not None:
            self.mic_box.addItem(_t(_TEXT, "mic_replay", name=Path(self.replay).name), "")
        else:
            self.mic_box.addItem(_t(_TEXT, "mic_default"), "")
            for d in self.scribe.input_devices():
                self.mic_box.addItem(f"{d['name']} ({int(d.get('default_samplerate') or 0)} Hz)", d["index"])
        bar.addWidget(self.mic_box, 2)
        self.record_btn = QPushButton(_t(_TEXT, "record"))
        self.pause_btn = QPushButton(_t(_TEXT, "pause"))
        self.stop_btn = QPushButton(_t(_TEXT, "stop"))
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
        self.settings_btn = QPushButton(_t(_TEXT, "settings"))
        self.settings_btn.clicked.connect(self.open_settings)
        bar.addWidget(self.settings_btn)
        from app.gui.mic_dialog import add_mic_test_button

        self.mic_test_btn = add_mic_test_button(self, bar)
        if self.superuser:
            self.templates_btn = QPushButton(_t(_TEXT, "templates"))
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
        self.notice = QLabel(_t(_TEXT, "notice"))
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff4e5; padding: 4px; border: 1px solid #f0c36d;")
        col.addWidget(self.notice)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.addWidget(QLabel(f"<b>{_t(_TEXT, 'transcript')}</b>"))
        srow = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText(_t(_TEXT, "search"))
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
        self.draft_title = QLabel(f"<b>{_t(_TEXT, 'draft')}</b>")
        mcol.addWidget(self.draft_title)
        self.redraft_btn = QPushButton(_t(_TEXT, "redraft"))
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
        rcol.addWidget(QLabel(f"<b>{_t(_TEXT, 'flags')}</b>"))
        self.flags_list = QListWidget()
        self.flags_list.setWordWrap(True)
        self.flags_list.currentRowChanged.connect(self._flag_selected)
        rcol.addWidget(self.flags_list)
        self.accept_btn = QPushButton(_t(_TEXT, "accept_flag"))
        self.accept_btn.clicked.connect(self.accept_selected_flag)
        rcol.addWidget(self.accept_btn)
        split.addWidget(right)
        split.setSizes([520, 600, 280])
        col.addWidget(split, 1)

        foot = QHBoxLayout()
        self.discard_btn = QPushButton(_t(_TEXT, "discard"))
        self.discard_btn.clicked.connect(lambda: self.discard(ask=True))
        self.approve_btn = QPushButton(_t(_TEXT, "approve"))
        self.approve_btn.setStyleSheet("font-weight: bold;")
        self.approve_btn.clicked.connect(self.approve)
        self.receipt = QLabel("")
        self.receipt.setWordWrap(True)
        self.patient = QLineEdit()  # the FHIR sink's patient; not needed for the clipboard
        self.patient.setPlaceholderText(_t(_TEXT, "patient"))
        self.patient.setMaximumWidth(260)
        self.patient.textChanged.connect(self._check_patient)
        self.patient.setVisible(self._sink_name() == "fhir")
        self.retry_btn = QPushButton(_t(_TEXT, "retry"))
        self.retry_btn.clicked.connect(self._send)
        self.copy_btn = QPushButton(_t(_TEXT, "to_clipboard"))
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
        self.status.setText(_t(_TEXT, "loading_asr"))
        task = workers.TaskWorker(self.scribe.load, self._loader_progress)
        self._loader = _Relay(self)
        self._loader.message.connect(self._on_load_progress)
        task.result.connect(self._on_loaded)
        task.failed.connect(self._on_load_failed)
        self.runner.start(task)

    def _loader_progress(self, stage: str) -> None:  # called on the worker thread
        self._loader.message.emit(stage)

    def _on_load_progress(self, stage: str) -> None:
        self.status.setText(_t(_TEXT, {"asr": "loading_asr", "llm": "loading_llm"}.get(stage, "ready")))

    def _on_loaded(self, _: Any = None) -> None:
        self._asr_ready = True
        self.busy.hide()
        problem = self.scribe.llm_problem
        self.status.setText(_t(_TEXT, "no_llm", why=problem) if problem else _t(_TEXT, "ready"))
        self._refresh_buttons()
        self.models_ready.emit()

    def _on_load_failed(self, why: str) -> None:
        self.busy.hide()
        self.status.setText(_t(_TEXT, "load_failed", why=why))
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
        try:
            source = self._make_source(self.mic_box.currentData())
        except Exception as exc:
            self.status.setText(_t(_TEXT, "error", why=workers._one_line(exc)))
            return
        self.receipt.setText("")
        tag = object()  # events carry their consultation's tag: a late one from an ended consultation is ignored
        c = self.scribe.consultation(self.template, source, on_event=functools.partial(self._events.post, tag))
        self.consultation, self._tag = c, tag
        self._elapsed, self._last_tick = 0.0, time.monotonic()
        self._tick.start()
        self._clear_draft()
        self._render_transcript()
        c.start()
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
        self.status.setText(_t(_TEXT, "drafting"))
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
        from summarize.consultation.events import Committed, Level, RecordingEnded, Tentative

        if self.consultation is None or tag is not self._tag:
            return  # from a consultation that already ended
        if isinstance(ev, Level):
            self.level.setValue(int(max(-60.0, min(0.0, ev.dbfs))))
        elif isinstance(ev, Committed):
            self._render_transcript()
            if not self._preview_timer.isActive():
                self._preview_timer.start()
        elif isinstance(ev, Tentative):
            self._render_transcript()
        elif isinstance(ev, RecordingEnded):
            self._on_recording_finished(ev.error)

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
            self.status.setText(_t(_TEXT, "error", why=error))
        if s is None or s.state is State.DONE:
            return
        self._draft()

    # -- drafting ---------------------------------------------------------------------
    def _draft(self, redraft: bool = False) -> None:
        c = self.consultation
        assert c is not None
        self.busy.show()
        if not self.status.text().startswith(_t(_TEXT, "error", why="")[:4]):
            self.status.setText(_t(_TEXT, "drafting"))
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
        self.status.setText(_t(_TEXT, "draft_ready", s=seconds))
        self._show_draft(result.draft, live=False)
        self._render_transcript()
        self._refresh_buttons()
        self.draft_ready.emit()

    def _on_draft_failed(self, why: str) -> None:
        if self.consultation is None:
            return  # discarded while it was drafted
        self.busy.hide()
        self.status.setText(_t(_TEXT, "error", why=why))
        self._refresh_buttons()

    def redraft(self) -> None:
        s = self.session
        if s is None or s.state is not State.REVIEW:
            return
        self._draft(redraft=True)

    def _clear_draft(self) -> None:
        for w in self.section_edits.values():
            w.setParent(None)
            w.deleteLater()
        for lbl in getattr(self, "_section_labels", []):
            lbl.setParent(None)
            lbl.deleteLater()
        self.section_edits = {}
        self._section_labels: list[QLabel] = []
        self.flags_list.clear()
        self.draft_title.setText(f"<b>{_t(_TEXT, 'draft')}</b>")

    def _show_draft(self, draft: Any, *, live: bool) -> None:
        self._clear_draft()
        title = _t(_TEXT, "draft_live") if live else _t(_TEXT, "draft")
        if draft.extractive and not live:
            title += f" – {_t(_TEXT, 'extractive')}"
        self.draft_title.setText(f"<b>{html.escape(title)}</b>")
        at = 0
        for sec in draft.sections:
            lbl = QLabel(f"<b>{html.escape(sec.title)}</b>")
            edit = SectionEdit(sec.id)
            edit.sentences = [(x.text, tuple(x.evidence)) for x in sec.sentences]
            edit.setPlainText(" ".join(x.text for x in sec.sentences))
            edit.setReadOnly(live)
            edit.setMinimumHeight(70)
            edit.sentence_clicked.connect(self._sentence_clicked)
            edit.textChanged.connect(lambda sid=sec.id: self._section_edited(sid))
            self.sections_layout.insertWidget(at, lbl)
            self.sections_layout.insertWidget(at + 1, edit)
            at += 2
            self._section_labels.append(lbl)
            self.section_edits[sec.id] = edit
        if not live:
            self._render_flags()

    def _flagged_texts(self) -> set[str]:
        s = self.session
        return {f.flag.text for f in s.flags if f.resolution is None} if s else set()

    def _render_flags(self) -> None:
        s = self.session
        self.flags_list.clear()
        if s is None:
            return
        for item in s.flags:
            kind = _t(_TEXT, f"flag_kind.{item.flag.kind}") if f"flag_kind.{item.flag.kind}" in _TEXT["nb"] \
                else item.flag.kind
            mark = "✓ " if item.resolution else "⚠ "
            where = f" [{item.flag.section}]" if item.flag.section else ""
            done = f" ({item.resolution})" if item.resolution else ""
            row = QListWidgetItem(f"{mark}{kind}{where}: {item.flag.text}{done}")
            if item.resolution:
                row.setForeground(QColor("#607d8b"))
            self.flags_list.addItem(row)
        flagged = self._flagged_texts()
        for edit in self.section_edits.values():
            edit.mark(flagged)

    def _section_edited(self, section_id: str) -> None:
        s = self.session
        if s is None or s.state is not State.REVIEW:
            return
        s.edit_section(section_id, self.section_edits[section_id].toPlainText())
        self._render_flags()
        self._refresh_buttons()

    def accept_selected_flag(self) -> None:
        s = self.session
        row = self.flags_list.currentRow()
        if s is None or row < 0 or s.state is not State.REVIEW:
            return
        s.resolve_flag(row, "accepted")
        self._render_flags()
        nxt = next((i for i, f in enumerate(s.flags) if f.resolution is None), -1)
        self.flags_list.setCurrentRow(nxt)
        self._refresh_buttons()

    def _flag_selected(self, row: int) -> None:
        s = self.session
        if s is None or row < 0 or row >= len(s.flags):
            return
        flag = s.flags[row].flag
        ids: set[int] = set()
        if flag.detail.isdigit():  # uncertain ASR words carry their segment id
            ids.add(int(flag.detail))
        edit = self.section_edits.get(flag.section or "")
        if edit is not None:
            for sentence, evidence in edit.sentences:
                if flag.text and flag.text in sentence:
                    ids.update(evidence)
        self._selected = ids
        self._render_transcript()

    def _sentence_clicked(self, section_id: str, index: int) -> None:
        edit = self.section_edits.get(section_id)
        if edit is None or index >= len(edit.sentences):
            return
        self._selected = set(edit.sentences[index][1])
        self._render_transcript()

    # -- transcript -------------------------------------------------------------------
    def _render_transcript(self) -> None:
        from summarize.grounding.verify import uncertain_asr_flags
        from summarize.types import Utterance

        s = self.session
        if s is None:
            self.transcript.setHtml("")
            self.hits.setText("")
            return
        dropped = {d.id: d.reason for d in s.filtered.dropped} if s.filtered else {}
        term = self.search.text().strip().lower()
        hits = 0
        rows = []
        for seg in s.segments:
            text = s.edits.get(seg.id, seg.text)
            uncertain: set[str] = set()
            if seg.id not in s.edits and seg.words:
                if seg.id not in self._uncertain:
                    flags = uncertain_asr_flags([Utterance.from_segment(seg)])
                    self._uncertain[seg.id] = {w.lower() for f in flags for w in f.text.split()}
                uncertain = self._uncertain[seg.id]
            body, n = _markup(text, uncertain, term)
            hits += n
            links = (f' <a href="edit:{seg.id}">{_t(_TEXT, "edit")}</a>'
                     f' <a href="delete:{seg.id}">{_t(_TEXT, "delete")}</a>')
            style = f"background:{_EVIDENCE_BG};" if seg.id in self._selected else ""
            stamp = f'<span style="color:#888">{int(seg.start // 60):02d}:{int(seg.start % 60):02d}</span>'
            if seg.id in s.deleted:
                rows.append(f'<p style="color:#999">{stamp} <s>{body}</s> ({_t(_TEXT, "deleted")})</p>')
            elif seg.id in dropped:
                rows.append(f'<p style="color:#888;{style}">{stamp} <s>{body}</s> '
                            f'<i>({html.escape(dropped[seg.id])})</i> '
                            f'<a href="restore:{seg.id}">{_t(_TEXT, "restore")}</a></p>')
            else:
                rows.append(f'<p style="{style}">{stamp} {body}{links}</p>')
        if s.tentative:
            rows.append(f'<p style="color:#9e9e9e"><i>{html.escape(s.tentative)}</i></p>')
        self.transcript.setHtml("".join(rows))
        self.hits.setText(_t(_TEXT, "hits", n=hits) if term else "")
        if s.state in (State.RECORDING, State.PAUSED):
            self.transcript.moveCursor(QTextCursor.MoveOperation.End)

    def _transcript_link(self, url: Any) -> None:
        action, _, sid = url.toString().partition(":")
        if not sid.isdigit() or self.session is None:
            return
        seg_id = int(sid)
        if action == "restore":
            self.restore_segment(seg_id)
        elif action == "delete":
            self.delete_segment(seg_id)
        elif action == "edit":
            seg = next((x for x in self.session.segments if x.id == seg_id), None)
            if seg is None:
                return
            text, ok = QInputDialog.getMultiLineText(self, _t(_TEXT, "edit_title"), _t(_TEXT, "edit_label"),
                                                     self.session.edits.get(seg_id, seg.text))
            if ok:
                self.edit_segment(seg_id, text)

    def restore_segment(self, segment_id: int) -> None:
        """Put a dropped small-talk segment back: it goes into the draft."""
        self._transcript_changed(lambda s: s.restore(segment_id))

    def delete_segment(self, segment_id: int) -> None:
        self._transcript_changed(lambda s: s.delete_segment(segment_id))

    def edit_segment(self, segment_id: int, text: str) -> None:
        self._transcript_changed(lambda s: s.edit_segment(segment_id, text))

    def _transcript_changed(self, change: Any) -> None:
        c = self.consultation
        if c is None:
            return
        try:
            change(c)  # the consultation filters again (and updates the live note while recording)
        except SessionError as exc:
            self.status.setText(_t(_TEXT, "error", why=exc))
            return
        s = c.session
        if s.state is State.REVIEW:
            self._changed_after_draft = True
            self.redraft_btn.show()
            self.status.setText(_t(_TEXT, "changed"))
        self._render_transcript()
        self._refresh_buttons()

    # -- approve / discard ------------------------------------------------------------
    def approve(self) -> None:
        """The clinician approves: the note is frozen and goes to the configured sink. It
        stays in memory (with Send again / Copy to the clipboard) until it arrived."""
        s = self.session
        if s is None or not s.can_approve or self._changed_after_draft or self._delivery is not None:
            return
        from summarize.delivery.sinks import SinkError

        if self._sink_name() == "fhir" and self._check_patient() is not None:
            self.patient.setFocus()
            return
        from summarize.delivery.audit import AuditError

        c = self.consultation
        assert c is not None
        try:  # no unaudited delivery: when the audit log fails, the note stays here, approvable again
            c.approve(self._make_sink(self._sink_name()))
        except (SinkError, AuditError, SessionError) as exc:
            self.receipt.setText(_t(_TEXT, "send_failed", why=exc))
            return
        self._delivery = c.delivery
        for edit in self.section_edits.values():  # approved means approved: no edits after this
            edit.setReadOnly(True)
        self._send()

    def _sink_name(self) -> str:
        return str(getattr(getattr(self.settings, "app", None), "sink", "clipboard") or "clipboard")

    def _make_sink(self, name: str) -> Any:
        if name == "fhir":
            return self.scribe.sink("fhir", patient=self.patient.text().strip())
        clear_s = getattr(getattr(self.settings, "app", None), "clipboard_clear_s", 0)
        if name == self._sink_name():
            return self.scribe.sink(name, set_text=self._set_clipboard, get_text=self.clipboard.text,
                                    clear_after_s=clear_s, schedule=self._schedule)
        from summarize.delivery.sinks import ClipboardSink

        return ClipboardSink(self._set_clipboard, self.clipboard.text, clear_after_s=clear_s,
                             schedule=self._schedule)

    def _check_patient(self) -> str | None:
        """The patient field's problem (shown in red), None when it is a valid patient."""
        from summarize.delivery.fhir_config import SinkConfigError
        from summarize.delivery.fhir_resource import parse_subject

        try:
            parse_subject(self.patient.text())
            problem = None
        except SinkConfigError as exc:
            problem = str(exc)
        empty = not self.patient.text().strip()
        self.patient.setStyleSheet("" if problem is None or empty else "border: 1px solid #c0392b;")
        self.patient.setToolTip(problem or "")
        return problem

    def _send(self) -> None:
        """Deliver the approved note: the clipboard at once, other sinks on a worker thread."""
        d = self._delivery
        if d is None:
            return
        self.retry_btn.hide()
        self.copy_btn.hide()
        self.approve_btn.setEnabled(False)
        if d.sink.name == "clipboard":  # Qt's clipboard lives on the UI thread
            from summarize.delivery.sinks import SinkError

            try:
                self._delivered(self.consultation.send())  # type: ignore[union-attr]
            except SinkError as exc:
                self._delivery_failed(str(exc))
            return
        self.busy.show()
        self._sending = True
        self._refresh_buttons()
        self.receipt.setText(_t(_TEXT, "sending"))
        task = workers.TaskWorker(self.consultation.send)  # type: ignore[union-attr]
        task.result.connect(self._delivered)
        task.failed.connect(self._delivery_failed)
        self.runner.start(task)

    def _delivered(self, receipt: Any) -> None:
        self._sending = False
        self.busy.hide()
        self._end("approved")
        self.receipt.setText(_t(_TEXT, "sent", detail=receipt.detail))

    def _delivery_failed(self, why: str) -> None:
        self._sending = False
        self.busy.hide()
        self._refresh_buttons()
        self.receipt.setText(_t(_TEXT, "send_failed", why=why))
        self.retry_btn.show()
        self.copy_btn.setVisible(self._delivery is not None and self._delivery.sink.name != "clipboard")

    def _send_to_clipboard(self) -> None:
        """The EPJ does not take the note: "klipp og lim" instead (the same approved note)."""
        d = self._delivery
        if d is None:
            return
        d.sink = self._make_sink("clipboard")
        self._send()

    def _set_clipboard(self, plain: str, rich: str | None) -> None:
        if rich:
            from PySide6.QtCore import QMimeData

            data = QMimeData()
            data.setText(plain)
            data.setHtml(rich)
            self.clipboard.setMimeData(data)
            _plain_clipboard_at_exit()
        else:
            self.clipboard.setText(plain)

    def _schedule(self, seconds: float, fn: Any) -> None:
        QTimer.singleShot(int(seconds * 1000), self, fn)

    def discard(self, ask: bool = True) -> bool:
        if self.session is None or self.session.state is State.DONE:
            return True
        if ask and QMessageBox.question(self, _t(_TEXT, "discard"), _t(_TEXT, "discard_q")) \
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

        dlg = SettingsDialog(self.settings, input_devices=self.scribe.input_devices(), parent=self)
        dlg.settings_saved.connect(self._settings_saved)
        dlg.exec()

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
            self.status.setText(_t(_TEXT, "saved_later") if models_changed else _t(_TEXT, "saved"))

    def open_template_editor(self) -> None:
        from PySide6.QtWidgets import QDialog

        from app.gui.template_editor import TemplateEditor

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
        self.pause_btn.setText(_t(_TEXT, "resume") if state is State.PAUSED else _t(_TEXT, "pause"))
        self.stop_btn.setEnabled(state in (State.RECORDING, State.PAUSED))
        self.template_box.setEnabled(idle)
        self.mic_box.setEnabled(idle)
        self.rec_label.setText(_t(_TEXT, "recording") if state is State.RECORDING
                               else _t(_TEXT, "paused") if state is State.PAUSED else "")
        self.approve_btn.setEnabled(bool(s and s.can_approve and not self._changed_after_draft
                                         and self._delivery is None))
        self.discard_btn.setEnabled(s is not None and state is not State.DONE and not self._sending)
        self.accept_btn.setEnabled(state is State.REVIEW and bool(s and s.unresolved))


_exit_hook = False


def _plain_clipboard_at_exit() -> None:
    """PySide6 6.12 crashes at interpreter exit while the clipboard holds rich mime data the
    program set; at exit the note is left on the clipboard as plain text instead."""
    global _exit_hook
    if _exit_hook:
        return
    _exit_hook = True
    import atexit

    def plain() -> None:
        board = QApplication.clipboard() if QApplication.instance() else None
        mime = board.mimeData() if board is not None else None
        if mime is not None and mime.hasHtml():
            board.setText(board.text())

    atexit.register(plain)


def template_save_dir(settings: Any) -> Path:
    """Where the superuser's templates are saved: the configured directory, else the
    user data directory (add it to SCRIBE_TEMPLATE_DIR so drafting finds them)."""
    configured = getattr(getattr(settings, "app", None), "template_dir", "")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    path = Path(user_data_dir("ambient-scribe", appauthor=False)) / "templates"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Relay(QObject):
    """Carries a worker thread's progress to the UI thread."""

    message = Signal(str)


def _markup(text: str, uncertain: set[str], term: str) -> tuple[str, int]:
    """The segment's text as HTML: uncertain words highlighted, search hits marked."""
    out, hits = [], 0
    for word in text.split():
        bare = word.strip(".,;:!?()«»\"'").lower()
        w = html.escape(word)
        if term and term in word.lower():
            hits += 1
            w = f'<span style="background:{_SEARCH_BG}">{w}</span>'
        elif bare and bare in uncertain:
            w = f'<span style="background:{_UNCERTAIN_BG}" title="usikker">{w}</span>'
        out.append(w)
    return " ".join(out), hits
