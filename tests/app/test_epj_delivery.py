"""The window delivers to a real FHIR server: the patient field, sending off the UI
thread, a refusal that keeps the note (Send again / Copy to the clipboard), the audit
line of each session."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from summarize.delivery.audit import AuditLog
from summarize.delivery.fhir_config import FhirConfig
from summarize.delivery.fhir_resource import IDENTIFIER_SYSTEM, decoded_text
from tests.app.test_main_window import FakeScribe, _record_all
from tests.fhir_server import Fault, FaultProxy, FhirServer


def _patients():
    """A new synthetic fødselsnummer (month + 80: the test numbers of Skatteetaten, no real
    person) for each test: the note identifier comes from the patient and the approved text,
    and these tests share one FHIR server and draft the same text."""
    from summarize.delivery.identifiers import with_check_digits

    for individual in range(100, 1000):
        number = with_check_digits(f"138985{individual:03d}")
        if number:
            yield number


_NEW = _patients()


class FhirScribe(FakeScribe):
    """The fake engine with the FHIR sink configured and an audit log of the test's own."""

    def __init__(self, base_url: str, audit_path: Path) -> None:
        super().__init__()
        self.settings.app.sink = "fhir"
        self.settings.fhir = FhirConfig(base_url=base_url, author="Practitioner/lege-7", backoff_s=0, retries=1)
        self.audit_log = AuditLog(audit_path, b"k" * 32)

    def audit(self) -> AuditLog:
        return self.audit_log


@pytest.fixture
def fhir_window(qtbot: Any, proxy: FaultProxy, tmp_path: Path) -> Iterator[Any]:
    from app.gui.main_window import MainWindow

    win = MainWindow(FhirScribe(proxy.base_url, tmp_path / "audit.jsonl"), template="allmennmedisin")
    qtbot.addWidget(win)
    win.show()
    win.load_models()
    qtbot.waitUntil(win.record_btn.isEnabled, timeout=5000)
    win.quiet_close = True
    yield win


def _reviewed(qtbot: Any, win: Any) -> None:
    from PySide6.QtCore import Qt

    _record_all(qtbot, win)
    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.stop_btn, Qt.MouseButton.LeftButton)
    for i, item in enumerate(win.session.flags):
        if item.resolution is None:
            win.session.resolve_flag(i, "accepted")
    win._refresh_buttons()
    assert win.approve_btn.isEnabled()


def _stored(server: FhirServer, note_id: str) -> list[dict]:
    return server.search(f"{IDENTIFIER_SYSTEM}|{note_id}")


def test_approve_sends_to_the_fhir_server_once_and_audits(qtbot: Any, fhir_window: Any, proxy: FaultProxy,
                                                          fhir_server: FhirServer, tmp_path: Path) -> None:
    from PySide6.QtCore import Qt

    win = fhir_window
    assert win.patient.isVisible()
    _reviewed(qtbot, win)
    session = win.session
    win.patient.setText("13897248099")  # mistyped: red, and nothing is sent
    qtbot.mouseClick(win.approve_btn, Qt.MouseButton.LeftButton)
    assert "check digits" in win.patient.toolTip() and win._delivery is None and proxy.posts() == 0
    win.patient.setText(patient := next(_NEW))
    with qtbot.waitSignal(win.session_ended, timeout=20000) as ended:
        qtbot.mouseClick(win.approve_btn, Qt.MouseButton.LeftButton)
    assert ended.args == ["approved"] and "DocumentReference/" in win.receipt.text()
    ref = win.receipt.text().split("DocumentReference/")[1].split(")")[0]
    import httpx

    doc = httpx.get(f"{fhir_server.base_url}/DocumentReference/{ref}", timeout=10).json()
    assert "brystet" in decoded_text(doc) and doc["subject"]["identifier"]["value"] == patient
    assert len(_stored(fhir_server, doc["identifier"][0]["value"])) == 1 and proxy.posts() == 1
    assert session.is_empty and win.session is None
    [line] = (tmp_path / "audit.jsonl").read_text().splitlines()
    rec = json.loads(line)
    assert rec["outcome"] == "delivered" and rec["sink"] == "fhir" and rec["delivery_attempts"] == 1
    assert rec["dropped_segments"] >= 1 and rec["audio_s"] > 0 and "brystet" not in line
    assert win.scribe.audit_log.verify().ok


def test_a_refusal_keeps_the_note_for_send_again_or_the_clipboard(qtbot: Any, fhir_window: Any,
                                                                  proxy: FaultProxy, fhir_server: FhirServer,
                                                                  tmp_path: Path) -> None:
    from PySide6.QtCore import Qt

    win = fhir_window
    _reviewed(qtbot, win)
    win.patient.setText(patient := next(_NEW))
    proxy.faults = deque([Fault("status", 422, {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "Ukjent enhet"}]}),
        Fault("status", 503, {})])
    qtbot.mouseClick(win.approve_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.retry_btn.isVisible(), timeout=20000)
    assert "Ukjent enhet" in win.receipt.text() and win.session is not None  # kept, not wiped
    assert win.copy_btn.isVisible() and not win.approve_btn.isEnabled()
    assert all(e.isReadOnly() for e in win.section_edits.values())  # approved text is frozen
    note_text = win._delivery.note.text
    qtbot.mouseClick(win.retry_btn, Qt.MouseButton.LeftButton)  # 503, then retried: arrives once
    qtbot.waitUntil(lambda: win.session is None, timeout=20000)
    ident = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert ident["outcome"] == "delivered" and ident["delivery_attempts"] == 2
    assert proxy.posts() == 3  # 422, 503, then the stored one
    assert len(_stored(fhir_server, _identifier(note_text, patient))) == 1


def _identifier(text: str, patient: str) -> str:
    from summarize.delivery.fhir_resource import note_identifier

    return note_identifier(patient, text)  # the patient and the approved text, not the session


def test_when_the_epj_is_down_the_note_goes_to_the_clipboard(qtbot: Any, fhir_window: Any, proxy: FaultProxy,
                                                             tmp_path: Path) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    win = fhir_window
    _reviewed(qtbot, win)
    win.patient.setText(next(_NEW))
    proxy.faults = deque([Fault("status", 500, {}), Fault("status", 500, {}), Fault("status", 500, {}),
                          Fault("status", 500, {})])
    qtbot.mouseClick(win.approve_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.copy_btn.isVisible(), timeout=20000)
    note_text = win._delivery.note.text
    with qtbot.waitSignal(win.session_ended, timeout=10000):
        qtbot.mouseClick(win.copy_btn, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == note_text
    last = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert last["outcome"] == "delivered" and last["sink"] == "clipboard" and last["delivery_attempts"] == 2
    assert win.scribe.audit_log.verify().ok


def test_no_delivery_when_the_audit_line_cannot_be_written(qtbot: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    """#17 item 7 in the app: the keyring has no audit key to give; approving sends nothing,
    says why, and keeps the reviewed note (approvable again once IT fixed it)."""
    from PySide6.QtCore import Qt

    from app.gui.main_window import MainWindow
    from summarize.delivery.audit import AuditError

    def no_keyring() -> bytes:
        raise AuditError("no OS keyring for the audit key (fail.Keyring): configure a keyring backend")

    scribe = FhirScribe(proxy.base_url, tmp_path / "audit.jsonl")
    scribe.audit_log = AuditLog(tmp_path / "audit.jsonl", no_keyring)
    win = MainWindow(scribe, template="allmennmedisin")
    qtbot.addWidget(win)
    win.show()
    win.load_models()
    qtbot.waitUntil(win.record_btn.isEnabled, timeout=5000)
    win.quiet_close = True
    _reviewed(qtbot, win)
    win.patient.setText(next(_NEW))
    qtbot.mouseClick(win.approve_btn, Qt.MouseButton.LeftButton)
    assert proxy.posts() == 0 and win._delivery is None
    assert "audit" in win.receipt.text() and "keyring" in win.receipt.text()
    assert win.session is not None and win.session.draft is not None  # nothing lost
    assert not (tmp_path / "audit.jsonl").exists()
