"""Checking the template being edited: validation on a worker thread (or on demand), the
problem list with its red lines, and the preview against a test consultation.

:class:`TemplateChecks` is the bottom layer of :class:`app.gui.template_editor.TemplateEditor`
(which builds the widgets it uses). The layers are ``QWidget`` subclasses, not plain mixins:
PySide6 forgets the ``@Slot`` of a plain mixin once a signal is connected to an undecorated
method, and a check's result would then be shown from the worker's thread. The preview's text
lives only in the widget: nothing here writes or logs transcript or note text.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QListWidgetItem, QTextEdit, QWidget

from app.gui import workers
from app.gui.i18n import text as _t
from app.gui.template_text import TEXT
from summarize.errors import TemplateError
from summarize.templates.saving import check_text, name_for
from summarize.templates.schema import TemplateProblem
from summarize.templates.versions import bump_version, version_of

logger = logging.getLogger(__name__)

_LINE_ROLE = Qt.ItemDataRole.UserRole
_PROBLEM_BACKGROUND = QColor(255, 214, 214)


def _is_mine(p: TemplateProblem, directory: Path, name: str) -> bool:
    """The problem is in the edited file (not in a shared file it uses)."""
    return p.file == str(directory / name) or Path(p.file).name == name


def _problem_label(p: TemplateProblem, directory: Path, name: str) -> str:
    if _is_mine(p, directory, name):
        return _t(TEXT, "problem_line", line=p.line, message=p.message)
    return _t(TEXT, "problem_other", file=Path(p.file).name, line=p.line, message=p.message)


@dataclass(slots=True)
class _Checked:
    """What one check of the text found: the template (None if invalid), its problems and
    the preview's text."""

    source: str
    consultation: str | None
    template: Any
    problems: list[TemplateProblem]
    preview: str


class TemplateChecks(QWidget):
    """Validates the edited text, shows its problems and renders its preview."""

    # -- validation --------------------------------------------------------------------------
    def problems(self) -> list[TemplateProblem]:
        """The problems found by the last validation."""
        return list(self._problems)

    def validate_now(self) -> list[TemplateProblem]:
        """Validate the text now, on this thread, and show the result (problem list, red
        lines, version field, preview); the editor itself checks on a worker thread
        300 ms after the last key (:meth:`validate_in_background`)."""
        self._timer.stop()
        checked = self._check(self.editor.toPlainText(), self._consultation())
        self._apply(checked)
        return list(checked.problems)

    def validate_in_background(self) -> None:
        """Check the text on a worker thread; the result is shown when it comes, unless
        the text changed meanwhile (then it is checked again)."""
        self._timer.stop()
        if self._checking:
            self._check_again = True
            return
        self._checking = True
        self._check_again = False
        self._show_busy()
        task = workers.TaskWorker(
            functools.partial(self._check, self.editor.toPlainText(), self._consultation())
        )
        task.result.connect(self._on_checked)
        task.failed.connect(self._on_check_failed)
        self.runner.start(task)

    def is_checking(self) -> bool:
        """True while a check runs on a worker thread (or one is due after typing)."""
        return self._checking or self._timer.isActive()

    @Slot(object)
    def _on_checked(self, checked: object) -> None:
        self._checking = False
        assert isinstance(checked, _Checked)
        current = (self.editor.toPlainText(), self._consultation())
        if self._check_again or (checked.source, checked.consultation) != current:
            self.validate_in_background()  # stale: what is on screen was not checked
            return
        self._show_busy()
        self._apply(checked)

    @Slot(str)
    def _on_check_failed(self, why: str) -> None:
        self._checking = False
        self._show_busy()
        self._status(_t(TEXT, "preview_failed", why=why), error=True)

    def _consultation(self) -> str | None:
        data = self.consultation_box.currentData()
        return str(data) if data else None

    def _check(self, source: str, consultation: str | None) -> _Checked:
        """Validate ``source`` and render its preview; no widget is touched (runs on a
        worker thread)."""
        name = name_for(source)
        tpl, problems = check_text(source, name, self.directory)
        preview = self._preview_for(tpl, consultation, problems, name)
        return _Checked(source, consultation, tpl, problems, preview)

    def _apply(self, checked: _Checked) -> None:
        source, problems = checked.source, checked.problems
        name = name_for(source)
        self._problems = problems
        self._validated = True

        self.problem_list.clear()
        selections: list[QTextEdit.ExtraSelection] = []
        for p in problems:
            mine = _is_mine(p, self.directory, name)
            label = _problem_label(p, self.directory, name)
            item = QListWidgetItem(label)
            item.setToolTip(label)
            item.setForeground(QColor("#b00020"))
            if mine:
                item.setData(_LINE_ROLE, p.line)
                block = self.editor.document().findBlockByNumber(p.line - 1)
                if block.isValid():
                    sel = QTextEdit.ExtraSelection()
                    fmt = QTextCharFormat()
                    fmt.setBackground(_PROBLEM_BACKGROUND)
                    fmt.setProperty(QTextFormat.Property.FullWidthSelection, True)
                    sel.format = fmt  # type: ignore[misc]
                    sel.cursor = QTextCursor(block)  # type: ignore[misc]
                    selections.append(sel)
            self.problem_list.addItem(item)
        self.editor.setExtraSelections(selections)
        self.problem_label.setText(
            _t(TEXT, "problem_count", n=len(problems)) if problems else _t(TEXT, "no_problems")
        )
        self.problem_label.setStyleSheet("color: #b00020;" if problems else "")

        version = version_of(source)
        if not self.version_edit.hasFocus():
            self.version_edit.setText(version or "")
        hint = ""
        if version and self._loaded_version and version == self._loaded_version:
            try:
                hint = _t(TEXT, "next_version", version=bump_version(version))
            except TemplateError:
                hint = ""
        self.version_hint.setText(hint)

        self._update_save_enabled()
        self.preview.setPlainText(checked.preview)
        self.problems_changed.emit(len(problems))

    def _on_problem_clicked(self, item: QListWidgetItem) -> None:
        line = item.data(_LINE_ROLE)
        if isinstance(line, int) and line > 0:
            self.go_to_line(line)

    # -- preview -----------------------------------------------------------------------------
    def _fill_consultations(self) -> None:
        self.consultation_box.blockSignals(True)
        try:
            self.consultation_box.clear()
            files: list[Path] = []
            if self.consultations_dir and self.consultations_dir.is_dir():
                files = sorted(self.consultations_dir.glob("*.yaml"))
            for f in files:
                self.consultation_box.addItem(f.stem, str(f))
            self.consultation_box.addItem(_t(TEXT, "sample"), None)
            self.consultation_box.setCurrentIndex(0)
        finally:
            self.consultation_box.blockSignals(False)

    def consultation_ids(self) -> list[str]:
        """The consultations the preview can use (file stems)."""
        return [
            self.consultation_box.itemText(i)
            for i in range(self.consultation_box.count())
            if self.consultation_box.itemData(i)
        ]

    def select_consultation(self, consultation_id: str) -> bool:
        """Preview against this consultation (updates the preview)."""
        i = self.consultation_box.findText(consultation_id)
        if i < 0 or not self.consultation_box.itemData(i):
            return False
        self.consultation_box.setCurrentIndex(i)
        self._update_preview()
        return True

    def preview_text(self) -> str:
        return self.preview.toPlainText()

    def _update_preview(self) -> None:
        if not self.editor.toPlainText().strip():
            self.preview.setPlainText("")
            return
        self.validate_in_background()

    def _preview_for(self, tpl: Any, consultation: str | None,
                     problems: list[TemplateProblem], name: str) -> str:
        if tpl is None:
            lines = [_t(TEXT, "preview_invalid"), ""]
            lines += [_problem_label(p, self.directory, name) for p in problems[:10]]
            return "\n".join(lines)
        try:
            if consultation:
                result = self._draft(Path(consultation), tpl)
                return str(tpl.render(result.draft))
            return str(tpl.render_sample())
        except TemplateError as exc:
            return _t(TEXT, "preview_failed", why=exc)
        except Exception as exc:  # the preview must never take the editor down
            logger.debug("template preview failed: %s", type(exc).__name__)
            return _t(TEXT, "preview_failed", why=type(exc).__name__)

    def _draft(self, consultation: Path, tpl: Any) -> Any:
        from summarize.draft.note import make_note
        from summarize.draft.smalltalk import SmallTalkFilter
        from summarize.draft.smalltalk_eval import load_consultation
        from summarize.grounding.verify import Verifier

        if consultation not in self._utterances:
            self._utterances[consultation] = load_consultation(consultation)[0]
        if self._smalltalk is None:
            self._smalltalk = SmallTalkFilter()
        if self._verifier is None:
            self._verifier = Verifier()
        return make_note(self._utterances[consultation], tpl, None,
                         smalltalk=self._smalltalk, verifier=self._verifier)
