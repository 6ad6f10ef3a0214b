"""Template packs in the template editor: exporting the folder's templates to a zip pack and
importing a pack (on a worker thread, asking before overwriting newer files).

:class:`TemplatePacks` is the layer of :class:`app.gui.template_editor.TemplateEditor`
above :class:`app.gui.template_checks.TemplateChecks` (an import re-checks the open template);
the work itself is done by :mod:`summarize.templates.pack` and :mod:`summarize.templates.pack_import`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.gui import workers
from app.gui.i18n import text as _t
from app.gui.template_checks import TemplateChecks
from app.gui.template_text import TEXT
from summarize.errors import TemplateError
from summarize.templates.pack import PackEntry, export_pack
from summarize.templates.pack_import import ImportedTemplate, import_pack

logger = logging.getLogger(__name__)


class TemplatePacks(TemplateChecks):
    """Exports and imports the template packs of the editor's folder."""

    # -- packs -------------------------------------------------------------------------------
    def local_template_ids(self) -> list[str]:
        """The ids of the templates stored in this folder."""
        return sorted(tid for tid, p in self._available().items() if self._is_local(p))

    def export_pack_to(self, path: Path) -> list[PackEntry] | None:
        """Export every template of the folder (with the shared files they use) to ``path``."""
        ids = self.local_template_ids()
        if not ids:
            self._status(_t(TEXT, "no_templates", dir=self.directory), error=True)
            return None
        try:
            entries = export_pack(ids, Path(path), directories=[self.directory])
        except TemplateError as exc:
            self._status(_t(TEXT, "export_failed", why=exc), error=True)
            return None
        except Exception as exc:
            logger.warning("exporting a template pack failed: %s", type(exc).__name__)
            self._status(_t(TEXT, "export_failed", why=type(exc).__name__), error=True)
            return None
        self._status(_t(TEXT, "exported", n=len(entries), path=path))
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
            self._status(_t(TEXT, "import_failed", why=exc), error=True)
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
        self._status(_t(TEXT, "importing", path=Path(path).name))
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
            self, _t(TEXT, "import_title"), _t(TEXT, "overwrite_q", items=items),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.import_in_background(path, overwrite_newer=True)

    @Slot(str)
    def _on_import_failed(self, why: str) -> None:
        self._end_import()
        self._status(_t(TEXT, "import_failed", why=why), error=True)

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
        self._status(_t(TEXT, "imported", path=path.name, written=len(written),
                        skipped=len(results) - len(written)))

    def _on_export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, _t(TEXT, "export_title"), str(self.directory / "malpakke.zip"),
            _t(TEXT, "pack_filter"),
        )
        if name:
            path = Path(name)
            if path.suffix.lower() != ".zip":
                path = path.with_name(path.name + ".zip")
            self.export_pack_to(path)

    def _on_import_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, _t(TEXT, "import_title"), str(self.directory), _t(TEXT, "pack_filter")
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
