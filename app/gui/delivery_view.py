"""Approval and delivery in the main window: the approved note goes to the configured sink
(the clipboard at once, the EPJ on a worker thread), with Send again and Copy to the
clipboard when the EPJ refused it. The second link of :class:`MainWindow`."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.gui import workers
from app.gui.i18n import text as _t
from app.gui.review_view import ReviewView
from app.gui.window_texts import TEXT
from summarize.consultation.session import SessionError


class DeliveryView(ReviewView):
    """Approve → sink → receipt for :class:`app.gui.main_window.MainWindow` (see
    :class:`app.gui.review_view.ReviewView` for why this is a chain of Qt subclasses)."""

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
            self.receipt.setText(_t(TEXT, "send_failed", why=exc))
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
        self.receipt.setText(_t(TEXT, "sending"))
        task = workers.TaskWorker(self.consultation.send)  # type: ignore[union-attr]
        task.result.connect(self._delivered)
        task.failed.connect(self._delivery_failed)
        self.runner.start(task)

    def _delivered(self, receipt: Any) -> None:
        self._sending = False
        self.busy.hide()
        self._end("approved")
        self.receipt.setText(_t(TEXT, "sent", detail=receipt.detail))

    def _delivery_failed(self, why: str) -> None:
        self._sending = False
        self.busy.hide()
        self._refresh_buttons()
        self.receipt.setText(_t(TEXT, "send_failed", why=why))
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
