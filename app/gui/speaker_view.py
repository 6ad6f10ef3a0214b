"""Who said it, in the main window (issue #19): the role before each transcript line ("Lege:",
"Pasient:", "Pårørende:", "Ukjent:"), automatic roles in italics, the line above the
transcript that says where the roles came from, and the clinician's one-click relabel (one
line, or every line of a voice) through
:meth:`summarize.consultation.consultation.Consultation.relabel`.

A relabel is a transcript change like an edit (:meth:`ReviewView._transcript_changed`):
while recording the live note drafts the changed lines again; after Stop, Approve waits for
"Lag utkast på nytt", which drafts only the changed lines again (the drafter keeps lines
per utterance id, speaker and text). The voices' own corrections arrive as
:class:`summarize.consultation.events.Relabelled` and only redraw the transcript.

The bottom link of :class:`app.gui.main_window.MainWindow`'s chain of Qt subclasses
(``SpeakerView`` → ``ReviewView`` → ``DeliveryView`` → ``MainWindow``; see
:class:`app.gui.review_view.ReviewView` for why a chain). Nothing here logs patient text.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from PySide6.QtCore import QPoint
from PySide6.QtGui import QCursor, QTextCursor
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu

from app.gui import workers
from app.gui.i18n import text as _t
from app.gui.window_texts import ROLE_COLOURS, ROLES, TEXT
from summarize.consultation.session import State

logger = logging.getLogger(__name__)

AUTOMATIC = ("profile", "behaviour")  # Consultation.speaker_method when the voices named the roles


def role_name(role: str | None) -> str:
    """The role as the window says it ("Lege", … "Ukjent" for None)."""
    return _t(TEXT, f"role.{role or 'none'}")


class SpeakerView(QMainWindow):
    """Roles in the transcript and their relabel menu for :class:`app.gui.main_window.MainWindow`
    (which owns the consultation, the status line and the transcript widget)."""

    def _build_speakers_hint(self) -> QLabel:
        """The line above the transcript (hidden while no line has a role) and the role menu."""
        self.speakers_hint = QLabel("")
        self.speakers_hint.setWordWrap(True)
        self.speakers_hint.setStyleSheet("color: #455a64;")
        self.speakers_hint.hide()
        self.role_menu = QMenu(self)
        self._roles_tag: object = None
        self._set_lines: set[int] = set()  # segment ids the clinician labelled
        self._set_voices: set[int] = set()  # voice ids the clinician labelled (also their later lines)
        return self.speakers_hint

    def _clinician_labels(self) -> tuple[set[int], set[int]]:
        """The lines and voices the clinician labelled, in the consultation on screen."""
        if self._roles_tag is not self._tag:
            self._roles_tag, self._set_lines, self._set_voices = self._tag, set(), set()
        return self._set_lines, self._set_voices

    # -- showing ------------------------------------------------------------------------
    @staticmethod
    def _roles_shown(session: Any) -> bool:
        """Roles are shown once any line has one (a role or a voice); a run without speakers shows none."""
        return any(seg.speaker is not None or seg.speaker_id is not None for seg in session.segments)

    def _update_speakers_hint(self, shown: bool) -> bool:
        """Say where the roles came from; True when they were set automatically (from the voices)."""
        c = self.consultation
        method = c.speaker_method if c is not None and shown else None
        if not shown:
            self.speakers_hint.hide()
            return False
        self.speakers_hint.setText(_t(TEXT, f"roles.{method}" if method else "roles.other"))
        self.speakers_hint.show()
        return method in AUTOMATIC

    def _role_html(self, seg: Any, automatic: bool, *, link: bool = True) -> str:
        """The role before a line: a link that opens the relabel menu; italic when automatic."""
        lines, voices = self._clinician_labels()
        auto = automatic and seg.id not in lines and (seg.speaker_id is None or seg.speaker_id not in voices)
        name = html.escape(role_name(seg.speaker)) + ":"
        shown = f"<i>{name}</i>" if auto else name
        colour = ROLE_COLOURS.get(seg.speaker, ROLE_COLOURS[None])
        style = f"color:{colour}; font-weight:600; text-decoration:none"
        if not link:
            return f'<span style="{style}">{shown}</span> '
        tip = html.escape(_t(TEXT, "role_auto_tip" if auto else "role_set_tip"))
        return f'<a href="role:{seg.id}" title="{tip}" style="{style}">{shown}</a> '

    def _on_relabelled(self, ev: Any) -> None:
        """Earlier lines got new roles (the voices' better guess, or the clinician's relabel)."""
        if ev.by_clinician:
            self._clinician_labels()[0].update(ev.labels)
        self._transcript_stale = True
        s = self.session
        if s is not None and s.state in (State.RECORDING, State.PAUSED) and not self._preview_timer.isActive():
            self._preview_timer.start()

    # -- relabelling --------------------------------------------------------------------
    def open_role_menu(self, segment_id: int, at: QPoint | None = None) -> QMenu | None:
        """The menu of a line's role: the four roles, and (when the voices were told apart)
        the same for every line of its voice. Opens at ``at`` (global), else under the role."""
        c = self.consultation
        seg = next((x for x in c.session.segments if x.id == segment_id), None) if c is not None else None
        if seg is None or segment_id in c.session.deleted:
            return None
        if c.state is State.DRAFTING:  # the draft being made would not see it
            self.status.setText(_t(TEXT, "role_wait"))
            return None
        menu = self.role_menu
        menu.clear()
        for role in ROLES:
            act = menu.addAction(role_name(role))
            act.setCheckable(True)
            act.setChecked(seg.speaker == role)
            act.triggered.connect(lambda _=False, r=role: self.relabel_line(segment_id, r))
        if seg.speaker_id is not None:
            menu.addSeparator()
            for role in ROLES:
                act = menu.addAction(_t(TEXT, "role_voice", role=role_name(role)))
                act.triggered.connect(lambda _=False, v=seg.speaker_id, r=role: self.relabel_voice(v, r))
        menu.popup(at if at is not None else self._role_link_pos(segment_id))
        return menu

    def _role_link_pos(self, segment_id: int) -> QPoint:
        """Just under the line's role in the transcript (also when the link was reached by
        keyboard); the mouse position when it is not on screen."""
        href = f"role:{segment_id}"
        block = self.transcript.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.charFormat().anchorHref() == href:
                    cursor = QTextCursor(self.transcript.document())
                    cursor.setPosition(fragment.position())
                    rect = self.transcript.cursorRect(cursor)
                    if self.transcript.viewport().rect().contains(rect.center()):
                        return self.transcript.viewport().mapToGlobal(rect.bottomLeft())
                    return QCursor.pos()
                it += 1
            block = block.next()
        return QCursor.pos()

    def relabel_line(self, segment_id: int, role: str | None) -> list[int]:
        """The clinician says who said this line; the ids of the lines that changed."""
        self._clinician_labels()[0].add(segment_id)
        return self._transcript_changed(lambda c: c.relabel(segment_id, role=role)) or []

    def relabel_voice(self, voice_id: int, role: str | None) -> list[int]:
        """The clinician says who this voice is: all its lines, and its later ones."""
        self._clinician_labels()[1].add(voice_id)
        return self._transcript_changed(lambda c: c.relabel(voice_id=voice_id, role=role)) or []

    # -- the voice profile after the settings dialog ------------------------------------------
    def _refresh_speakers(self) -> None:
        """After the settings dialog: the next consultation uses the voice profile the saved
        settings name (made, replaced or deleted in the dialog). When roles from the voices
        were just switched on, the voice encoder loads in the background (Record waits)."""
        conf = getattr(self.settings, "speakers", None)
        scribe = self.scribe
        if conf is None or conf.mode == "off":
            return
        if scribe.speaker_encoder is None:
            s = self.session
            idle = s is None or s.state is State.IDLE
            if self._asr_ready and idle and self.runner.busy == 0 and not scribe.speakers_problem:
                self._asr_ready = False
                self._refresh_buttons()
                task = workers.TaskWorker(scribe.load_speakers)
                task.result.connect(self._on_speakers_loaded)
                task.failed.connect(self._on_speakers_failed)
                self.runner.start(task)
            return
        from asr.errors import ScribeError
        from asr.speakers import profile as voice_profile

        path = conf.profile_path()
        try:
            scribe.voice_profile = voice_profile.load(path) if path.exists() else None
        except ScribeError as exc:
            scribe.voice_profile = None
            self.status.setText(_t(TEXT, "voice_profile_failed", why=exc))

    def _on_speakers_loaded(self, _: Any = None) -> None:
        self._asr_ready = True
        self._refresh_buttons()

    def _on_speakers_failed(self, why: str) -> None:
        self._asr_ready = True  # transcription works without roles from the voices
        self.status.setText(_t(TEXT, "voice_profile_failed", why=why))
        self._refresh_buttons()
