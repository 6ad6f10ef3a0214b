"""The settings dialog: speech recognition, voice profile, language model, note, record (EPJ)
and program settings.

Values are validated as a whole by pydantic (:func:`app.settings.validate_settings`); an
invalid value is shown inline and nothing is saved. A valid result is written to the
user config file (:func:`app.settings.save_settings`), a typed API key or FHIR client
secret goes to the OS keyring (never to the file, a log or stdout), the UI language is
applied to the process and :attr:`SettingsDialog.settings_saved` carries the new
:class:`Settings`. The EPJ tab's "Test connection" runs
:func:`summarize.delivery.fhir.connection_test` in the background.

The tabs are built and checked by the dialog's base classes
:class:`app.gui.settings_pages.SettingsPages`, :class:`app.gui.settings_epj.EpjPage` and
:class:`app.gui.settings_voice.VoicePage` (which also makes and deletes the voice profile);
their strings are in :mod:`app.gui.settings_text`.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QLabel,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import i18n, workers
from app.gui.settings_text import ERROR_STYLE, FIELD_ERROR_STYLE
from app.gui.settings_text import tr as _t
from app.gui.settings_voice import VoicePage
from app.settings import (
    Settings,
    in_superuser_group,
    save_settings,
    store_api_key,
    validate_settings,
)
from asr.errors import ConfigError, ScribeError
from summarize.delivery.fhir_config import FhirConfig

logger = logging.getLogger(__name__)


def _query_devices() -> list[dict[str, Any]]:
    """The microphones sounddevice sees; none when audio input is unavailable."""
    try:
        from asr.sources import list_input_devices

        return list_input_devices()
    except Exception as exc:  # no PortAudio, no sounddevice, device error
        logger.debug("cannot list microphones (%s)", type(exc).__name__)
        return []


def _select(combo: QComboBox, value: object, missing_label: str | None = None) -> None:
    """Select the item whose data is ``value``, adding one when none has it."""
    index = combo.findData(value)
    if index < 0:
        combo.addItem(missing_label or str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


class SettingsDialog(VoicePage):
    """Edit :class:`Settings`; OK validates, saves and emits :attr:`settings_saved`.

    ``input_devices`` are microphones as :func:`asr.sources.list_input_devices` returns
    them (None: ask sounddevice). :meth:`values` and :meth:`apply` drive it without
    clicks. :meth:`test_connection` starts the EPJ connection test; its outcome shows in
    :attr:`test_result`. ``sd`` (the sounddevice module, None: the real one) and
    ``voice_encoder`` (the app's loaded one, None: loaded when a profile is made) serve the
    voice profile tab.
    """

    settings_saved = Signal(object)

    def __init__(
        self,
        settings: Settings,
        *,
        input_devices: list[dict[str, Any]] | None = None,
        parent: QWidget | None = None,
        sd: Any = None,
        voice_encoder: Any = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._sd = sd
        self._voice_encoder = voice_encoder
        self._devices = list(_query_devices() if input_devices is None else input_devices)
        self._marked: list[QWidget] = []  # fields outlined by the last failed save
        self.runner = workers.Runner(self)  # the EPJ connection test
        self._testing = False
        self.setWindowTitle(_t("title"))
        self.setObjectName("SettingsDialog")

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_asr_tab(), _t("tab_asr"))
        self.voice_page = self._build_voice_tab()
        self.tabs.addTab(self.voice_page, _t("tab_voice"))
        self.tabs.addTab(self._build_llm_tab(), _t("tab_llm"))
        self.tabs.addTab(self._build_note_tab(), _t("tab_note"))
        self.epj_page = self._build_epj_tab()
        self.tabs.addTab(self.epj_page, _t("tab_epj"))
        self.tabs.addTab(self._build_app_tab(), _t("tab_app"))

        self.error_label = QLabel()
        self.error_label.setObjectName("error")
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_ok)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self._load(settings)
        self.resize(self.sizeHint().expandedTo(QSize(640, 720)))  # the voice tab's passage without scrolling

    # ------------------------------------------------------------------------ values
    def _load(self, s: Settings) -> None:
        self.asr_model.setCurrentText(s.asr.model)
        _select(self.asr_device, s.asr.device)
        self.asr_compute.setCurrentText(s.asr.compute_type)
        lang = s.asr.language
        _select(self.asr_language, lang, _t(f"lang_{lang}") if lang in ("en", "auto") else lang)
        self.vad.setValue(s.asr.vad_aggressiveness)
        _select(self.microphone, s.asr.input_device, _t("mic_missing", name=s.asr.input_device))
        self._load_voice(s)

        _select(self.llm_engine, s.llm.engine)
        self.llm_model.setCurrentText(s.llm.model or "")
        _select(self.llm_device, s.llm.device)
        self.llm_compute.setCurrentText(s.llm.compute_type or "auto")
        self.base_url.setText(s.llm.base_url or "")
        self.api_model.setText(s.llm.api_model or "")
        self.api_key.clear()
        self._update_key_hint()

        _select(self.note_language, s.app.note_language)
        _select(self.template, s.app.default_template)
        _select(self.sink, s.app.sink)
        self.clipboard_clear.setValue(s.app.clipboard_clear_s)
        _select(self.ui_language, s.app.ui_language)
        self.superuser.setChecked(s.app.superuser)
        granted = in_superuser_group(s)
        self.superuser_hint.setText(
            _t("superuser_group", group=s.app.superuser_group) if granted else ""
        )
        self.superuser_hint.setVisible(granted)
        self.template_dir.setText(s.app.template_dir)
        self.consultations_dir.setText(s.app.consultations_dir)

        f = s.fhir
        self.fhir_base_url.setText(f.base_url)
        _select(self.fhir_auth, f.auth)
        self.fhir_token_url.setText(f.token_url)
        self.fhir_client_id.setText(f.client_id)
        self.fhir_secret.clear()
        self.fhir_scope.setText(f.scope)
        self.fhir_verify_tls.setChecked(f.verify_tls)
        self.fhir_ca_bundle.setText(f.ca_bundle)
        self.fhir_author.setText(f.author)
        self.fhir_type_code.setText(f.type_code)
        self.fhir_type_display.setText(f.type_display)
        self.fhir_test_patient.setText(f.test_patient)
        self.fhir_timeout.setValue(f.timeout_s)
        self.fhir_retries.setValue(f.retries)
        self.audit_enabled.setChecked(s.audit.enabled)
        self.audit_path.setText(s.audit.path)
        self._update_auth_fields()
        self._update_tls_warning()
        self._update_secret_hint()

    def values(self) -> dict[str, dict[str, Any]]:
        """The edited settings as nested section dicts (never the API key or the FHIR
        client secret)."""
        from asr.models import DEFAULT_ASR_MODEL

        llm_compute = self.llm_compute.currentText().strip()
        return {
            "asr": {
                "model": self.asr_model.currentText().strip() or DEFAULT_ASR_MODEL,
                "device": self.asr_device.currentData(),
                "compute_type": self.asr_compute.currentText().strip() or "auto",
                "language": self.asr_language.currentData(),
                "vad_aggressiveness": self.vad.value(),
                "input_device": self.microphone.currentData() or "",
            },
            "llm": {
                "engine": self.llm_engine.currentData(),
                "model": self.llm_model.currentText().strip() or None,
                "device": self.llm_device.currentData(),
                "compute_type": None if llm_compute in ("", "auto") else llm_compute,
                "base_url": self.base_url.text().strip() or None,
                "api_model": self.api_model.text().strip() or None,
            },
            "app": {
                "ui_language": self.ui_language.currentData(),
                "note_language": self.note_language.currentData(),
                "default_template": self.template.currentData(),
                "sink": self.sink.currentData(),
                "clipboard_clear_s": self.clipboard_clear.value(),
                "superuser": self.superuser.isChecked(),
                "template_dir": self.template_dir.text().strip(),
                "consultations_dir": self.consultations_dir.text().strip(),
            },
            "fhir": {
                "base_url": self.fhir_base_url.text().strip(),
                "auth": self.fhir_auth.currentData(),
                "token_url": self.fhir_token_url.text().strip(),
                "client_id": self.fhir_client_id.text().strip(),
                "scope": self.fhir_scope.text().strip(),
                "verify_tls": self.fhir_verify_tls.isChecked(),
                "ca_bundle": self.fhir_ca_bundle.text().strip(),
                "author": self.fhir_author.text().strip(),
                "type_code": self.fhir_type_code.text().strip(),
                "type_display": self.fhir_type_display.text().strip(),
                "test_patient": self.fhir_test_patient.text().strip(),
                "timeout_s": round(self.fhir_timeout.value(), 1),
                "retries": self.fhir_retries.value(),
            },
            "audit": {
                "enabled": self.audit_enabled.isChecked(),
                "path": self.audit_path.text().strip(),
            },
            "speakers": self._voice_values(),
        }

    def _merged(self) -> dict[str, Any]:
        merged = self._settings.model_dump()
        for section, edited in self.values().items():
            merged.setdefault(section, {}).update(edited)
        return merged

    def apply(self) -> Settings | None:
        """Validate, save and emit; the new settings, or None (error shown inline)."""
        self._unmark()
        try:
            new = validate_settings(self._merged())
        except ScribeError as exc:
            message = str(exc)
            if message.startswith(("invalid setting fhir.", "invalid setting audit.")):
                self.tabs.setCurrentWidget(self.epj_page)
            self._fail(_t("err_prefix", error=exc))
            return None
        problem = self._check_paths(new)
        if problem:
            self._fail(problem)
            return None
        epj = self._check_epj(new)
        if epj:
            self._fail(*epj)
            return None
        key = self.api_key.text().strip()
        if key and not new.llm.base_url:
            self._fail(_t("err_key_url"))
            return None
        secret = self.fhir_secret.text().strip()
        if secret and not new.fhir.client_id:
            self._fail(_t("err_secret_client"), self.fhir_client_id)
            return None
        try:
            if key:
                store_api_key(new.llm, key)
                self.api_key.clear()
            if secret:
                _store_fhir_secret(new.fhir, secret)
                self.fhir_secret.clear()
            save_settings(new)
        except ConfigError as exc:
            self._fail(_t("err_prefix", error=exc))
            return None
        self._settings = new
        self.error_label.clear()
        self.error_label.hide()
        self._update_key_hint()
        self._update_secret_hint()
        i18n.set_language(new.app.ui_language)
        self.settings_saved.emit(new)
        return new

    @property
    def settings(self) -> Settings:
        """The settings last saved (or those the dialog opened with)."""
        return self._settings

    # ------------------------------------------------------------------------ slots
    def _fail(self, message: str, field: QWidget | None = None) -> None:
        """Show ``message`` under the tabs; ``field`` (on the EPJ tab) is brought into
        view, outlined and focused."""
        self.error_label.setText(message)
        self.error_label.show()
        if field is not None:
            self.tabs.setCurrentWidget(self.epj_page)
            field.setStyleSheet(FIELD_ERROR_STYLE)
            field.setToolTip(message)
            self._marked.append(field)
            field.setFocus()

    def _unmark(self) -> None:
        for field in self._marked:
            field.setStyleSheet("")
            field.setToolTip("")
        self._marked.clear()

    def _on_ok(self) -> None:
        if self.apply() is not None:
            self.accept()

    def done(self, result: int) -> None:
        """Closing stops a voice recording and waits for it and for a running connection
        test (their threads must not outlive us)."""
        self.stop_enrolling()
        self.runner.wait_all()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        self.stop_enrolling()
        self.runner.wait_all()
        super().closeEvent(event)


def _store_fhir_secret(config: FhirConfig, secret: str) -> None:
    """The FHIR client secret into the OS keyring (service ``keyring_service``, user
    ``client_id``: where :class:`summarize.delivery.fhir_auth.TokenSource` looks)."""
    if not config.keyring_service:
        raise ConfigError("fhir.keyring_service is empty: name the OS keyring service to use")
    try:
        import keyring

        keyring.set_password(config.keyring_service, config.client_id, secret)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(
            f"cannot store the FHIR client secret in the OS keyring ({type(exc).__name__}"
            f"{': ' + detail if detail else ''})"
        ) from None
    logger.info("FHIR client secret for %s stored in the OS keyring", config.client_id)
