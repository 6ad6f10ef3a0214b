"""Template editor for superusers: edit, validate, preview, save and share note templates.

:class:`TemplateEditor` is a plain widget; the main window opens it in a dialog in
superuser mode. Everything template-specific is done by the Qt-free
:mod:`summarize.templates.pack` (validation, version bump, change log, atomic save, packs).

The preview renders the edited template against a shared test consultation with the
extractive drafter (no language model, instant). Its text lives only in the widget:
nothing here writes or logs transcript or note text.

What the superuser starts (the check while typing, opening a template from the list, a
pack import) runs on a worker thread: a hostile template may take the render limit of
5 s, and the window must not freeze meanwhile. ``validate_now`` and ``import_pack_from``
do the same work synchronously, for scripts and tests.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.gui import workers
from app.gui.i18n import text as _t
from summarize.errors import TemplateError
from summarize.templates.pack import (
    ImportedTemplate,
    PackEntry,
    bump_version,
    check_text,
    export_pack,
    import_pack,
    name_for,
    save_template,
    set_version,
    template_id_of,
    version_of,
)
from summarize.templates.template import SUFFIX, TemplateProblem, available_templates

logger = logging.getLogger(__name__)

_TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "templates": "Maler",
        "builtin": "{id} (innebygd)",
        "builtin_tip": "Innebygd mal: lagres som egen kopi i {dir}",
        "local_tip": "{path}",
        "version": "Versjon:",
        "next_version": "lagres som {version}",
        "change_note": "Endringsnotat:",
        "change_note_ph": "Hva er endret, og hvorfor (påkrevd for å lagre)",
        "problems": "Kontroll av malen",
        "no_problems": "Ingen feil",
        "problem_count": "{n} feil – malen kan ikke lagres før de er rettet",
        "problem_line": "linje {line}: {message}",
        "problem_other": "{file} linje {line}: {message}",
        "preview": "Forhåndsvisning",
        "consultation": "Konsultasjon:",
        "sample": "Eksempeltekst (ingen konsultasjon)",
        "preview_invalid": "Malen har feil – forhåndsvisningen vises når de er rettet:",
        "preview_failed": "Forhåndsvisningen feilet: {why}",
        "save": "Lagre",
        "export": "Eksporter malpakke …",
        "import": "Importer malpakke …",
        "saved": "Lagret {id} versjon {version} i {path}",
        "not_saved": "Ikke lagret: {why}",
        "changed_on_disk": "{name} er endret på disk etter at den ble åpnet – åpne den på nytt",
        "exists": "Det finnes allerede en mal med id «{id}» i mappen – åpne den, "
        "eller velg en annen id",
        "exported": "Eksporterte {n} fil(er) til {path}",
        "export_failed": "Ikke eksportert: {why}",
        "no_templates": "Ingen egne maler i {dir} å eksportere",
        "imported": "Importert fra {path}: {written} fil(er) skrevet, {skipped} hoppet over",
        "import_failed": "Ikke importert: {why}",
        "overwrite_q": "Disse ble hoppet over fordi filen i mappen er lik eller nyere:\n\n"
        "{items}\n\nOverskrive dem med filene fra pakken?",
        "unsaved_q": "Endringene i {name} er ikke lagret. Forkaste dem?",
        "pack_filter": "Malpakke (*.zip)",
        "export_title": "Eksporter malpakke",
        "import_title": "Importer malpakke",
        "folder_error": "Malmappen {dir} kan ikke brukes: {why}",
        "position": "Linje {line}, kolonne {col}",
        "invalid_version": "«{version}» er ikke en gyldig versjon (MAJOR.MINOR.PATCH)",
        "checking": "Kontrollerer malen …",
        "importing": "Importerer {path} …",
    },
    "en": {
        "templates": "Templates",
        "builtin": "{id} (built-in)",
        "builtin_tip": "Built-in template: saved as a copy of its own in {dir}",
        "local_tip": "{path}",
        "version": "Version:",
        "next_version": "saved as {version}",
        "change_note": "Change note:",
        "change_note_ph": "What changed, and why (required to save)",
        "problems": "Template check",
        "no_problems": "No problems",
        "problem_count": "{n} problem(s) – the template cannot be saved until they are fixed",
        "problem_line": "line {line}: {message}",
        "problem_other": "{file} line {line}: {message}",
        "preview": "Preview",
        "consultation": "Consultation:",
        "sample": "Sample text (no consultation)",
        "preview_invalid": "The template has problems – the preview shows once they are fixed:",
        "preview_failed": "The preview failed: {why}",
        "save": "Save",
        "export": "Export template pack …",
        "import": "Import template pack …",
        "saved": "Saved {id} version {version} to {path}",
        "not_saved": "Not saved: {why}",
        "changed_on_disk": "{name} was changed on disk after it was opened – open it again",
        "exists": "A template with id '{id}' already exists in the folder – open it, "
        "or choose another id",
        "exported": "Exported {n} file(s) to {path}",
        "export_failed": "Not exported: {why}",
        "no_templates": "No templates of your own in {dir} to export",
        "imported": "Imported from {path}: {written} file(s) written, {skipped} skipped",
        "import_failed": "Not imported: {why}",
        "overwrite_q": "These were skipped because the file in the folder is equal or newer:\n\n"
        "{items}\n\nOverwrite them with the files from the pack?",
        "unsaved_q": "The changes to {name} are not saved. Discard them?",
        "pack_filter": "Template pack (*.zip)",
        "export_title": "Export template pack",
        "import_title": "Import template pack",
        "folder_error": "The template folder {dir} cannot be used: {why}",
        "position": "Line {line}, column {col}",
        "invalid_version": "'{version}' is not a valid version (MAJOR.MINOR.PATCH)",
        "checking": "Checking the template …",
        "importing": "Importing {path} …",
    },
}

_PATH_ROLE = Qt.ItemDataRole.UserRole
_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_LINE_ROLE = Qt.ItemDataRole.UserRole
_PROBLEM_BACKGROUND = QColor(255, 214, 214)
_DEBOUNCE_MS = 300


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except OSError:
        return None


# -- syntax highlighting ---------------------------------------------------------------------
def _fmt(color: str, *, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


class TemplateHighlighter(QSyntaxHighlighter):
    """YAML front matter (keys, strings, comments) and the Jinja2 body
    (``{{ }}``, ``{% %}``, ``{# #}``, also multi-line comments)."""

    NONE, FRONT, BODY, COMMENT = -1, 1, 2, 3

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.formats = {
            "marker": _fmt("#7a7a7a", bold=True),
            "key": _fmt("#1f4e9c", bold=True),
            "dash": _fmt("#1f4e9c"),
            "string": _fmt("#2e7d32"),
            "comment": _fmt("#8a8a8a", italic=True),
            "expr": _fmt("#7b1fa2"),
            "tag": _fmt("#b35900", bold=True),
            "jcomment": _fmt("#8a8a8a", italic=True),
        }
        self._key = QRegularExpression(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*:(?=\s|$)")
        self._dash = QRegularExpression(r"^\s*(-)(?=\s)")
        self._string = QRegularExpression(r"\"(?:[^\"\\]|\\.)*\"?|'(?:[^']|'')*'?")

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        prev = self.previousBlockState()
        if prev == self.NONE:
            if text.strip() == "---":
                self.setFormat(0, len(text), self.formats["marker"])
                self.setCurrentBlockState(self.FRONT)
                return
            prev = self.BODY
        if prev == self.FRONT:
            if text.rstrip() in ("---", "..."):
                self.setFormat(0, len(text), self.formats["marker"])
                self.setCurrentBlockState(self.BODY)
            else:
                self._yaml(text)
                self.setCurrentBlockState(self.FRONT)
            return
        self.setCurrentBlockState(self._jinja(text, prev == self.COMMENT))

    def _yaml(self, text: str) -> None:
        strings: list[tuple[int, int]] = []
        it = self._string.globalMatch(text)
        while it.hasNext():
            m = it.next()
            strings.append((m.capturedStart(), m.capturedEnd()))
            self.setFormat(m.capturedStart(), m.capturedLength(), self.formats["string"])
        m = self._dash.match(text)
        if m.hasMatch():
            self.setFormat(m.capturedStart(1), 1, self.formats["dash"])
        m = self._key.match(text)
        if m.hasMatch():
            self.setFormat(m.capturedStart(1), m.capturedLength(1), self.formats["key"])
        for i, ch in enumerate(text):
            if ch == "#" and (i == 0 or text[i - 1].isspace()):
                if not any(a <= i < b for a, b in strings):
                    self.setFormat(i, len(text) - i, self.formats["comment"])
                    break

    def _jinja(self, text: str, in_comment: bool) -> int:
        """Highlight one body line; the state for the next line."""
        pos = 0
        if in_comment:
            end = text.find("#}")
            if end < 0:
                self.setFormat(0, len(text), self.formats["jcomment"])
                return self.COMMENT
            self.setFormat(0, end + 2, self.formats["jcomment"])
            pos = end + 2
        while True:
            starts = [(text.find(o, pos), o) for o in ("{{", "{%", "{#")]
            starts = [(i, o) for i, o in starts if i >= 0]
            if not starts:
                return self.BODY
            start, opener = min(starts)
            closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[opener]
            end = text.find(closer, start + 2)
            if opener == "{#":
                if end < 0:
                    self.setFormat(start, len(text) - start, self.formats["jcomment"])
                    return self.COMMENT
                self.setFormat(start, end + 2 - start, self.formats["jcomment"])
            else:
                stop = len(text) if end < 0 else end + 2
                kind = "expr" if opener == "{{" else "tag"
                self.setFormat(start, stop - start, self.formats[kind])
                it = self._string.globalMatch(text[start:stop])
                while it.hasNext():
                    m = it.next()
                    self.setFormat(start + m.capturedStart(), m.capturedLength(),
                                   self.formats["string"])
                if end < 0:
                    return self.BODY
            pos = end + 2


# -- the editor ------------------------------------------------------------------------------
def _is_mine(p: TemplateProblem, directory: Path, name: str) -> bool:
    """The problem is in the edited file (not in a shared file it uses)."""
    return p.file == str(directory / name) or Path(p.file).name == name


def _problem_label(p: TemplateProblem, directory: Path, name: str) -> str:
    if _is_mine(p, directory, name):
        return _t(_TEXT, "problem_line", line=p.line, message=p.message)
    return _t(_TEXT, "problem_other", file=Path(p.file).name, line=p.line, message=p.message)


@dataclass(slots=True)
class _Checked:
    """What one check of the text found: the template (None if invalid), its problems and
    the preview's text."""

    source: str
    consultation: str | None
    template: Any
    problems: list[TemplateProblem]
    preview: str


class TemplateEditor(QWidget):
    """Edit the note templates of one folder: validate while typing, preview, save with a
    change note (the version is bumped), export and import template packs."""

    saved = Signal(str, str)  # template id, new version
    problems_changed = Signal(int)  # number of problems after a validation

    def __init__(
        self,
        directory: Path,
        consultations_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.directory = Path(directory).expanduser()
        self.consultations_dir = Path(consultations_dir) if consultations_dir else None
        self._problems: list[TemplateProblem] = []
        self._validated = False
        self._quiet = False  # text set by the program, not typed
        self._saved_text = ""  # the text as opened or last saved
        self._loaded_id: str | None = None
        self._loaded_version: str | None = None
        self._disk_name: str | None = None  # <id>.md.j2 in self.directory when opened
        self._disk_sha: str | None = None  # its bytes then (None: did not exist)
        self._utterances: dict[Path, Any] = {}
        self._smalltalk: Any = None
        self._verifier: Any = None
        self.runner = workers.Runner(self)
        self._checking = False  # a check runs on a worker thread
        self._check_again = False  # the text or the consultation changed meanwhile
        self._importing: Path | None = None
        self._import_overwrite = False

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_DEBOUNCE_MS)
        self._timer.timeout.connect(self.validate_in_background)
        self._build()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._status(_t(_TEXT, "folder_error", dir=self.directory,
                            why=exc.strerror or exc), error=True)
        self.refresh_list()
        self._fill_consultations()
        self._update_save_enabled()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.template_list = QListWidget()
        self.template_list.currentItemChanged.connect(self._on_list_changed)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel(_t(_TEXT, "templates")))
        lv.addWidget(self.template_list)

        self.editor = QPlainTextEdit()
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setTabChangesFocus(False)
        self.highlighter = TemplateHighlighter(self.editor.document())
        self.editor.textChanged.connect(self._on_text_changed)
        self.editor.cursorPositionChanged.connect(self._on_cursor_moved)

        self.version_edit = QLineEdit()
        self.version_edit.setMaximumWidth(120)
        self.version_edit.editingFinished.connect(self._on_version_edited)
        self.version_hint = QLabel()
        self.change_note = QLineEdit()
        self.change_note.setPlaceholderText(_t(_TEXT, "change_note_ph"))
        self.change_note.textChanged.connect(self._update_save_enabled)
        version_row = QHBoxLayout()
        version_row.addWidget(self.version_edit)
        version_row.addWidget(self.version_hint, 1)
        form = QFormLayout()
        form.addRow(_t(_TEXT, "version"), version_row)
        form.addRow(_t(_TEXT, "change_note"), self.change_note)

        self.problem_label = QLabel(_t(_TEXT, "problems"))
        self.busy = QProgressBar()  # indeterminate while a check or an import runs
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.problem_list = QListWidget()
        self.problem_list.setMaximumHeight(140)
        self.problem_list.itemClicked.connect(self._on_problem_clicked)
        self.problem_list.itemActivated.connect(self._on_problem_clicked)
        self.position_label = QLabel()

        centre = QWidget()
        cv = QVBoxLayout(centre)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addLayout(form)
        cv.addWidget(self.editor, 1)
        cv.addWidget(self.position_label)
        cv.addWidget(self.problem_label)
        cv.addWidget(self.busy)
        cv.addWidget(self.problem_list)

        self.consultation_box = QComboBox()
        self.consultation_box.currentIndexChanged.connect(self._update_preview)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setUndoRedoEnabled(False)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel(_t(_TEXT, "consultation")))
        row.addWidget(self.consultation_box, 1)
        rv.addWidget(QLabel(_t(_TEXT, "preview")))
        rv.addLayout(row)
        rv.addWidget(self.preview, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(centre)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 4)
        splitter.setStretchFactor(2, 3)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.import_button = QPushButton(_t(_TEXT, "import"))
        self.import_button.clicked.connect(self._on_import_clicked)
        self.export_button = QPushButton(_t(_TEXT, "export"))
        self.export_button.clicked.connect(self._on_export_clicked)
        self.save_button = QPushButton(_t(_TEXT, "save"))
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)

    def _status(self, message: str, *, error: bool = False) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #b00020;" if error else "")

    # -- templates in the folder -------------------------------------------------------------
    def _available(self) -> dict[str, Path]:
        try:
            return available_templates([self.directory])
        except TemplateError as exc:
            self._status(_t(_TEXT, "folder_error", dir=self.directory, why=exc), error=True)
            return {}

    def _is_local(self, path: Path) -> bool:
        try:
            return path.resolve().parent == self.directory.resolve()
        except OSError:
            return False

    def refresh_list(self) -> None:
        """List the templates (this folder's, then the read-only built-in ones)."""
        current = self._loaded_id
        self.template_list.blockSignals(True)
        try:
            self.template_list.clear()
            for tid, path in sorted(self._available().items()):
                local = self._is_local(path)
                item = QListWidgetItem(tid if local else _t(_TEXT, "builtin", id=tid))
                item.setData(_PATH_ROLE, str(path))
                item.setData(_ID_ROLE, tid)
                item.setToolTip(
                    _t(_TEXT, "local_tip", path=path)
                    if local
                    else _t(_TEXT, "builtin_tip", dir=self.directory)
                )
                if not local:
                    item.setForeground(QColor("#666666"))
                self.template_list.addItem(item)
                if tid == current:
                    self.template_list.setCurrentItem(item)
        finally:
            self.template_list.blockSignals(False)

    def template_ids(self) -> list[str]:
        """The ids in the list, in list order."""
        return [
            str(self.template_list.item(i).data(_ID_ROLE))
            for i in range(self.template_list.count())
        ]

    def is_modified(self) -> bool:
        """True when the text differs from the text as opened or last saved."""
        return self.editor.toPlainText() != self._saved_text

    def open_template(self, template_id: str, *, background: bool = False) -> bool:
        """Load a template into the editor (unsaved changes are dropped) and check it (on a
        worker thread with ``background``)."""
        path = self._available().get(template_id)
        if path is None:
            self._status(_t(_TEXT, "not_saved", why=f"unknown template {template_id!r}"),
                         error=True)
            return False
        try:
            source = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
        except (OSError, UnicodeDecodeError) as exc:
            self._status(_t(_TEXT, "folder_error", dir=path, why=type(exc).__name__), error=True)
            return False
        self._loaded_id = template_id
        self._loaded_version = version_of(source)
        self._disk_name = f"{template_id}{SUFFIX}"
        self._disk_sha = _file_sha(self.directory / self._disk_name)
        self._set_text(source, replace_all=True)
        self._saved_text = self.editor.toPlainText()
        self.change_note.clear()
        self._status("")
        self.refresh_list()
        if background:
            self.version_edit.setText(self._loaded_version or "")
            self.validate_in_background()
        else:
            self.validate_now()
        return True

    def _on_list_changed(self, current: QListWidgetItem | None,
                         previous: QListWidgetItem | None) -> None:
        if current is None:
            return
        tid = str(current.data(_ID_ROLE))
        if tid == self._loaded_id:
            return
        if self.is_modified():
            answer = QMessageBox.question(
                self, _t(_TEXT, "templates"),
                _t(_TEXT, "unsaved_q", name=self._loaded_id or "?"),
                QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Discard:
                if previous is not None:
                    self.template_list.blockSignals(True)
                    self.template_list.setCurrentItem(previous)
                    self.template_list.blockSignals(False)
                return
        self.open_template(tid, background=True)

    # -- editing -----------------------------------------------------------------------------
    def _set_text(self, text: str, *, replace_all: bool = False) -> None:
        """Set the editor text without counting it as typing; an edit keeps undo history
        and the cursor (only the changed span is replaced)."""
        self._quiet = True
        try:
            if replace_all:
                self.editor.setPlainText(text)
                return
            old = self.editor.toPlainText()
            if old == text:
                return
            start = 0
            limit = min(len(old), len(text))
            while start < limit and old[start] == text[start]:
                start += 1
            end_old, end_new = len(old), len(text)
            while end_old > start and end_new > start and old[end_old - 1] == text[end_new - 1]:
                end_old -= 1
                end_new -= 1
            cursor = QTextCursor(self.editor.document())
            cursor.setPosition(start)
            cursor.setPosition(end_old, QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(text[start:end_new])
        finally:
            self._quiet = False

    def _on_text_changed(self) -> None:
        if self._quiet:
            return
        self._validated = False
        self._update_save_enabled()
        self._timer.start()

    def _on_cursor_moved(self) -> None:
        c = self.editor.textCursor()
        self.position_label.setText(
            _t(_TEXT, "position", line=c.blockNumber() + 1, col=c.positionInBlock() + 1)
        )

    def _on_version_edited(self) -> None:
        wanted = self.version_edit.text().strip()
        source = self.editor.toPlainText()
        if not wanted or wanted == version_of(source):
            return
        try:
            new_text = set_version(source, wanted)
        except TemplateError:
            self._status(_t(_TEXT, "invalid_version", version=wanted), error=True)
            self.version_edit.setText(version_of(source) or "")
            return
        self._set_text(new_text)
        self.validate_in_background()

    def go_to_line(self, line: int) -> None:
        """Put the cursor at the start of ``line`` (1-based) and show it."""
        block = self.editor.document().findBlockByNumber(max(0, line - 1))
        if not block.isValid():
            block = self.editor.document().lastBlock()
        self.editor.setTextCursor(QTextCursor(block))
        self.editor.centerCursor()
        self.editor.setFocus()

    def _on_problem_clicked(self, item: QListWidgetItem) -> None:
        line = item.data(_LINE_ROLE)
        if isinstance(line, int) and line > 0:
            self.go_to_line(line)

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
        self._status(_t(_TEXT, "preview_failed", why=why), error=True)

    def _show_busy(self) -> None:
        busy = self._checking or self._importing is not None
        self.busy.setVisible(busy)
        if self._checking:
            self.problem_label.setText(_t(_TEXT, "checking"))
            self.problem_label.setStyleSheet("")

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
            _t(_TEXT, "problem_count", n=len(problems)) if problems else _t(_TEXT, "no_problems")
        )
        self.problem_label.setStyleSheet("color: #b00020;" if problems else "")

        version = version_of(source)
        if not self.version_edit.hasFocus():
            self.version_edit.setText(version or "")
        hint = ""
        if version and self._loaded_version and version == self._loaded_version:
            try:
                hint = _t(_TEXT, "next_version", version=bump_version(version))
            except TemplateError:
                hint = ""
        self.version_hint.setText(hint)

        self._update_save_enabled()
        self.preview.setPlainText(checked.preview)
        self.problems_changed.emit(len(problems))

    def _update_save_enabled(self) -> None:
        ok = (
            self._validated
            and not self._problems
            and bool(self.change_note.text().strip())
            and bool(self.editor.toPlainText().strip())
        )
        self.save_button.setEnabled(ok)

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
            self.consultation_box.addItem(_t(_TEXT, "sample"), None)
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
            lines = [_t(_TEXT, "preview_invalid"), ""]
            lines += [_problem_label(p, self.directory, name) for p in problems[:10]]
            return "\n".join(lines)
        try:
            if consultation:
                result = self._draft(Path(consultation), tpl)
                return str(tpl.render(result.draft))
            return str(tpl.render_sample())
        except TemplateError as exc:
            return _t(_TEXT, "preview_failed", why=exc)
        except Exception as exc:  # the preview must never take the editor down
            logger.debug("template preview failed: %s", type(exc).__name__)
            return _t(_TEXT, "preview_failed", why=type(exc).__name__)

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

    # -- saving ------------------------------------------------------------------------------
    def save(self) -> bool:
        """Validate and save into the folder (version bumped, change note recorded).
        On any problem the message is shown and nothing is written."""
        if not self._validated or self._timer.isActive():
            self.validate_now()
        source = self.editor.toPlainText()
        name = name_for(source)
        target = self.directory / name
        tid = template_id_of(source)
        if tid is not None and not self._problems:
            if name == self._disk_name:
                if _file_sha(target) != self._disk_sha:
                    return self._save_failed(_t(_TEXT, "changed_on_disk", name=name))
            elif target.exists():
                return self._save_failed(_t(_TEXT, "exists", id=tid))
        previous = self._loaded_version if tid is not None and tid == self._loaded_id else None
        try:
            result = save_template(
                source, self.directory,
                change_note=self.change_note.text(), previous_version=previous,
            )
        except TemplateError as exc:
            return self._save_failed(str(exc))
        except Exception as exc:  # never crash the app on a save
            logger.warning("saving a template failed: %s", type(exc).__name__)
            return self._save_failed(type(exc).__name__)
        self._set_text(result.text)
        self._saved_text = self.editor.toPlainText()
        self._loaded_id = result.id
        self._loaded_version = result.new_version
        self._disk_name = result.path.name
        self._disk_sha = _file_sha(result.path)
        self.change_note.clear()
        self.refresh_list()
        self.validate_now()
        self._status(_t(_TEXT, "saved", id=result.id, version=result.new_version,
                        path=result.path))
        self.saved.emit(result.id, result.new_version)
        return True

    def _save_failed(self, why: str) -> bool:
        self._status(_t(_TEXT, "not_saved", why=why), error=True)
        return False

    # -- packs -------------------------------------------------------------------------------
    def local_template_ids(self) -> list[str]:
        """The ids of the templates stored in this folder."""
        return sorted(tid for tid, p in self._available().items() if self._is_local(p))

    def export_pack_to(self, path: Path) -> list[PackEntry] | None:
        """Export every template of the folder (with the shared files they use) to ``path``."""
        ids = self.local_template_ids()
        if not ids:
            self._status(_t(_TEXT, "no_templates", dir=self.directory), error=True)
            return None
        try:
            entries = export_pack(ids, Path(path), directories=[self.directory])
        except TemplateError as exc:
            self._status(_t(_TEXT, "export_failed", why=exc), error=True)
            return None
        except Exception as exc:
            logger.warning("exporting a template pack failed: %s", type(exc).__name__)
            self._status(_t(_TEXT, "export_failed", why=type(exc).__name__), error=True)
            return None
        self._status(_t(_TEXT, "exported", n=len(entries), path=path))
        return entries

    def import_pack_from(
        self, path: Path, *, overwrite_newer: bool = False
    ) -> list[ImportedTemplate] | None:
        """Import a template pack into the folder (all or nothing), on this thread; the
        open template is reloaded when the pack replaced it and it had no unsaved changes.
        The Import button does the same on a worker thread (:meth:`import_in_background`)."""
        try:
            results = _import(Path(path), self.directory, overwrite_newer)
        except TemplateError as exc:
            self._status(_t(_TEXT, "import_failed", why=exc), error=True)
            return None
        self._after_import(Path(path), results, background=False)
        return results

    def import_in_background(self, path: Path, *, overwrite_newer: bool = False) -> bool:
        """Start importing ``path`` on a worker thread (False if an import already runs);
        a progress bar shows meanwhile, and the Import button is off."""
        if self._importing is not None:
            return False
        self._importing = Path(path)
        self._import_overwrite = overwrite_newer
        self.import_button.setEnabled(False)
        self._status(_t(_TEXT, "importing", path=Path(path).name))
        self._show_busy()
        task = workers.TaskWorker(
            functools.partial(_import, Path(path), self.directory, overwrite_newer)
        )
        task.result.connect(self._on_imported)
        task.failed.connect(self._on_import_failed)
        self.runner.start(task)
        return True

    def is_importing(self) -> bool:
        return self._importing is not None

    @Slot(object)
    def _on_imported(self, results: object) -> None:
        path, overwrite = self._end_import()
        assert isinstance(results, list)
        self._after_import(path, results, background=True)
        kept = [r for r in results if not r.written and not r.reason.startswith("identical")]
        if overwrite or not kept:
            return
        items = "\n".join(f"• {r.name}: {r.reason}" for r in kept)
        answer = QMessageBox.question(
            self, _t(_TEXT, "import_title"), _t(_TEXT, "overwrite_q", items=items),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.import_in_background(path, overwrite_newer=True)

    @Slot(str)
    def _on_import_failed(self, why: str) -> None:
        self._end_import()
        self._status(_t(_TEXT, "import_failed", why=why), error=True)

    def _end_import(self) -> tuple[Path, bool]:
        path, self._importing = self._importing or Path("?"), None
        self.import_button.setEnabled(True)
        self._show_busy()
        return path, self._import_overwrite

    def _after_import(self, path: Path, results: list[ImportedTemplate], *, background: bool) -> None:
        written = [r for r in results if r.written]
        reopen = (
            self._loaded_id is not None
            and not self.is_modified()
            and any(r.kind == "template" and r.id == self._loaded_id for r in written)
        )
        self.refresh_list()
        if reopen and self._loaded_id is not None:
            self.open_template(self._loaded_id, background=background)
        elif written:  # new shared files may change the open template
            (self.validate_in_background if background else self.validate_now)()
        self._status(_t(_TEXT, "imported", path=path.name, written=len(written),
                        skipped=len(results) - len(written)))

    def wait_idle(self, ms: int = 60_000) -> bool:
        """Wait for a running check or import (closing the editor); True if none is left."""
        return self.runner.wait_all(ms)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self._timer.stop()
        self.wait_idle()
        super().closeEvent(event)

    def _on_export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, _t(_TEXT, "export_title"), str(self.directory / "malpakke.zip"),
            _t(_TEXT, "pack_filter"),
        )
        if name:
            path = Path(name)
            if path.suffix.lower() != ".zip":
                path = path.with_name(path.name + ".zip")
            self.export_pack_to(path)

    def _on_import_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, _t(_TEXT, "import_title"), str(self.directory), _t(_TEXT, "pack_filter")
        )
        if name:
            self.import_in_background(Path(name))


def _import(path: Path, directory: Path, overwrite_newer: bool) -> list[ImportedTemplate]:
    """Import a pack; any failure is a :class:`TemplateError` with a one-line reason (its
    type only when it is not ours: the message could quote a file's content)."""
    try:
        return import_pack(path, directory, overwrite_newer=overwrite_newer)
    except TemplateError:
        raise
    except Exception as exc:
        logger.warning("importing a template pack failed: %s", type(exc).__name__)
        raise TemplateError(type(exc).__name__) from None
