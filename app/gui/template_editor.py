"""Template editor for superusers: edit, validate, preview, save and share note templates.

:class:`TemplateEditor` is a plain widget; the main window opens it in a dialog in
superuser mode. Everything template-specific is done by the Qt-free
:mod:`summarize.templates.saving` (validation, version bump, change log, atomic save),
:mod:`summarize.templates.versions`, :mod:`summarize.templates.pack` (export) and
:mod:`summarize.templates.pack_import`.

The preview renders the edited template against a shared test consultation with the
extractive drafter (no language model, instant). Its text lives only in the widget:
nothing here writes or logs transcript or note text.

What the superuser starts (the check while typing, opening a template from the list, a
pack import) runs on a worker thread: a hostile template may take the render limit of
5 s, and the window must not freeze meanwhile. ``validate_now`` and ``import_pack_from``
do the same work synchronously, for scripts and tests.

The check and the preview are the base class :class:`app.gui.template_checks.TemplateChecks`,
the packs the base class :class:`app.gui.template_packs.TemplatePacks`, the highlighting
:class:`app.gui.template_highlighter.TemplateHighlighter`.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
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
    QVBoxLayout,
    QWidget,
)

from app.gui import workers
from app.gui.i18n import text as _t
from app.gui.template_highlighter import TemplateHighlighter
from app.gui.template_packs import TemplatePacks
from app.gui.template_text import TEXT
from summarize.errors import TemplateError
from summarize.templates.discovery import SUFFIX, available_templates
from summarize.templates.saving import name_for, save_template
from summarize.templates.schema import TemplateProblem
from summarize.templates.versions import set_version, template_id_of, version_of

logger = logging.getLogger(__name__)

_PATH_ROLE = Qt.ItemDataRole.UserRole
_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_DEBOUNCE_MS = 300


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except OSError:
        return None


class TemplateEditor(TemplatePacks):
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
            self._status(_t(TEXT, "folder_error", dir=self.directory,
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
        lv.addWidget(QLabel(_t(TEXT, "templates")))
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
        self.change_note.setPlaceholderText(_t(TEXT, "change_note_ph"))
        self.change_note.textChanged.connect(self._update_save_enabled)
        version_row = QHBoxLayout()
        version_row.addWidget(self.version_edit)
        version_row.addWidget(self.version_hint, 1)
        form = QFormLayout()
        form.addRow(_t(TEXT, "version"), version_row)
        form.addRow(_t(TEXT, "change_note"), self.change_note)

        self.problem_label = QLabel(_t(TEXT, "problems"))
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
        row.addWidget(QLabel(_t(TEXT, "consultation")))
        row.addWidget(self.consultation_box, 1)
        rv.addWidget(QLabel(_t(TEXT, "preview")))
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
        self.import_button = QPushButton(_t(TEXT, "import"))
        self.import_button.clicked.connect(self._on_import_clicked)
        self.export_button = QPushButton(_t(TEXT, "export"))
        self.export_button.clicked.connect(self._on_export_clicked)
        self.save_button = QPushButton(_t(TEXT, "save"))
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
            self._status(_t(TEXT, "folder_error", dir=self.directory, why=exc), error=True)
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
                item = QListWidgetItem(tid if local else _t(TEXT, "builtin", id=tid))
                item.setData(_PATH_ROLE, str(path))
                item.setData(_ID_ROLE, tid)
                item.setToolTip(
                    _t(TEXT, "local_tip", path=path)
                    if local
                    else _t(TEXT, "builtin_tip", dir=self.directory)
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
            self._status(_t(TEXT, "not_saved", why=f"unknown template {template_id!r}"),
                         error=True)
            return False
        try:
            source = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
        except (OSError, UnicodeDecodeError) as exc:
            self._status(_t(TEXT, "folder_error", dir=path, why=type(exc).__name__), error=True)
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
                self, _t(TEXT, "templates"),
                _t(TEXT, "unsaved_q", name=self._loaded_id or "?"),
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
            _t(TEXT, "position", line=c.blockNumber() + 1, col=c.positionInBlock() + 1)
        )

    def _on_version_edited(self) -> None:
        wanted = self.version_edit.text().strip()
        source = self.editor.toPlainText()
        if not wanted or wanted == version_of(source):
            return
        try:
            new_text = set_version(source, wanted)
        except TemplateError:
            self._status(_t(TEXT, "invalid_version", version=wanted), error=True)
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

    def _show_busy(self) -> None:
        busy = self._checking or self._importing is not None
        self.busy.setVisible(busy)
        if self._checking:
            self.problem_label.setText(_t(TEXT, "checking"))
            self.problem_label.setStyleSheet("")

    def _update_save_enabled(self) -> None:
        ok = (
            self._validated
            and not self._problems
            and bool(self.change_note.text().strip())
            and bool(self.editor.toPlainText().strip())
        )
        self.save_button.setEnabled(ok)

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
                    return self._save_failed(_t(TEXT, "changed_on_disk", name=name))
            elif target.exists():
                return self._save_failed(_t(TEXT, "exists", id=tid))
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
        self._status(_t(TEXT, "saved", id=result.id, version=result.new_version,
                        path=result.path))
        self.saved.emit(result.id, result.new_version)
        return True

    def _save_failed(self, why: str) -> bool:
        self._status(_t(TEXT, "not_saved", why=why), error=True)
        return False

    def wait_idle(self, ms: int = 60_000) -> bool:
        """Wait for a running check or import (closing the editor); True if none is left."""
        return self.runner.wait_all(ms)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        self._timer.stop()
        self.wait_idle()
        super().closeEvent(event)


def template_save_dir(settings: Any) -> Path:
    """Where the superuser's templates are saved: the configured directory, else the
    user data directory (add it to SCRIBE_TEMPLATE_DIR so drafting finds them)."""
    configured = getattr(getattr(settings, "app", None), "template_dir", "")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    path = Path(user_data_dir("ambient-scribe", appauthor=False)) / "templates"
    path.mkdir(parents=True, exist_ok=True)
    return path
