"""The "Test microphone" dialog (issue #6): the same test as ``scribe bench mic``.

Pick the microphone, press Start: the dialog records a few seconds of silence ("Vær
stille"), then the clinician reads the passage shown in large type ("Les teksten høyt"),
with a level meter and a progress bar. :func:`hardware.mic.run_mic_test` runs on a worker
thread (the window never freezes); the verdict is shown in colour with its reasons and
the main numbers, and "Lagre rapport …" writes the HTML report. The recordings stay in
memory and are gone when the test ends.

Open it from the main window with :func:`add_mic_test_button` (a button in its toolbar)
or :func:`open_mic_test`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui import i18n, workers
from app.gui.i18n import text
from asr.errors import first_line

logger = logging.getLogger(__name__)

_TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Test mikrofon",
        "button": "Test mikrofon",
        "intro": "Testen tar først opp {silence:g} sekunder stillhet i rommet, deretter at du "
        "leser teksten under høyt ({speech:g} sekunder) med vanlig stemme og avstand. "
        "Ingenting lagres; opptaket slettes når testen er ferdig.",
        "device": "Mikrofon:",
        "device_item": "{name} ({rate} Hz, {ch} kanal(er))",
        "no_device": "Ingen mikrofon funnet: koble til en og åpne testen på nytt.",
        "start": "Start",
        "again": "Test på nytt",
        "save": "Lagre rapport …",
        "close": "Lukk",
        "ready": "Trykk Start når du er klar.",
        "check": "Sjekker mikrofonen …",
        "silence": "Vær stille – {s:.0f} s igjen",
        "speech": "Les teksten høyt – {s:.0f} s igjen",
        "analyse": "Analyserer opptaket …",
        "transcribe": "Gjenkjenner talen …",
        "report": "Lager rapporten …",
        "done": "Ferdig.",
        "failed": "Testen kunne ikke fullføres: {why}",
        "stopped": "Testen ble avbrutt.",
        "no_asr": "Talemodellen er ikke lastet: ordfeilraten måles ikke.",
        "verdict.ok": "GODT NOK",
        "verdict.marginal": "I GRENSELAND",
        "verdict.unfit": "UEGNET",
        "n.snr": "Signal/støy",
        "n.noise": "Støygulv",
        "n.level": "Talenivå",
        "n.clip": "Klipping",
        "n.bandwidth": "Båndbredde",
        "n.dropouts": "Utfall",
        "n.wer": "Ordfeilrate",
        "not_measured": "ikke målt",
        "save_title": "Lagre mikrofonrapport",
        "saved": "Rapporten er lagret: {path}",
        "save_failed": "Rapporten kunne ikke lagres: {why}",
        "busy_title": "Opptak pågår",
        "busy": "Stopp opptaket før du tester mikrofonen.",
        "html_filter": "HTML-rapport (*.html)",
        "file_name": "mikrofontest.html",
    },
    "en": {
        "title": "Test microphone",
        "button": "Test microphone",
        "intro": "The test first records {silence:g} seconds of silence in the room, then you "
        "reading the text below aloud ({speech:g} seconds) at your normal voice and "
        "distance. Nothing is stored; the recording is deleted when the test ends.",
        "device": "Microphone:",
        "device_item": "{name} ({rate} Hz, {ch} channel(s))",
        "no_device": "No microphone found: connect one and open the test again.",
        "start": "Start",
        "again": "Test again",
        "save": "Save report …",
        "close": "Close",
        "ready": "Press Start when you are ready.",
        "check": "Checking the microphone …",
        "silence": "Be quiet – {s:.0f} s left",
        "speech": "Read the text aloud – {s:.0f} s left",
        "analyse": "Analysing the recording …",
        "transcribe": "Recognising the speech …",
        "report": "Writing the report …",
        "done": "Done.",
        "failed": "The test could not finish: {why}",
        "stopped": "The test was stopped.",
        "no_asr": "The speech model is not loaded: the word error rate is not measured.",
        "verdict.ok": "OK",
        "verdict.marginal": "MARGINAL",
        "verdict.unfit": "UNFIT",
        "n.snr": "SNR",
        "n.noise": "Noise floor",
        "n.level": "Speech level",
        "n.clip": "Clipping",
        "n.bandwidth": "Bandwidth",
        "n.dropouts": "Dropouts",
        "n.wer": "Word error rate",
        "not_measured": "not measured",
        "save_title": "Save microphone report",
        "saved": "The report was saved: {path}",
        "save_failed": "The report could not be saved: {why}",
        "busy_title": "Recording",
        "busy": "Stop the recording before testing the microphone.",
        "html_filter": "HTML report (*.html)",
        "file_name": "microphone-test.html",
    },
}

VERDICT_STYLE = {
    "ok": "color: #1b5e20; background: #e8f5e9; border: 1px solid #1b5e20;",
    "marginal": "color: #7d4e00; background: #fff4e5; border: 1px solid #f0c36d;",
    "unfit": "color: #b00020; background: #fdecea; border: 1px solid #b00020;",
}
ERROR_STYLE = "color: #b00020;"


def _t(key: str, **fmt: object) -> str:
    return text(_TEXT, key, **fmt)


class MicTestWorker(QObject):
    """Runs :func:`hardware.mic.run_mic_test` on a worker thread; its callbacks become
    signals (queued to the dialog). ``failed`` carries one line ("" when stopped)."""

    progress = Signal(str, float)
    level = Signal(float)
    result = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._kwargs = kwargs
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    @Slot()
    def run(self) -> None:
        from hardware.mic import run_mic_test
        from hardware.mic_capture import MicTestCancelled

        try:
            out = run_mic_test(
                progress=self.progress.emit,
                on_level=self.level.emit,
                stop=self.stop_event,
                **self._kwargs,
            )
        except MicTestCancelled:
            self.failed.emit("")
        except Exception as exc:  # ScribeError: one line; anything else: its type only
            logger.warning("microphone test failed: %s", type(exc).__name__)
            self.failed.emit(first_line(exc))
        else:
            self.result.emit(out)
        finally:
            self._kwargs = {}
            self.finished.emit()


class MicTestDialog(QDialog):
    """The microphone test. ``sd``: the sounddevice module (tests inject a fake);
    ``devices``: the input devices (default: asked from ``sd``); ``transcriber_factory``:
    ``AsrEngine.transcriber`` of the loaded model (``None``: no WER); ``passage_language``:
    "nn" for the nynorsk passage; ``seconds_*``: the recording lengths."""

    test_finished = Signal(object)  # the MicTestResult

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        sd: Any | None = None,
        devices: list[dict[str, Any]] | None = None,
        device: Any = None,
        transcriber_factory: Any = None,
        model_id: str | None = None,
        passage_language: str | None = "nb",
        seconds_silence: float = 5.0,
        seconds_speech: float = 30.0,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        from hardware.passage import passage

        self._sd = sd
        self._factory = transcriber_factory
        self._model_id = model_id
        self.passage = passage(passage_language)
        self.seconds = {"silence": float(seconds_silence), "speech": float(seconds_speech)}
        self._fingerprint = fingerprint
        self.result: Any = None
        self.worker: MicTestWorker | None = None
        self.runner = workers.Runner(self)
        if devices is None:
            devices = self._list_devices()
        self.setWindowTitle(_t("title"))
        self._build(devices, device)
        self.resize(760, 620)

    def _list_devices(self) -> list[dict[str, Any]]:
        from asr.sources import input_devices_or_none

        return input_devices_or_none(self._sd)

    # -- layout -----------------------------------------------------------------------
    def _build(self, devices: list[dict[str, Any]], device: Any) -> None:
        col = QVBoxLayout(self)
        intro = QLabel(_t("intro", silence=self.seconds["silence"], speech=self.seconds["speech"]))
        intro.setWordWrap(True)
        col.addWidget(intro)

        form = QFormLayout()
        self.device_box = QComboBox()
        for d in devices:
            self.device_box.addItem(
                _t(
                    "device_item",
                    name=d["name"],
                    rate=int(d.get("default_samplerate") or 0),
                    ch=int(d.get("channels") or 1),
                ),
                d["index"],
            )
        if device not in (None, ""):
            idx = self.device_box.findData(device)
            if idx >= 0:
                self.device_box.setCurrentIndex(idx)
        form.addRow(_t("device"), self.device_box)
        col.addLayout(form)

        self.passage_label = QLabel(self.passage)
        self.passage_label.setWordWrap(True)
        self.passage_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = QFont(self.passage_label.font())
        font.setPointSizeF(max(15.0, font.pointSizeF() * 1.5))
        self.passage_label.setFont(font)
        self.passage_label.setStyleSheet(
            "background: #fafafa; border: 1px solid #d0d7de; padding: 12px;"
        )
        col.addWidget(self.passage_label, 1)

        self.stage_label = QLabel(_t("ready") if devices else _t("no_device"))
        stage_font = QFont(self.stage_label.font())
        stage_font.setPointSizeF(stage_font.pointSizeF() * 1.3)
        stage_font.setBold(True)
        self.stage_label.setFont(stage_font)
        col.addWidget(self.stage_label)

        meters = QHBoxLayout()
        self.level = QProgressBar()
        self.level.setRange(-60, 0)
        self.level.setValue(-60)
        self.level.setTextVisible(False)
        self.level.setFixedWidth(160)
        self.level.setToolTip("dBFS")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        meters.addWidget(self.level)
        meters.addWidget(self.progress, 1)
        col.addLayout(meters)

        self.verdict_label = QLabel("")
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        vfont = QFont(self.verdict_label.font())
        vfont.setPointSizeF(vfont.pointSizeF() * 1.6)
        vfont.setBold(True)
        self.verdict_label.setFont(vfont)
        self.verdict_label.hide()
        col.addWidget(self.verdict_label)
        self.reasons_label = QLabel("")
        self.reasons_label.setWordWrap(True)
        self.reasons_label.setTextFormat(Qt.TextFormat.RichText)
        col.addWidget(self.reasons_label)
        self.numbers_label = QLabel("")
        self.numbers_label.setWordWrap(True)
        self.numbers_label.setTextFormat(Qt.TextFormat.RichText)
        col.addWidget(self.numbers_label)
        self.status = QLabel("" if self._factory is not None else _t("no_asr"))
        self.status.setWordWrap(True)
        col.addWidget(self.status)

        buttons = QHBoxLayout()
        self.start_btn = QPushButton(_t("start"))
        self.start_btn.setEnabled(bool(devices))
        self.start_btn.clicked.connect(self.start)
        self.save_btn = QPushButton(_t("save"))
        self.save_btn.setEnabled(False)
        self.save_btn.clicked.connect(self._save_clicked)
        self.close_btn = QPushButton(_t("close"))
        self.close_btn.clicked.connect(self.close)
        buttons.addWidget(self.start_btn)
        buttons.addWidget(self.save_btn)
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        col.addLayout(buttons)

    # -- the test -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        if self.running or self.device_box.count() == 0:
            return
        self.result = None
        self.verdict_label.hide()
        self.reasons_label.setText("")
        self.numbers_label.setText("")
        self.status.setStyleSheet("")
        self.status.setText("" if self._factory is not None else _t("no_asr"))
        self.save_btn.setEnabled(False)
        self.start_btn.setEnabled(False)
        self.device_box.setEnabled(False)
        self.progress.setValue(0)
        self.stage_label.setText(_t("check"))
        lang = "nb" if i18n.language() == "nb" else "en"
        # matplotlib's first import may set MPLCONFIGDIR for a moment: done here, on the
        # UI thread, so the worker only draws and never changes the environment
        from hardware.plots import load_matplotlib

        load_matplotlib()
        self.worker = MicTestWorker(
            device=self.device_box.currentData(),
            sd=self._sd,
            seconds_silence=self.seconds["silence"],
            seconds_speech=self.seconds["speech"],
            reference=self.passage,
            transcriber_factory=self._factory,
            model_id=self._model_id,
            lang=lang,
            fingerprint=self._fingerprint,
        )
        # bound methods only: PySide would run a lambda on the worker thread
        self.worker.progress.connect(self._on_progress)
        self.worker.level.connect(self._on_level)
        self.worker.result.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self._on_finished)
        self.runner.start(self.worker)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    @Slot(str, float)
    def _on_progress(self, stage: str, fraction: float) -> None:
        if stage in self.seconds:
            left = self.seconds[stage] * (1.0 - fraction)
            self.stage_label.setText(_t(stage, s=max(0.0, left)))
            total = self.seconds["silence"] + self.seconds["speech"]
            done = fraction * self.seconds[stage] + (
                self.seconds["silence"] if stage == "speech" else 0
            )
            self.progress.setValue(int(round(100 * done / total)) if total > 0 else 0)
        elif stage in ("check", "analyse", "transcribe", "report", "done"):
            self.stage_label.setText(_t(stage))
            self.level.setValue(-60)
            if stage == "transcribe":
                self.progress.setValue(int(round(100 * fraction)))
            elif stage != "check":
                self.progress.setValue(100)

    @Slot(float)
    def _on_level(self, dbfs: float) -> None:
        self.level.setValue(int(max(-60.0, min(0.0, dbfs))))

    @Slot(object)
    def _on_result(self, result: Any) -> None:
        self.result = result
        v = result.verdict
        self.verdict_label.setText(_t(f"verdict.{v}"))
        self.verdict_label.setStyleSheet(VERDICT_STYLE.get(v, "") + " padding: 8px;")
        self.verdict_label.show()
        import html

        items = "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
        self.reasons_label.setText(f"<ul>{items}</ul>")
        a = result.analysis
        wer = f"{100 * result.wer:.0f} %" if result.wer is not None else _t("not_measured")
        rows = [
            (_t("n.snr"), f"{a.snr_db:.1f} dB"),
            (_t("n.noise"), f"{a.noise_floor_dbfs:.1f} dBFS"),
            (_t("n.level"), f"{a.speech_level_dbfs:.1f} dBFS"),
            (_t("n.clip"), f"{a.clipping_pct:.2f} %"),
            (_t("n.bandwidth"), f"{a.bandwidth_hz / 1000:.1f} kHz"),
            (_t("n.dropouts"), str(a.dropouts)),
            (_t("n.wer"), wer),
        ]
        self.numbers_label.setText(
            "<table cellspacing='2'>"
            + "".join(
                f"<tr><td>{html.escape(k)}:&nbsp;</td><td><b>{html.escape(v)}</b></td></tr>"
                for k, v in rows
            )
            + "</table>"
        )
        self.stage_label.setText(_t("done"))
        self.save_btn.setEnabled(result.report is not None)
        self.test_finished.emit(result)

    @Slot(str)
    def _on_failed(self, why: str) -> None:
        self.stage_label.setText(_t("stopped") if not why else _t("ready"))
        if why:
            self.status.setStyleSheet(ERROR_STYLE)
            self.status.setText(_t("failed", why=why))

    @Slot()
    def _on_finished(self) -> None:
        self.worker = None
        self.level.setValue(-60)
        self.start_btn.setText(_t("again"))
        self.start_btn.setEnabled(self.device_box.count() > 0)
        self.device_box.setEnabled(True)

    # -- report -------------------------------------------------------------------------
    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, _t("save_title"), str(Path.home() / _t("file_name")), _t("html_filter")
        )
        if path:
            self.save_report(Path(path))

    def save_report(self, path: Path) -> Path | None:
        """Write the HTML report of the last test to ``path``."""
        if self.result is None or self.result.report is None:
            return None
        if path.suffix.lower() not in (".html", ".htm"):
            path = path.with_suffix(".html")
        try:
            written = self.result.report.write_html(path)
        except OSError as exc:  # hardware.report.ReportError is an OSError
            self.status.setStyleSheet(ERROR_STYLE)
            self.status.setText(_t("save_failed", why=first_line(exc)))
            return None
        self.status.setStyleSheet("")
        self.status.setText(_t("saved", path=str(written)))
        return Path(written)

    # -- closing ------------------------------------------------------------------------
    def done(self, code: int) -> None:  # reject(), Esc, the window's close button
        self.stop()
        self.runner.wait_all()
        super().done(code)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        self.stop()
        self.runner.wait_all()
        super().closeEvent(event)


# ----------------------------------------------------------------- the main window


def open_mic_test(window: Any, **kwargs: Any) -> MicTestDialog | None:
    """Open the dialog for the main window: its engine's sounddevice module, device list,
    loaded Whisper model and selected microphone; refused while a consultation records."""
    session = getattr(window, "session", None)
    state = getattr(getattr(session, "state", None), "name", "")
    if state in ("RECORDING", "PAUSED"):
        QMessageBox.information(window, _t("busy_title"), _t("busy"))
        return None
    scribe = getattr(window, "scribe", None)
    asr = getattr(scribe, "asr", None)
    settings = getattr(window, "settings", None)
    mic_box = getattr(window, "mic_box", None)
    options: dict[str, Any] = {
        "sd": getattr(scribe, "sd", None),
        "devices": scribe.input_devices() if scribe is not None else None,
        "device": mic_box.currentData() if mic_box is not None else None,
        "transcriber_factory": asr.transcriber if asr is not None else None,
        "model_id": getattr(asr, "model_id", None),
        "passage_language": getattr(getattr(settings, "asr", None), "language", "no"),
    }
    options.update(kwargs)
    dlg = MicTestDialog(window, **options)
    dlg.exec()
    return dlg


def add_mic_test_button(window: Any, layout: Any) -> QPushButton:
    """A "Test mikrofon" button in ``layout`` (the main window's toolbar) that opens the
    dialog. Two lines in ``MainWindow._build``, after the settings button::

        from app.gui.mic_dialog import add_mic_test_button
        self.mic_test_btn = add_mic_test_button(self, bar)
    """
    button = QPushButton(_t("button"))
    opener = _Opener(window, button)
    button.clicked.connect(opener.open)
    layout.addWidget(button)
    return button


class _Opener(QObject):
    """Keeps the window reference for the button (a bound slot, parented to the button)."""

    def __init__(self, window: Any, parent: QObject) -> None:
        super().__init__(parent)
        self._window = window

    @Slot()
    def open(self) -> None:
        open_mic_test(self._window)
