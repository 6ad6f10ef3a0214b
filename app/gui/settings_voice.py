"""The settings dialog's Stemmeprofil tab (issue #19): roles from the voices on or off, where
the clinician's voice profile is, whether there is one (when it was made, from how much
speech, how clean), making one (the passage read for ~35 s into the chosen microphone, or a
recording from a file) and deleting it.

Enrolment runs :func:`hardware.voice.enroll` in :class:`EnrollWorker` on a worker thread, as
the microphone test does (:mod:`app.gui.mic_dialog`): the recording stays in memory and is
dropped; only the profile is written (mode 0600, :func:`asr.speakers.profile.save`). A
recording that is not good enough shows its one line and stores nothing (an older profile
stays as it was).

:class:`VoicePage` is the layer of :class:`app.gui.settings_dialog.SettingsDialog` between
:class:`app.gui.settings_epj.EpjPage` and the dialog; the dialog passes ``sd`` (the
sounddevice module; tests inject a fake) and ``voice_encoder`` (the one the app loaded, or
None: loaded here, on the worker thread).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.gui import i18n
from app.gui.settings_epj import EpjPage
from app.gui.settings_text import ERROR_STYLE, OK_STYLE
from app.gui.settings_text import tr as _t
from app.settings import Settings
from asr.errors import ScribeError, first_line

logger = logging.getLogger(__name__)

GOOD_SNR_DB = 25.0  # a profile above both is "god kvalitet"; enrolment itself needs 15 dB and 0.6
GOOD_CONSISTENCY = 0.8
HINT_STYLE = "color: #455a64;"


class EnrollWorker(QObject):
    """Records (or reads) the clinician reading the passage and stores only the voice profile
    at ``path``. ``stage`` says what it does ("encoder", "record", "file", "enroll"),
    ``progress`` carries the recorded fraction and the level (dBFS), ``result`` the stored
    :class:`asr.speakers.profile.VoiceProfile`, ``failed`` one line ("" when cancelled)."""

    stage = Signal(str)
    progress = Signal(float, float)
    result = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, path: Path, *, audio_file: Path | None = None, device: str | int | None = None,
                 seconds: float = 35.0, sd: Any = None, encoder: Any = None) -> None:
        super().__init__()
        self._path = Path(path)
        self._file = audio_file
        self._device = device
        self._seconds = float(seconds)
        self._sd = sd
        self._encoder = encoder
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    @Slot()
    def run(self) -> None:
        from asr.speakers import profile as voice_profile
        from hardware.mic_capture import MicTestCancelled
        from hardware.voice import enroll

        try:
            encoder = self._encoder
            if encoder is None:  # missing weights fail before anybody reads aloud
                self.stage.emit("encoder")
                from asr.speakers.encoder import VoiceEncoder

                encoder = VoiceEncoder()
            audio = self._audio()
            if self.stop_event.is_set():
                raise MicTestCancelled("enrolment cancelled")
            self.stage.emit("enroll")
            profile = enroll(audio, encoder)
            del audio
            voice_profile.save(profile, self._path)
        except MicTestCancelled:
            self.failed.emit("")
        except Exception as exc:  # ScribeError: one line; anything else: its type in the log
            logger.warning("voice enrolment failed: %s", type(exc).__name__)
            self.failed.emit(first_line(exc))
        else:
            self.result.emit(profile)
        finally:
            self._encoder = None
            self.finished.emit()

    def _audio(self) -> Any:
        """16 kHz mono float32 in memory: the file decoded, or the microphone recorded."""
        if self._file is not None:
            self.stage.emit("file")
            from asr.sources import decode_file

            audio, problem = decode_file(self._file)
            if problem is not None:
                raise problem
            return audio
        from hardware.mic_asr import to_16k_mono
        from hardware.mic_capture import ANALYSIS_RATE, check_device, record

        choice = check_device(self._device, ANALYSIS_RATE, self._sd)  # another rate when it must
        self.stage.emit("record")
        audio, _xruns = record(choice, self._seconds, sd=self._sd, on_progress=self.progress.emit,
                               stop=self.stop_event)
        return to_16k_mono(audio, choice.sample_rate)


class VoicePage(EpjPage):
    """Builds the Stemmeprofil tab and makes, shows and deletes the voice profile."""

    profile_changed = Signal()  # a profile was stored or deleted (the app reloads it)

    def _build_voice_tab(self) -> QWidget:
        from asr.speakers.profile import default_path
        from hardware.passage import passage
        from hardware.voice import RECORD_S

        self.enroll_seconds = RECORD_S
        self._enroll_worker: EnrollWorker | None = None
        page = QWidget()
        col = QVBoxLayout(page)
        form = QFormLayout()
        self.speakers_on = QCheckBox(_t("speakers_on"))
        form.addRow("", self.speakers_on)
        hint = QLabel(_t("speakers_hint"))
        hint.setWordWrap(True)
        hint.setStyleSheet(HINT_STYLE)
        form.addRow("", hint)
        self.profile_path = QLineEdit()
        self.profile_path.setPlaceholderText(_t("profile_path_placeholder", path=str(default_path())))
        self.profile_path.editingFinished.connect(self._show_profile)
        row, self.profile_path_browse = self._row_with_button(self.profile_path, self._browse_profile)
        form.addRow(_t("profile_path"), row)
        col.addLayout(form)

        group = QGroupBox(_t("voice_group"))
        box = QVBoxLayout(group)
        self.profile_status = QLabel("")
        self.profile_status.setWordWrap(True)
        bold = QFont(self.profile_status.font())
        bold.setBold(True)
        self.profile_status.setFont(bold)
        box.addWidget(self.profile_status)
        buttons = QHBoxLayout()
        self.enroll_mic_btn = QPushButton(_t("enroll_mic"))
        self.enroll_mic_btn.clicked.connect(self.enroll_from_mic)
        self.enroll_file_btn = QPushButton(_t("enroll_file"))
        self.enroll_file_btn.clicked.connect(self._pick_audio_file)
        self.delete_profile_btn = QPushButton(_t("delete_profile"))
        self.delete_profile_btn.clicked.connect(self._delete_clicked)
        self.enroll_stop_btn = QPushButton(_t("stop"))
        self.enroll_stop_btn.clicked.connect(self.stop_enrolling)
        self.enroll_stop_btn.hide()
        for b in (self.enroll_mic_btn, self.enroll_file_btn, self.delete_profile_btn, self.enroll_stop_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        box.addLayout(buttons)
        self.consent_label = QLabel(_t("consent"))
        self.consent_label.setWordWrap(True)
        self.consent_label.setStyleSheet("background: #fff4e5; padding: 6px; border: 1px solid #f0c36d;")
        box.addWidget(self.consent_label)
        intro = QLabel(_t("passage_intro", seconds=RECORD_S))
        intro.setWordWrap(True)
        box.addWidget(intro)
        self.passage_label = QLabel(passage(self._settings.asr.language))
        self.passage_label.setWordWrap(True)
        self.passage_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        big = QFont(self.passage_label.font())
        big.setPointSizeF(big.pointSizeF() * 1.25)
        self.passage_label.setFont(big)
        self.passage_label.setStyleSheet("background: #fafafa; border: 1px solid #d0d7de; padding: 10px;")
        box.addWidget(self.passage_label)
        meters = QHBoxLayout()
        self.enroll_stage = QLabel("")
        self.enroll_stage.setFont(bold)
        self.enroll_level = QProgressBar()
        self.enroll_level.setRange(-60, 0)
        self.enroll_level.setValue(-60)
        self.enroll_level.setTextVisible(False)
        self.enroll_level.setFixedWidth(120)
        self.enroll_level.setToolTip("dBFS")
        self.enroll_progress = QProgressBar()
        self.enroll_progress.setRange(0, 100)
        self.enroll_progress.setValue(0)
        meters.addWidget(self.enroll_stage, 1)
        meters.addWidget(self.enroll_level)
        meters.addWidget(self.enroll_progress, 1)
        for meter in (self.enroll_level, self.enroll_progress):  # shown while a profile is made
            policy = meter.sizePolicy()
            policy.setRetainSizeWhenHidden(True)  # the passage above keeps its room
            meter.setSizePolicy(policy)
            meter.hide()
        box.addLayout(meters)
        self.enroll_message = QLabel("")
        self.enroll_message.setWordWrap(True)
        box.addWidget(self.enroll_message)
        col.addWidget(group)
        col.addStretch(1)
        scroll = QScrollArea()  # never cuts the passage off in a small window: it scrolls
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        return scroll

    def _load_voice(self, s: Settings) -> None:
        self.speakers_on.setChecked(s.speakers.mode == "auto")
        self.profile_path.setText(s.speakers.voice_profile)
        self._show_profile()

    def _voice_values(self) -> dict[str, Any]:
        return {"mode": "auto" if self.speakers_on.isChecked() else "off",
                "voice_profile": self.profile_path.text().strip()}

    def _check_paths(self, s: Settings) -> str | None:
        problem = super()._check_paths(s)
        if problem is None and s.speakers.profile_path().is_dir():
            problem = _t("err_profile_dir", path=s.speakers.profile_path())
        return problem

    # -- the profile --------------------------------------------------------------------
    def profile_file(self) -> Path:
        """The profile the tab shows and makes: the path typed, else the default place."""
        from asr.speakers.profile import default_path

        typed = self.profile_path.text().strip()
        return Path(typed).expanduser() if typed else default_path()

    @Slot()
    def _show_profile(self) -> None:
        from asr.speakers import profile as voice_profile

        path = self.profile_file()
        self.profile_path.setToolTip(str(path))
        self.profile_status.setStyleSheet("")
        exists = path.is_file()
        self.delete_profile_btn.setEnabled(exists and self._enroll_worker is None)
        if not exists:
            self.profile_status.setText(_t("profile_none"))
            return
        try:
            summary = voice_profile.load(path).summary()
        except ScribeError as exc:
            self.profile_status.setStyleSheet(ERROR_STYLE)
            self.profile_status.setText(_t("profile_bad", why=first_line(exc)))
            return
        self.profile_status.setText(describe_profile(summary))

    def _browse_profile(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, _t("choose_profile"), str(self.profile_file()),
                                                _t("profile_filter"),
                                                options=QFileDialog.Option.DontConfirmOverwrite)
        if chosen:
            self.profile_path.setText(chosen)
            self._show_profile()

    def _pick_audio_file(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, _t("choose_audio"), str(Path.home()), _t("audio_filter"))
        if chosen:
            self.enroll_from_file(Path(chosen))

    def _delete_clicked(self) -> None:
        if QMessageBox.question(self, _t("delete_profile"), _t("delete_q")) == QMessageBox.StandardButton.Yes:
            self.delete_profile()

    def delete_profile(self) -> bool:
        """Delete the profile (overwritten first); True if there was one."""
        from asr.speakers import profile as voice_profile

        try:
            gone = voice_profile.delete(self.profile_file())
        except ScribeError as exc:
            self._enroll_note(first_line(exc), ERROR_STYLE)
            return False
        self._enroll_note(_t("deleted_profile") if gone else _t("no_profile_to_delete"), OK_STYLE if gone else "")
        self._show_profile()
        if gone:
            self.profile_changed.emit()
        return gone

    # -- enrolment ------------------------------------------------------------------------
    def enroll_from_mic(self) -> None:
        """Record ``enroll_seconds`` from the microphone chosen on the Speech tab."""
        device = self.microphone.currentData() or None
        self._start(EnrollWorker(self.profile_file(), device=device, seconds=self.enroll_seconds,
                                 sd=self._sd, encoder=self._voice_encoder))

    def enroll_from_file(self, audio_file: Path) -> None:
        """A recording of the clinician reading the passage (any format PyAV reads)."""
        self._start(EnrollWorker(self.profile_file(), audio_file=Path(audio_file), encoder=self._voice_encoder))

    @property
    def enrolling(self) -> bool:
        return self._enroll_worker is not None

    def stop_enrolling(self) -> None:
        if self._enroll_worker is not None:
            self._enroll_worker.stop()

    def _start(self, worker: EnrollWorker) -> None:
        if self._enroll_worker is not None:
            return
        self._enroll_worker = worker
        self._enroll_note("", "")
        self._set_enrolling(True)
        # bound methods only: PySide would run a lambda on the worker thread
        worker.stage.connect(self._on_enroll_stage)
        worker.progress.connect(self._on_enroll_progress)
        worker.result.connect(self._on_enrolled)
        worker.failed.connect(self._on_enroll_failed)
        worker.finished.connect(self._on_enroll_finished)
        self.runner.start(worker)

    def _set_enrolling(self, on: bool) -> None:
        for b in (self.enroll_mic_btn, self.enroll_file_btn, self.profile_path, self.profile_path_browse):
            b.setEnabled(not on)
        self.delete_profile_btn.setEnabled(not on and self.profile_file().is_file())
        for w in (self.enroll_stop_btn, self.enroll_level, self.enroll_progress):
            w.setVisible(on)
        self.enroll_progress.setRange(0, 100)
        self.enroll_progress.setValue(0)
        self.enroll_level.setValue(-60)
        if not on:
            self.enroll_stage.setText("")

    def _enroll_note(self, message: str, style: str) -> None:
        self.enroll_message.setStyleSheet(style)
        self.enroll_message.setText(message)

    @Slot(str)
    def _on_enroll_stage(self, stage: str) -> None:
        if stage == "record":
            self.enroll_progress.setRange(0, 100)
            self.enroll_stage.setText(_t("stage_record", s=self.enroll_seconds))
        else:
            self.enroll_progress.setRange(0, 0)  # busy, no fraction
            self.enroll_stage.setText(_t(f"stage_{stage}"))
            self.enroll_level.setValue(-60)

    @Slot(float, float)
    def _on_enroll_progress(self, fraction: float, dbfs: float) -> None:
        self.enroll_progress.setValue(int(round(100 * fraction)))
        self.enroll_stage.setText(_t("stage_record", s=max(0.0, self.enroll_seconds * (1.0 - fraction))))
        self.enroll_level.setValue(int(max(-60.0, min(0.0, dbfs))))

    @Slot(object)
    def _on_enrolled(self, _profile: Any) -> None:
        self._enroll_note(_t("enrolled"), OK_STYLE)
        self.profile_changed.emit()

    @Slot(str)
    def _on_enroll_failed(self, why: str) -> None:
        self._enroll_note(_t("enroll_failed", why=why) if why else _t("enroll_stopped"), ERROR_STYLE if why else "")

    @Slot()
    def _on_enroll_finished(self) -> None:
        self._enroll_worker = None
        self._set_enrolling(False)
        self._show_profile()


def describe_profile(summary: dict[str, Any]) -> str:
    """One line on a profile's :meth:`~asr.speakers.profile.VoiceProfile.summary`: made when,
    from how much speech, how clean, in the UI language."""
    nb = i18n.language() == "nb"
    try:
        made = dt.datetime.fromisoformat(str(summary["created"])).astimezone()
        created = made.strftime("%d.%m.%Y kl. %H:%M" if nb else "%Y-%m-%d %H:%M")
    except ValueError:
        created = str(summary["created"])
    snr, consistency = float(summary["snr_db"]), float(summary["consistency"])
    good = snr >= GOOD_SNR_DB and consistency >= GOOD_CONSISTENCY
    shown = f"{consistency:.2f}".replace(".", ",") if nb else f"{consistency:.2f}"  # 0,94 in Norwegian
    return _t("profile_made", created=created, speech=float(summary["speech_s"]), snr=snr, consistency=shown,
              quality=_t("quality_good" if good else "quality_fair"))
