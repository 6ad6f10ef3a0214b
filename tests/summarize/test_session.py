"""The consultation session: state machine, review, approval gate, wipe; the clipboard sink."""

from __future__ import annotations

from typing import Any

import pytest

from asr.types import Segment, Word
from summarize.consultation.session import ApprovedNote, Session, SessionError, State, edit_ratio
from summarize.delivery.registry import create_sink
from summarize.delivery.sinks import ClipboardSink, SinkError
from summarize.draft.smalltalk import SmallTalkFilter
from summarize.types import Flag, NoteDraft, NoteSection, Sentence
from tests.fakes import note_template


def _segment(i: int, text: str) -> Segment:
    return Segment(i, float(i), i + 1.0, text, (Word(" " + text, float(i), i + 1.0, 0.9),), i + 1.0)


def _reviewed() -> Session:
    s = Session(note_template())
    s.start()
    s.add_segment(_segment(0, "Jeg har hatt vondt i kneet i tre uker."))
    s.add_segment(_segment(1, "Vi var på hytta og fisket ørret i helgen."))
    s.stop()
    draft = NoteDraft("test", "1.0.0", [
        NoteSection("anamnese", "Anamnese", [Sentence("Vondt i kneet i 3 uker.", (0,))]),
        NoteSection("funn", "Funn", [Sentence("Hevelse 5 cm.", ())]),
    ], [Flag("unsupported_number", "5 cm", "funn"), Flag("no_evidence", "Hevelse 5 cm.", "funn")])
    s.set_draft(draft)
    return s


def test_states_follow_the_consultation_and_refuse_what_makes_no_sense() -> None:
    s = Session(note_template())
    with pytest.raises(SessionError):
        s.pause()
    s.start()
    s.pause()
    s.resume()
    assert s.state is State.RECORDING
    with pytest.raises(SessionError, match="no draft"):
        s.approve()


def test_approval_waits_for_every_flag_and_only_the_session_makes_an_approved_note() -> None:
    s = _reviewed()
    assert not s.can_approve
    with pytest.raises(SessionError, match="2 flag"):
        s.approve()
    s.edit_section("funn", "Hevelse over kneet.")  # both flags were about text now gone
    assert [f.resolution for f in s.flags] == ["edited", "edited"] and s.can_approve
    note = s.approve()
    assert isinstance(note, ApprovedNote) and "Hevelse over kneet." in note.text
    assert dict(note.flags_by_kind) == {"no_evidence": 1, "unsupported_number": 1}
    assert 0 < note.edit_ratio < 1 and note.stop_to_approve_s is not None
    with pytest.raises(SessionError):
        ApprovedNote(**{**{k: getattr(note, k) for k in note.__dataclass_fields__}, "_token": None})


def test_a_sentence_without_evidence_is_a_flag_even_if_the_verifier_did_not_list_it() -> None:
    s = Session(note_template())
    s.start()
    s.add_segment(_segment(0, "Jeg har vondt i kneet."))
    s.stop()
    s.set_draft(NoteDraft("test", "1.0.0", [NoteSection("anamnese", "Anamnese", [
        Sentence("Vondt i kneet.", (0,)), Sentence("Melkekommunen fyrte.", ())])]))
    assert [(f.flag.kind, f.flag.text) for f in s.flags] == [("no_evidence", "Melkekommunen fyrte.")]
    assert not s.can_approve


def test_accepting_a_flag_is_explicit() -> None:
    s = _reviewed()
    s.resolve_flag(0, "accepted")
    with pytest.raises(SessionError):
        s.resolve_flag(1, "ignored")
    s.resolve_flag(1)
    assert s.can_approve and s.approve().edit_ratio == 0.0


def test_edits_deletes_and_restores_shape_what_the_filter_sees() -> None:
    s = Session(note_template())
    s.start()
    s.add_segment(_segment(0, "Jeg har hatt vondt i kneet i tre uker."))
    s.add_segment(_segment(1, "Vi var på hytta og fisket ørret i helgen."))
    s.add_segment(_segment(2, "Naboen din, han med diabetes, har samme problem."))
    filtered = s.filter(SmallTalkFilter())
    assert 1 in {d.id for d in filtered.dropped}
    s.restore(1)
    s.delete_segment(2)
    s.edit_segment(0, "Jeg har hatt vondt i høyre kne i tre uker.")
    again = s.filter(SmallTalkFilter())
    assert 1 in again.kept and [u.id for u in again.utterances] == [0, 1]
    assert again.utterances[0].text.startswith("Jeg har hatt vondt i høyre kne")
    with pytest.raises(SessionError):
        s.restore(9)


def test_closing_clears_every_buffer_in_place_and_the_outside_ones() -> None:
    s = _reviewed()
    segments, texts, flags = s.segments, s.section_texts, s.flags
    draft = s.draft
    outside: list[Any] = [b"audio"]
    s.on_wipe(outside.clear)
    s.on_wipe(lambda: (_ for _ in ()).throw(RuntimeError("gone")))  # a failing wiper does not stop the rest
    s.close()
    assert s.is_empty and s.state is State.DONE and s.draft is None
    assert segments == [] and texts == {} and flags == [] and outside == []
    assert draft is not None and draft.sections == []
    with pytest.raises(SessionError):
        s.add_segment(_segment(3, "etter slutt"))


def test_edit_ratio() -> None:
    assert edit_ratio("abc", "abc") == 0.0 and edit_ratio("", "") == 0.0
    assert edit_ratio("abc", "xyz") == 1.0


def test_clipboard_sink_delivers_plain_and_html_and_clears_only_its_own_note() -> None:
    s = _reviewed()
    s.resolve_flag(0)
    s.resolve_flag(1)
    note = s.approve()
    board: list[tuple[str, str | None]] = [("", None)]
    later: list[Any] = []
    sink = create_sink("clipboard", set_text=lambda p, h: board.append((p, h)), get_text=lambda: board[-1][0],
                       clear_after_s=30, schedule=lambda sec, fn: later.append((sec, fn)))
    receipt = sink.deliver(note)
    assert board[-1][0] == note.text and "<b>Anamnese</b>" in (board[-1][1] or "")
    assert receipt.sink == "clipboard" and "30" in receipt.detail
    later[0][1]()
    assert board[-1] == ("", None)  # cleared: it still held the note
    sink.deliver(note)
    board.append(("something else the clinician copied", None))
    later[1][1]()
    assert board[-1][0] == "something else the clinician copied"
    with pytest.raises(SinkError, match="approved"):
        ClipboardSink(lambda p, h: None).deliver("just text")  # type: ignore[arg-type]
    with pytest.raises(SinkError, match="unknown EPJ sink"):
        create_sink("fax")
