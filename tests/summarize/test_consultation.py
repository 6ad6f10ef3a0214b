"""The consultation engine's lifecycle with fakes (scripted transcriber, scripted LLM, a
recording sink, a real audit log): Record → events → Stop → draft → flags → approve →
send → audit line → wipe; discard; what is refused and when."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from asr.types import SAMPLE_RATE, Segment
from summarize.consultation.consultation import Consultation
from summarize.consultation.engine import Scribe
from summarize.consultation.events import Committed, Delivered, Drafted, Ended, RecordingEnded, Tentative
from summarize.consultation.session import SessionError, State
from summarize.delivery.audit import AuditLog
from summarize.delivery.sinks import Receipt, SinkError
from summarize.types import Utterance
from tests.fakes import FakeLlm, ScriptedAsr, note_template

SCRIPT = [
    ("Vi var på hytta i helgen og fisket ørret.", 1.0),
    ("Jeg har hatt vondt i brystet i tre dager.", 2.0),
    ("Du fortsetter med amlodipin fem milligram daglig.", 3.0),
]


def _answer(messages: list[Any]) -> str:
    said = messages[-1].content.rsplit("\n", 1)[-1]
    if "brystet" in said:
        return "Anamnese: Vondt i brystet i 3 dager."
    if "amlodipin" in said:
        return "Legemidler: Amlodipin 10 mg daglig."  # 10 was never said: flagged
    return "Ingen."


def ArraySource(seconds: float) -> Any:  # noqa: N802 (reads like the class it makes)
    from asr.sources import ArraySource as Source

    return Source((0.05 * np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32))


class FakeAsr(ScriptedAsr):
    def __init__(self) -> None:
        super().__init__(SCRIPT)


class RecordingSink:
    name = "test"

    def __init__(self, fail: SinkError | None = None) -> None:
        self.notes: list[Any] = []
        self.fail = fail

    def deliver(self, note: Any) -> Receipt:
        from datetime import UTC, datetime

        if self.fail is not None:
            raise self.fail
        self.notes.append(note)
        return Receipt(self.name, datetime.now(UTC), "lagret i testmottaket")


def _scribe(tmp_path: Path) -> Scribe:
    audit = AuditLog(tmp_path / "audit.jsonl", b"k" * 32)
    settings = SimpleNamespace(app=SimpleNamespace(sink="clipboard"), audit=SimpleNamespace(open=lambda: audit))
    return Scribe(settings, asr=FakeAsr(), llm=FakeLlm(_answer))


def _recorded(scribe: Scribe, events: list[Any]) -> Consultation:
    c = scribe.consultation(note_template(), ArraySource(4.0), on_event=events.append)
    c.start()
    assert c.wait_recorded(30)
    return c


def test_record_draft_approve_send_and_the_wipe(tmp_path: Path) -> None:
    scribe = _scribe(tmp_path)
    events: list[Any] = []
    c = _recorded(scribe, events)
    assert c.state is State.DRAFTING  # the file ended: recording stopped by itself
    committed = [e for e in events if isinstance(e, Committed)]
    assert [e.segment.text for e in committed] == [s for s, _ in SCRIPT]
    assert committed[0].dropped and not committed[1].dropped  # the fishing trip is small talk
    assert any(isinstance(e, Tentative) for e in events)
    assert isinstance([e for e in events if not isinstance(e, Tentative)][-1], RecordingEnded)

    result = c.draft()
    assert isinstance(events[-1], Drafted) and events[-1].result is result
    assert c.state is State.REVIEW and "brystet" in result.draft.text and "hytta" not in result.draft.text
    assert not c.can_approve  # 10 mg was never said: an open flag blocks approval
    with pytest.raises(SessionError):
        c.approve(RecordingSink())
    for i, _ in enumerate(c.flags):
        c.resolve_flag(i)
    sink = RecordingSink()
    note = c.approve(sink)
    receipt = c.send()
    assert sink.notes == [note] and isinstance(events[-1], Delivered) and events[-1].receipt is receipt
    assert c.outcome == "delivered"

    transcriber = scribe.asr.made[-1]
    record = c.end()
    assert record is not None and record["outcome"] == "delivered"
    assert isinstance(events[-1], Ended) and events[-1].how == "delivered"
    assert c.is_empty and c.segments == [] and c.note is None and c.delivery is None
    assert transcriber.samples == [] and transcriber.transcript.segments == []
    line = (tmp_path / "audit.jsonl").read_text()
    assert "brystet" not in line and json.loads(line)["outcome"] == "delivered"
    assert c.end() is None  # idempotent: one audit line
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 1


def test_a_refused_delivery_keeps_the_note_for_another_sink(tmp_path: Path) -> None:
    scribe = _scribe(tmp_path)
    c = _recorded(scribe, [])
    c.draft()
    from summarize.delivery.fhir import SinkUnavailable

    epj = RecordingSink(fail=SinkUnavailable("svaret kom aldri", kind="timeout", maybe_stored=True))
    c.approve(epj, accept_flags=True)
    with pytest.raises(SinkError):
        c.send()
    assert c.outcome == "unknown"  # never "not stored" when the answer was lost
    epj.fail = SinkUnavailable("EPJ svarer ikke", kind="connect", maybe_stored=False)
    with pytest.raises(SinkError):
        c.send()
    assert c.outcome == "failed" and c.delivery is not None  # the approved note is still here
    other = RecordingSink()
    c.send(other)
    assert len(other.notes) == 1 and c.outcome == "delivered"
    assert c.end()["outcome"] == "delivered"


def test_discard_wipes_and_writes_discarded(tmp_path: Path) -> None:
    scribe = _scribe(tmp_path)
    c = _recorded(scribe, [])
    c.draft()
    c.discard()
    assert c.is_empty and c.ended
    assert json.loads((tmp_path / "audit.jsonl").read_text())["outcome"] == "discarded"
    with pytest.raises(SessionError):
        c.edit_section("anamnese", "x")
    c.add_segment(Segment(9, 0.0, 1.0, "for sent", (), 1.0))  # a late segment is ignored, not kept
    assert c.segments == []


def test_pause_resume_stop_and_edits_while_recording(tmp_path: Path) -> None:
    scribe = _scribe(tmp_path)
    c = scribe.consultation(note_template(), live=True)
    c.start()
    c.add_utterances([Utterance(0, "Jeg har hatt vondt i brystet i tre dager.", 0.0, 2.0, "pasient"),
                      Utterance(1, "Vi var på hytta i helgen.", 2.0, 3.0, "pasient")])
    assert [u.speaker for u in c.utterances()] == ["pasient", "pasient"]  # speakers of a labelled transcript stay
    c.pause()
    assert c.state is State.PAUSED
    c.resume()
    c.restore(1)
    assert 1 in c.filtered.kept
    c.edit_segment(0, "Jeg har hatt vondt i brystet i fire dager.")
    c.stop()
    c.stop()  # twice is harmless
    result = c.draft()
    assert "fire" in " ".join(u.text for u in c.utterances()) and result.draft.sections
    c.end(audit=False)
    assert not (tmp_path / "audit.jsonl").exists()  # a draft never delivered, audit=False: no line


def test_transcription_only_writes_no_audit_line(tmp_path: Path) -> None:
    scribe = _scribe(tmp_path)
    c = scribe.consultation(None, ArraySource(4.0), live=False)
    c.record()
    assert len(c.segments) == len(SCRIPT)
    with pytest.raises(SessionError):
        c.draft()
    assert c.end() is None and not (tmp_path / "audit.jsonl").exists() and c.is_empty


def test_a_failing_event_handler_does_not_stop_the_transcription(tmp_path: Path) -> None:
    scribe = _scribe(tmp_path)

    def broken(ev: Any) -> None:
        raise RuntimeError("a front end's bug")

    c = scribe.consultation(note_template(), ArraySource(4.0), on_event=broken)
    c.start()
    assert c.wait_recorded(30) and len(c.segments) == len(SCRIPT) and c.recording_error == ""
    c.discard()


def test_two_consultations_on_threads_keep_their_own_state(tmp_path: Path) -> None:
    """The cheap isolation check (fakes); the real-model one is test_consultation_concurrent."""
    scribe = _scribe(tmp_path)
    out: dict[str, Any] = {}

    def run(name: str, extra: str) -> None:
        c = scribe.consultation(note_template(), live=True)
        c.start()
        c.add_utterances([Utterance(0, f"Jeg har hatt vondt i brystet i {extra} dager.", 0.0, 2.0)])
        c.stop()
        out[name] = (c, c.draft())

    threads = [threading.Thread(target=run, args=(n, x)) for n, x in (("a", "tre"), ("b", "fem"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (a, ra), (b, rb) = out["a"], out["b"]
    assert a.id != b.id and a.session is not b.session and ra.draft is not rb.draft
    assert "tre" in ra.draft.text + " ".join(u.text for u in a.utterances()) and "fem" not in ra.draft.text
    assert [u.text for u in a.utterances()] != [u.text for u in b.utterances()]
    a.discard()
    assert a.is_empty and not b.is_empty and b.utterances()  # ending one leaves the other alone
    b.discard()


class UnsureAsr(ScriptedAsr):
    """Whisper was unsure of a drug name it did not know."""

    def __init__(self) -> None:
        super().__init__([("Hun bruker amlodipien fem milligram.", 1.0)], unsure=("amlodipien",))


@pytest.mark.parametrize("enabled", [True, False])
def test_a_misheard_drug_name_is_corrected_before_it_is_shown(tmp_path: Path, enabled: bool) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", b"k" * 32)
    settings = SimpleNamespace(app=SimpleNamespace(sink="clipboard"), audit=SimpleNamespace(open=lambda: audit),
                               asr=SimpleNamespace(correct_terms=enabled, vocabulary=[]))
    scribe = Scribe(settings, asr=UnsureAsr(), llm=FakeLlm(_answer))
    events: list[Any] = []
    c = scribe.consultation(note_template(), ArraySource(2.0), on_event=events.append)
    c.start()
    assert c.wait_recorded(30)
    shown = [e.segment for e in events if isinstance(e, Committed)]
    expected = "amlodipin" if enabled else "amlodipien"
    assert shown[0].text == f"Hun bruker {expected} fem milligram."
    assert c.segments[0].text == shown[0].text  # the record holds what was shown
    assert c.term_corrections == (1 if enabled else 0)
    word = next(w for w in shown[0].words if expected in w.word)
    assert word.probability < 0.5  # still unsure: the draft highlights it for the clinician
    c.end()
