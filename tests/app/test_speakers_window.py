"""Who said it, in the clinician's window (issue #19), driven offscreen: the role before each
line, the voices' later correction of an early guess (a Relabelled event from the capture
thread), the one-click relabel of a line or a whole voice, and after Stop a redraft of only
the relabelled line. The consultation, session, filter, drafting and the speaker stream are
real; the transcriber, the LLM and the voices (:class:`ScriptedVoices`) are scripted."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QUrl  # noqa: E402

from tests.app.test_main_window import SCRIPT, FakeScribe  # noqa: E402

HINT = "Roller fra stemmene – klikk på en rolle for å endre"


class ScriptedVoices:
    """Stands in for :class:`asr.speakers.tracker.SpeakerTracker` (the real one needs real
    voices): segment ``i`` is voice ``voices[i]``, named by ``roles`` (voice → role). When
    segment ``revise_at`` arrives, the tracker waits for :attr:`release` (so a test can look at
    the window in between) and then names the voices by ``final`` and reports the earlier
    segments that changed, as re-clustering corrects an early guess. :meth:`relabel` keeps
    the clinician's word like the real one: a line, or a voice now and later."""

    profile = None

    def __init__(self, voices: list[int], roles: dict[int, str | None], *, final: dict[int, str | None] | None = None,
                 revise_at: int | None = None) -> None:
        self.voices = voices
        self.roles = dict(roles)
        self.final = dict(final if final is not None else roles)
        self.revise_at = revise_at
        self.reached = threading.Event()
        self.release = threading.Event()
        self.voice_of: dict[int, int] = {}
        self.line_overrides: dict[int, str | None] = {}
        self.voice_overrides: dict[int, str | None] = {}
        self.assignment = SimpleNamespace(method="behaviour", confidence=0.7)
        self._lock = threading.Lock()

    def _role(self, seg_id: int) -> str | None:
        if seg_id in self.line_overrides:
            return self.line_overrides[seg_id]
        voice = self.voice_of[seg_id]
        return self.voice_overrides[voice] if voice in self.voice_overrides else self.roles.get(voice)

    def labels(self) -> dict[int, tuple[str | None, int | None]]:
        return {i: (self._role(i), v) for i, v in self.voice_of.items()}

    def add(self, segment: Any, audio: Any, audio_start: float) -> tuple[list[Any], dict[int, Any]]:
        changed: dict[int, Any] = {}
        if segment.id == self.revise_at:
            self.reached.set()
            assert self.release.wait(20), "the test never released the voices"
            with self._lock:
                before = self.labels()
                self.roles = dict(self.final)
                changed = {i: lab for i, lab in self.labels().items() if before[i] != lab}
        with self._lock:
            self.voice_of[segment.id] = self.voices[segment.id]
            role = self._role(segment.id)
        return [dataclasses.replace(segment, speaker=role, speaker_id=self.voices[segment.id])], changed

    def relabel(self, segment_id: int | None = None, voice_id: int | None = None,
                role: str | None = None) -> dict[int, Any]:
        with self._lock:
            before = self.labels()
            if voice_id is not None:
                self.voice_overrides[voice_id] = role
                for i, v in self.voice_of.items():
                    if v == voice_id:
                        self.line_overrides.pop(i, None)
            elif segment_id is not None:
                self.line_overrides[segment_id] = role
            return {i: lab for i, lab in self.labels().items() if before.get(i) != lab}

    def wipe(self) -> None:
        with self._lock:
            self.voice_of.clear()
            self.line_overrides.clear()
            self.voice_overrides.clear()


class SpeakingScribe(FakeScribe):
    """The test engine of ``test_main_window`` with scripted voices behind the real speaker stream."""

    def __init__(self, voices: ScriptedVoices, mode: str = "auto") -> None:
        super().__init__()
        self.voices = voices
        self.settings.speakers = SimpleNamespace(mode=mode, voice_profile="", profile_path=lambda: None)
        self.speaker_encoder = object()  # "loaded": the window does not load one

    def load_speakers(self) -> Any:
        return self.speaker_encoder

    def speaker_tracker(self, template: Any = None) -> Any:
        return self.voices


@pytest.fixture
def make_window(qtbot: Any) -> Iterator[Any]:
    from app.gui.main_window import MainWindow

    made: list[Any] = []

    def make(scribe: Any) -> Any:
        win = MainWindow(scribe, template="allmennmedisin")
        qtbot.addWidget(win)
        win.show()
        win.load_models()
        qtbot.waitUntil(win.record_btn.isEnabled, timeout=5000)
        win.quiet_close = True
        made.append(scribe)
        return win

    yield make
    for scribe in made:  # a failed test must not leave the capture thread waiting
        if isinstance(getattr(scribe, "voices", None), ScriptedVoices):
            scribe.voices.release.set()


def role_of(win: Any, words: str) -> str | None:
    """The role shown before the transcript line that contains ``words`` (None: no role)."""
    line = next(x for x in win.transcript.toPlainText().splitlines() if words in x)
    m = re.match(r"\d\d:\d\d (\w+): ", line)
    return m.group(1) if m else None


def role_format(win: Any, segment_id: int) -> Any:
    """The character format of a line's role link (italic = set automatically)."""
    block = win.transcript.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.anchorHref() == f"role:{segment_id}":
                return fmt
            it += 1
        block = block.next()
    raise AssertionError(f"no role link for segment {segment_id}")


def menu_action(win: Any, text: str) -> Any:
    return next(a for a in win.role_menu.actions() if a.text() == text)


def record_all(qtbot: Any, win: Any) -> None:
    from PySide6.QtCore import Qt

    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(win.session.segments) == len(SCRIPT), timeout=10000)
    qtbot.waitUntil(lambda: "amlodipin" in win.transcript.toPlainText(), timeout=10000)


def stop_and_draft(qtbot: Any, win: Any) -> None:
    from PySide6.QtCore import Qt

    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.stop_btn, Qt.MouseButton.LeftButton)


def test_roles_are_shown_and_the_voices_correct_an_early_guess(qtbot: Any, make_window: Any) -> None:
    # the first guess names the patient's voice not at all and the doctor's as the patient;
    # when the fourth line arrives the voices are clear and the earlier lines are corrected
    voices = ScriptedVoices([1, 1, 0, 0], {1: None, 0: "pasient"}, final={0: "lege", 1: "pasient"}, revise_at=3)
    win = make_window(SpeakingScribe(voices))
    from PySide6.QtCore import Qt

    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(voices.reached.is_set, timeout=10000)
    qtbot.waitUntil(lambda: "Blodtrykket" in win.transcript.toPlainText(), timeout=10000)
    assert role_of(win, "hytta") == "Ukjent" and role_of(win, "brystet") == "Ukjent"  # a voice, no role yet
    assert role_of(win, "Blodtrykket") == "Pasient"
    assert role_format(win, 2).fontItalic()  # set automatically
    assert "automatisk" in role_format(win, 2).toolTip()
    assert win.speakers_hint.isVisibleTo(win) and win.speakers_hint.text().startswith(HINT)

    # a revision alone (no new line with it), on another thread, as the capture thread does
    # it on the speaker stream's SpeakersChanged: only the Relabelled event redraws the line
    seen = win.transcript.toPlainText()
    revise = threading.Thread(target=win.consultation._set_speakers, args=({1: ("pårørende", 1)},),
                              kwargs={"by_clinician": False})
    revise.start()
    revise.join()
    qtbot.waitUntil(lambda: role_of(win, "brystet") == "Pårørende", timeout=5000)
    assert win.transcript.toPlainText() == seen.replace("Ukjent: Jeg har", "Pårørende: Jeg har")
    assert role_format(win, 1).fontItalic()  # still the voices' guess, not the clinician's

    voices.release.set()  # the voices' correction comes as a Relabelled event from the capture thread
    qtbot.waitUntil(lambda: "amlodipin" in win.transcript.toPlainText(), timeout=10000)
    qtbot.waitUntil(lambda: role_of(win, "brystet") == "Pasient", timeout=5000)
    assert role_of(win, "hytta") == "Pasient"
    assert role_of(win, "Blodtrykket") == "Lege" and role_of(win, "amlodipin") == "Lege"
    assert [(s.speaker, s.speaker_id) for s in win.session.segments] == [
        ("pasient", 1), ("pasient", 1), ("lege", 0), ("lege", 0)]
    assert all(role_format(win, i).fontItalic() for i in range(4))
    stop_and_draft(qtbot, win)
    assert role_of(win, "brystet") == "Pasient"  # the review transcript keeps them


def test_one_click_relabels_a_line_and_the_redraft_drafts_only_that_line(qtbot: Any, make_window: Any) -> None:
    from PySide6.QtCore import Qt

    scribe = SpeakingScribe(ScriptedVoices([1, 1, 0, 0], {0: "lege", 1: "pasient"}))
    win = make_window(scribe)
    record_all(qtbot, win)
    stop_and_draft(qtbot, win)
    assert role_of(win, "brystet") == "Pasient" and role_format(win, 1).fontItalic()
    assert not win.redraft_btn.isVisibleTo(win)

    win._transcript_link(QUrl("role:1"))  # what a click on "Pasient:" before the line does
    assert win.role_menu.isVisible()
    texts = [a.text() for a in win.role_menu.actions() if not a.isSeparator()]
    assert texts == ["Lege", "Pasient", "Pårørende", "Ukjent", "Hele denne stemmen: Lege",
                     "Hele denne stemmen: Pasient", "Hele denne stemmen: Pårørende", "Hele denne stemmen: Ukjent"]
    assert [a.text() for a in win.role_menu.actions() if a.isChecked()] == ["Pasient"]

    # the role the line had: confirmed (no longer italic), nothing to draft again
    menu_action(win, "Pasient").trigger()
    assert not role_format(win, 1).fontItalic() and "av deg" in role_format(win, 1).toolTip()
    assert not win.redraft_btn.isVisibleTo(win) and not win._changed_after_draft

    calls_before = len(scribe.llm.calls)
    win._transcript_link(QUrl("role:1"))
    menu_action(win, "Pårørende").trigger()
    assert role_of(win, "brystet") == "Pårørende"
    assert [s.speaker for s in win.session.segments] == ["pasient", "pårørende", "lege", "lege"]
    assert win.consultation.speaker_summary()["relabels"] == 2
    assert win.redraft_btn.isVisibleTo(win) and not win.approve_btn.isEnabled()
    assert "lag utkast på nytt" in win.status.text()
    assert len(scribe.llm.calls) == calls_before  # nothing is drafted before the clinician asks

    with qtbot.waitSignal(win.draft_ready, timeout=30000):
        qtbot.mouseClick(win.redraft_btn, Qt.MouseButton.LeftButton)
    new = scribe.llm.calls[calls_before:]
    assert len(new) == 1  # only the relabelled line was drafted again
    assert new[0][-1].content.rsplit("\n", 1)[-1].startswith("Pårørende: Jeg har hatt vondt i brystet")
    assert "brystet" in win.section_edits["anamnese"].toPlainText()
    assert role_of(win, "brystet") == "Pårørende" and not win.redraft_btn.isVisibleTo(win)


def test_relabelling_a_whole_voice_also_names_its_later_lines(qtbot: Any, make_window: Any) -> None:
    # the second voice is a parent, not the patient; the fourth line is that voice again
    voices = ScriptedVoices([1, 1, 0, 1], {0: "lege", 1: "pasient"}, revise_at=3)
    win = make_window(SpeakingScribe(voices))
    from PySide6.QtCore import Qt

    qtbot.mouseClick(win.record_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(voices.reached.is_set, timeout=10000)
    qtbot.waitUntil(lambda: "Blodtrykket" in win.transcript.toPlainText(), timeout=10000)
    win._transcript_link(QUrl("role:1"))
    menu_action(win, "Hele denne stemmen: Pårørende").trigger()
    assert voices.voice_overrides == {1: "pårørende"}  # Consultation.relabel(voice_id=1, role="pårørende")
    assert role_of(win, "hytta") == "Pårørende" and role_of(win, "brystet") == "Pårørende"
    assert role_of(win, "Blodtrykket") == "Lege" and role_format(win, 2).fontItalic()  # the other voice: untouched
    assert not role_format(win, 0).fontItalic() and not role_format(win, 1).fontItalic()

    voices.release.set()
    qtbot.waitUntil(lambda: "amlodipin" in win.transcript.toPlainText(), timeout=10000)
    assert role_of(win, "amlodipin") == "Pårørende"  # a later line of that voice
    assert not role_format(win, 3).fontItalic()
    assert [s.speaker for s in win.session.segments] == ["pårørende", "pårørende", "lege", "pårørende"]


def test_a_run_without_speakers_shows_no_roles(qtbot: Any, make_window: Any) -> None:
    win = make_window(FakeScribe())  # no speaker tracker: segments carry neither role nor voice
    record_all(qtbot, win)
    assert all(role_of(win, words) is None for words in ("hytta", "brystet", "Blodtrykket", "amlodipin"))
    assert "role:" not in win.transcript.toHtml() and not win.speakers_hint.isVisibleTo(win)

    off = SpeakingScribe(ScriptedVoices([1, 1, 0, 0], {0: "lege", 1: "pasient"}), mode="off")
    win2 = make_window(off)  # speakers.mode = off: the consultation gets no tracker
    record_all(qtbot, win2)
    assert win2.consultation.speakers is None and role_of(win2, "brystet") is None


def test_the_voice_profile_made_in_the_settings_is_used_from_the_next_consultation(
        qtbot: Any, make_window: Any, tmp_path: Any) -> None:
    import datetime as dt

    import numpy as np

    from asr.speakers import profile as voice_profile

    path = tmp_path / "voice.json"
    scribe = SpeakingScribe(ScriptedVoices([1, 1, 0, 0], {0: "lege", 1: "pasient"}))
    scribe.settings.speakers.profile_path = lambda: path
    win = make_window(scribe)
    emb = np.zeros(256, np.float32)
    emb[0] = 1.0
    voice_profile.save(voice_profile.VoiceProfile(emb, dt.datetime.now(dt.UTC).isoformat(), 30.0, 35.0, 0.9), path)
    win._refresh_speakers()  # what closing the settings dialog does
    assert scribe.voice_profile is not None and scribe.voice_profile.speech_s == 30.0
    path.write_text("{}")  # damaged: said in the status line, not used
    win._refresh_speakers()
    assert scribe.voice_profile is None and "Stemmeprofilen kunne ikke brukes" in win.status.text()
    voice_profile.delete(path)
    win._refresh_speakers()
    assert scribe.voice_profile is None


def test_switching_roles_on_loads_the_voice_encoder_in_the_background(qtbot: Any, make_window: Any) -> None:
    scribe = SpeakingScribe(ScriptedVoices([1, 1, 0, 0], {0: "lege", 1: "pasient"}))
    scribe.speaker_encoder = None  # the app started with roles from the voices off
    win = make_window(scribe)
    started = threading.Event()
    go = threading.Event()
    ui_thread = threading.get_ident()
    loaded_on: list[int] = []

    def load_speakers() -> Any:  # slow, like the real encoder's 1.5 s
        loaded_on.append(threading.get_ident())
        started.set()
        assert go.wait(10)
        scribe.speaker_encoder = object()
        return scribe.speaker_encoder

    scribe.load_speakers = load_speakers  # type: ignore[method-assign]
    win._refresh_speakers()  # the settings now say mode = auto
    qtbot.waitUntil(started.is_set, timeout=5000)
    assert not win.record_btn.isEnabled()  # Record waits for the encoder
    go.set()
    qtbot.waitUntil(win.record_btn.isEnabled, timeout=5000)
    assert scribe.speaker_encoder is not None and loaded_on and loaded_on[0] != ui_thread
