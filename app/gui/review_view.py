"""The review side of the main window: the draft's section editors with their evidence
links, the flags list, and the transcript (who said each line, small talk struck through with
Restore, edit and remove links, uncertain words highlighted, search). The second link of
:class:`MainWindow`, after :class:`app.gui.speaker_view.SpeakerView`."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QInputDialog, QLabel, QListWidgetItem, QPlainTextEdit, QTextEdit, QWidget

from app.gui.i18n import text as _t
from app.gui.speaker_view import SpeakerView
from app.gui.window_texts import EVIDENCE_BG, SEARCH_BG, TEXT, UNCERTAIN_BG
from summarize.consultation.session import SessionError, State


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
                fmt.setToolTip(_t(TEXT, "no_evidence") if not evidence else "")
                sel.format = fmt
                cur = QTextCursor(self.document())
                cur.setPosition(a)
                cur.setPosition(min(b, len(body)), QTextCursor.MoveMode.KeepAnchor)
                sel.cursor = cur
                sels.append(sel)
        self.setExtraSelections(sels)


class ReviewView(SpeakerView):
    """Draft, flags and transcript of :class:`app.gui.main_window.MainWindow` (which builds the
    widgets and owns the consultation; these methods show them and take the clinician's edits).

    A Qt subclass in a chain (``SpeakerView`` → ``ReviewView`` → ``DeliveryView`` →
    ``MainWindow``), not a plain mixin: PySide6 treats methods of a plain mixin as non-slots,
    and a worker's result connected to one would run on the worker thread."""

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
        self.draft_title.setText(f"<b>{_t(TEXT, 'draft')}</b>")

    def _show_draft(self, draft: Any, *, live: bool) -> None:
        self._clear_draft()
        title = _t(TEXT, "draft_live") if live else _t(TEXT, "draft")
        if draft.extractive and not live:
            title += f" – {_t(TEXT, 'extractive')}"
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
            kind = _t(TEXT, f"flag_kind.{item.flag.kind}") if f"flag_kind.{item.flag.kind}" in TEXT["nb"] \
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
        from summarize.grounding.uncertain_asr import uncertain_asr_flags
        from summarize.types import Utterance

        s = self.session
        if s is None:
            self.transcript.setHtml("")
            self.hits.setText("")
            self._update_speakers_hint(False)
            return
        roles = self._roles_shown(s)
        automatic = self._update_speakers_hint(roles)
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
            links = (f' <a href="edit:{seg.id}">{_t(TEXT, "edit")}</a>'
                     f' <a href="delete:{seg.id}">{_t(TEXT, "delete")}</a>')
            style = f"background:{EVIDENCE_BG};" if seg.id in self._selected else ""
            stamp = f'<span style="color:#888">{int(seg.start // 60):02d}:{int(seg.start % 60):02d}</span>'
            if roles:  # who said it: a link to the relabel menu
                stamp += " " + self._role_html(seg, automatic, link=seg.id not in s.deleted).rstrip()
            if seg.id in s.deleted:
                rows.append(f'<p style="color:#999">{stamp} <s>{body}</s> ({_t(TEXT, "deleted")})</p>')
            elif seg.id in dropped:
                rows.append(f'<p style="color:#888;{style}">{stamp} <s>{body}</s> '
                            f'<i>({html.escape(dropped[seg.id])})</i> '
                            f'<a href="restore:{seg.id}">{_t(TEXT, "restore")}</a></p>')
            else:
                rows.append(f'<p style="{style}">{stamp} {body}{links}</p>')
        if s.tentative:
            rows.append(f'<p style="color:#9e9e9e"><i>{html.escape(s.tentative)}</i></p>')
        self.transcript.setHtml("".join(rows))
        self.hits.setText(_t(TEXT, "hits", n=hits) if term else "")
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
        elif action == "role":
            self.open_role_menu(seg_id)
        elif action == "edit":
            seg = next((x for x in self.session.segments if x.id == seg_id), None)
            if seg is None:
                return
            text, ok = QInputDialog.getMultiLineText(self, _t(TEXT, "edit_title"), _t(TEXT, "edit_label"),
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

    def _transcript_changed(self, change: Any) -> Any:
        """Apply ``change(consultation)`` (an edit, a delete, a restore, a relabel) and show it;
        after the draft it asks for a redraft (of what changed). Returns what ``change`` returned."""
        c = self.consultation
        if c is None:
            return None
        try:
            out = change(c)  # the consultation filters again (and updates the live note while recording)
        except SessionError as exc:
            self.status.setText(_t(TEXT, "error", why=exc))
            return None
        s = c.session
        if s.state is State.REVIEW and out != []:  # [] : a relabel to the role the lines had
            self._changed_after_draft = True
            self.redraft_btn.show()
            self.status.setText(_t(TEXT, "changed"))
        self._render_transcript()
        self._refresh_buttons()
        return out


def _markup(text: str, uncertain: set[str], term: str) -> tuple[str, int]:
    """The segment's text as HTML: uncertain words highlighted, search hits marked."""
    out, hits = [], 0
    for word in text.split():
        bare = word.strip(".,;:!?()«»\"'").lower()
        w = html.escape(word)
        if term and term in word.lower():
            hits += 1
            w = f'<span style="background:{SEARCH_BG}">{w}</span>'
        elif bare and bare in uncertain:
            w = f'<span style="background:{UNCERTAIN_BG}" title="usikker">{w}</span>'
        out.append(w)
    return " ".join(out), hits
