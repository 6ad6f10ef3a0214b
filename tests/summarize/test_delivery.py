"""The end of a session: the audit line is built before the wipe, has no patient text, and a
broken audit log never keeps the session in memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from summarize.consultation.session import Session
from summarize.delivery.audit import AuditLog
from summarize.delivery.handover import Delivery, RunInfo, audit_record, end_session, model_checksum
from summarize.delivery.sinks import ClipboardSink, SinkError
from summarize.draft.smalltalk import SmallTalkFilter
from tests.summarize.test_session import _reviewed

KEY = b"0123456789abcdef0123456789abcdef"


class _Failing:
    name = "fhir"

    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, note: object) -> object:
        self.calls += 1
        err = SinkError("the EPJ refused the note (HTTP 422): Ukjent enhet")
        err.kind = "http_422"
        raise err


def _approved_session() -> Session:
    s = _reviewed()
    s.audio_s = 12.5
    s.filter(SmallTalkFilter())
    s.edit_section("funn", "Hevelse over kneet.")
    return s


def test_a_delivered_session_is_audited_then_wiped(tmp_path: Path) -> None:
    s = _approved_session()
    clip: list[str] = []
    d = Delivery(s.approve(), ClipboardSink(lambda text, html: clip.append(text)))
    d.send()
    log = AuditLog(tmp_path / "audit.jsonl", KEY)
    rec = end_session(s, "delivered", delivery=d, run=RunInfo(asr_model="/opt/models/nb-whisper-large",
                                                             timings={"draft_s": 1.5}), audit=log)
    assert rec is not None and s.is_empty and s.segments == [] and s.draft is None
    assert rec["outcome"] == "delivered" and rec["sink"] == "clipboard" and rec["delivery_attempts"] == 1
    assert rec["asr_model"] == "nb-whisper-large" and rec["audio_s"] == 12.5
    assert rec["dropped_segments"] == 1 and rec["kept_segments"] == 1  # the fishing trip was small talk
    assert rec["flags_by_kind"] == {"no_evidence": 1, "unsupported_number": 1} and 0 < rec["edit_ratio"] < 1
    line = (tmp_path / "audit.jsonl").read_text()
    assert "kneet" not in line and "ørret" not in line and clip and "kneet" in clip[0]
    assert log.verify().ok


def test_a_failed_delivery_keeps_the_note_and_records_why(tmp_path: Path) -> None:
    s = _approved_session()
    d = Delivery(s.approve(), _Failing())
    for _ in range(2):
        with pytest.raises(SinkError):
            d.send()
    assert d.note.text and d.attempts == 2 and not s.is_empty  # nothing is lost until the session ends
    rec = audit_record(s, "failed", delivery=d)
    assert rec["error_kind"] == "http_422" and rec["delivery_attempts"] == 2
    assert "Ukjent enhet" not in json.dumps(rec)  # the server's words can name the patient: not logged


def test_a_broken_audit_log_still_wipes_the_session(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = _approved_session()
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    rec = end_session(s, "discarded", audit=AuditLog(blocked / "audit.jsonl", KEY))
    assert rec is None and s.is_empty
    assert "audit line of this session was not written" in caplog.text and "kneet" not in caplog.text


def test_model_checksum_reads_the_manifest_or_the_stamp(tmp_path: Path) -> None:
    import hashlib

    a = tmp_path / "a"
    a.mkdir()
    (a / "SHA256SUMS").write_text("abc  model.bin\n")
    assert model_checksum(a) == hashlib.sha256(b"abc  model.bin\n").hexdigest()
    b = tmp_path / "b"
    b.mkdir()
    (b / ".scribe-verified.json").write_text(json.dumps({"sha256": "f" * 64}))
    assert model_checksum(b) == "f" * 64
    assert model_checksum(tmp_path / "missing") is None and model_checksum(None) is None
