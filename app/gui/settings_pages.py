"""The settings dialog's Speech, Language model, Note and Program tabs: their fields, the
folder pickers, the path checks and the stored API key's hint.

:class:`SettingsPages` is the bottom layer of :class:`app.gui.settings_dialog.SettingsDialog`
(which builds the tabs, loads and saves the values). The layers are ``QDialog`` subclasses,
not plain mixins: PySide6 forgets the ``@Slot`` of a plain mixin once a signal is connected to
an undecorated method, and a worker's result would then run on the worker's thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.gui import i18n
from app.gui.settings_text import COMPUTE_TYPES, DEVICES, TEXT
from app.gui.settings_text import tr as _t
from app.settings import Settings, available_sinks, delete_api_key, has_api_key
from asr.errors import ConfigError
from summarize.llm.config import LlmConfig

logger = logging.getLogger(__name__)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", "/")) or "/" in name or "\\" in name


def combo_box(items: list[tuple[str, object]]) -> QComboBox:
    combo = QComboBox()
    for label, data in items:
        combo.addItem(label, data)
    return combo


class SettingsPages(QDialog):
    """Builds and checks the Speech, Language model, Note and Program tabs of the dialog."""

    def _row_with_browse(
        self, field: QWidget, target: QComboBox | QLineEdit
    ) -> tuple[QWidget, QPushButton]:
        """``field`` with a Browse button that picks a folder into ``target``."""
        return self._row_with_button(field, lambda: self._browse(target))

    def _row_with_button(self, field: QWidget, pick: Any) -> tuple[QWidget, QPushButton]:
        """``field`` with a Browse button that calls ``pick``."""
        button = QPushButton(_t("browse"))
        button.clicked.connect(pick)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field, 1)
        row.addWidget(button)
        return box, button

    def _build_asr_tab(self) -> QWidget:
        from asr.models import EMBEDDED

        page = QWidget()
        form = QFormLayout(page)
        self.asr_model = QComboBox()
        self.asr_model.setEditable(True)
        for model_id, spec in EMBEDDED.items():
            if spec.kind == "whisper":
                self.asr_model.addItem(model_id, model_id)
        row, self.asr_model_browse = self._row_with_browse(self.asr_model, self.asr_model)
        form.addRow(_t("asr_model"), row)
        self.asr_device = combo_box([(_t(f"device_{d}"), d) for d in DEVICES])
        form.addRow(_t("device"), self.asr_device)
        self.asr_compute = QComboBox()
        self.asr_compute.setEditable(True)
        self.asr_compute.addItems(list(COMPUTE_TYPES))
        form.addRow(_t("compute_type"), self.asr_compute)
        self.asr_language = combo_box([(_t("lang_no"), "no"), (_t("lang_nn"), "nn")])
        form.addRow(_t("asr_language"), self.asr_language)
        self.vad = QSpinBox()
        self.vad.setRange(0, 3)
        form.addRow(_t("vad"), self.vad)
        self.microphone = combo_box([(_t("mic_default"), "")])
        seen: set[str] = set()
        for dev in self._devices:
            name = str(dev.get("name", "")).strip()
            if name and name not in seen:
                seen.add(name)
                self.microphone.addItem(name, name)
        form.addRow(_t("microphone"), self.microphone)
        return page

    def _build_llm_tab(self) -> QWidget:
        from summarize.llm.models import DEFAULT_LLM_MODEL, EMBEDDED_LLMS
        from summarize.llm.registry import available_engines

        page = QWidget()
        form = QFormLayout(page)
        self.llm_engine = combo_box([(name, name) for name in available_engines()])
        form.addRow(_t("engine"), self.llm_engine)
        self.llm_model = QComboBox()
        self.llm_model.setEditable(True)
        self.llm_model.addItems(list(EMBEDDED_LLMS))
        line = self.llm_model.lineEdit()
        if line is not None:
            line.setPlaceholderText(_t("llm_model_default", model=DEFAULT_LLM_MODEL))
        row, self.llm_model_browse = self._row_with_browse(self.llm_model, self.llm_model)
        form.addRow(_t("llm_model"), row)
        self.llm_device = combo_box([(_t(f"device_{d}"), d) for d in DEVICES])
        form.addRow(_t("device"), self.llm_device)
        self.llm_compute = QComboBox()
        self.llm_compute.setEditable(True)
        self.llm_compute.addItems(list(COMPUTE_TYPES))
        form.addRow(_t("compute_type"), self.llm_compute)
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("https://llm.sykehus.local/v1")
        self.base_url.editingFinished.connect(self._update_key_hint)
        form.addRow(_t("base_url"), self.base_url)
        self.api_model = QLineEdit()
        form.addRow(_t("api_model"), self.api_model)
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(_t("api_key_placeholder"))
        form.addRow(_t("api_key"), self.api_key)
        self.api_key_hint = QLabel()
        self.api_key_hint.setWordWrap(True)
        self.api_key_delete = QPushButton(_t("api_key_delete"))
        self.api_key_delete.clicked.connect(self._delete_key)
        hint_row = QWidget()
        hint_layout = QHBoxLayout(hint_row)
        hint_layout.setContentsMargins(0, 0, 0, 0)
        hint_layout.addWidget(self.api_key_hint, 1)
        hint_layout.addWidget(self.api_key_delete)
        form.addRow("", hint_row)
        return page

    def _build_note_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.note_language = combo_box([(_t("nb"), "nb"), (_t("nn"), "nn")])
        form.addRow(_t("note_language"), self.note_language)
        self.template = QComboBox()
        for tid, title in self._templates():
            self.template.addItem(f"{title} ({tid})" if title else tid, tid)
        form.addRow(_t("template"), self.template)
        self.sink = QComboBox()
        for name in available_sinks():
            label = _t(f"sink_{name}") if f"sink_{name}" in TEXT["nb"] else name
            self.sink.addItem(label, name)
        form.addRow(_t("sink"), self.sink)
        self.clipboard_clear = QSpinBox()
        self.clipboard_clear.setRange(0, 86400)
        self.clipboard_clear.setSuffix(" s")
        self.clipboard_clear.setSpecialValueText(_t("never"))
        form.addRow(_t("clipboard_clear"), self.clipboard_clear)
        return page

    def _build_app_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.ui_language = combo_box([(name, code) for code, name in i18n.LANGUAGES.items()])
        form.addRow(_t("ui_language"), self.ui_language)
        self.superuser = QCheckBox(_t("superuser"))
        form.addRow("", self.superuser)
        self.superuser_hint = QLabel()
        self.superuser_hint.setWordWrap(True)
        form.addRow("", self.superuser_hint)
        self.template_dir = QLineEdit()
        self.template_dir.setPlaceholderText(_t("template_dir_placeholder"))
        row, self.template_dir_browse = self._row_with_browse(self.template_dir, self.template_dir)
        form.addRow(_t("template_dir"), row)
        self.consultations_dir = QLineEdit()
        row, self.consultations_dir_browse = self._row_with_browse(
            self.consultations_dir, self.consultations_dir
        )
        form.addRow(_t("consultations_dir"), row)
        return page

    def _templates(self) -> list[tuple[str, str]]:
        """(id, title) of the note templates, including the superuser template folder."""
        try:
            from summarize.templates.template import list_templates

            extra = None
            own = self._settings.app.template_dir
            if own and Path(own).expanduser().is_dir():
                extra = [Path(own).expanduser()]
            return [(t.id, t.title) for t in list_templates(extra)]
        except Exception as exc:  # a broken template folder must not block the settings
            logger.warning("cannot list note templates: %s", exc)
            return []

    def _check_paths(self, s: Settings) -> str | None:
        """Folders the user named that do not exist (the settings themselves allow them)."""
        from asr.models import EMBEDDED
        from summarize.llm.models import EMBEDDED_LLMS

        if s.asr.model not in EMBEDDED and not Path(s.asr.model).expanduser().is_dir():
            return _t("err_asr_model", path=s.asr.model)
        model = s.llm.model
        if (
            model
            and model not in EMBEDDED_LLMS
            and _looks_like_path(model)
            and not Path(model).expanduser().is_dir()
        ):
            return _t("err_llm_model", path=model)
        folder = s.app.consultations_dir
        if folder and not Path(folder).expanduser().is_dir():
            return _t("err_consultations", path=folder)
        return None

    def _browse(self, target: QComboBox | QLineEdit) -> None:
        current = target.currentText() if isinstance(target, QComboBox) else target.text()
        start = str(Path(current).expanduser()) if current and _looks_like_path(current) else ""
        chosen = QFileDialog.getExistingDirectory(self, _t("choose_dir"), start)
        if not chosen:
            return
        if isinstance(target, QComboBox):
            target.setCurrentText(chosen)
        else:
            target.setText(chosen)

    def _key_config(self) -> LlmConfig | None:
        """The LLM settings with the URL now typed (None while it is not a valid URL)."""
        data = self._settings.llm.model_dump()
        data["base_url"] = self.base_url.text().strip() or None
        try:
            return LlmConfig.model_validate(data)
        except Exception:
            return None

    def _update_key_hint(self) -> None:
        config = self._key_config()
        stored = bool(config and config.base_url and has_api_key(config))
        self.api_key_hint.setText(_t("api_key_stored") if stored else _t("api_key_none"))
        self.api_key_delete.setEnabled(stored)

    def _delete_key(self) -> None:
        config = self._key_config()
        if config is None or not config.base_url:
            return
        try:
            delete_api_key(config)
        except ConfigError as exc:
            self._fail(str(exc))
            return
        self._update_key_hint()
        self.api_key_hint.setText(_t("api_key_deleted"))
