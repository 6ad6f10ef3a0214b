"""The settings dialog: speech recognition, language model, note, record (EPJ) and
program settings.

Values are validated as a whole by pydantic (:func:`app.settings.validate_settings`); an
invalid value is shown inline and nothing is saved. A valid result is written to the
user config file (:func:`app.settings.save_settings`), a typed API key or FHIR client
secret goes to the OS keyring (never to the file, a log or stdout), the UI language is
applied to the process and :attr:`SettingsDialog.settings_saved` carries the new
:class:`Settings`. The EPJ tab's "Test connection" runs
:func:`summarize.delivery.fhir.connection_test` in the background.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import i18n, workers
from app.gui.i18n import text
from app.settings import (
    Settings,
    available_sinks,
    delete_api_key,
    has_api_key,
    in_superuser_group,
    save_settings,
    store_api_key,
    validate_settings,
)
from asr.errors import ConfigError, ScribeError
from summarize.delivery.fhir_config import FhirConfig
from summarize.llm.config import LlmConfig

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
COMPUTE_TYPES = (
    "auto",
    "int8",
    "int8_float16",
    "int8_float32",
    "int8_bfloat16",
    "float16",
    "bfloat16",
    "float32",
)
ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"
FIELD_ERROR_STYLE = "border: 1px solid #b00020;"
FHIR_AUTH = ("none", "client_credentials")

_TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Innstillinger",
        "tab_asr": "Tale",
        "tab_llm": "Språkmodell",
        "tab_note": "Notat",
        "tab_epj": "Journal (EPJ)",
        "tab_app": "Program",
        "asr_model": "Talemodell",
        "browse": "Bla gjennom …",
        "device": "Maskinvare",
        "device_auto": "Automatisk",
        "device_cpu": "Prosessor (CPU)",
        "device_cuda": "Skjermkort (CUDA)",
        "compute_type": "Beregningstype",
        "asr_language": "Talespråk",
        "lang_no": "Bokmål",
        "lang_nn": "Nynorsk",
        "lang_en": "Engelsk",
        "lang_auto": "Automatisk",
        "vad": "Talegjenkjenning (VAD), 0–3",
        "microphone": "Mikrofon",
        "mic_default": "Systemstandard",
        "mic_missing": "{name} (ikke tilkoblet)",
        "engine": "Motor",
        "llm_model": "Modell (id eller mappe)",
        "llm_model_default": "standard: {model}",
        "base_url": "Tjeneradresse (openai)",
        "api_model": "Modellnavn på tjeneren",
        "api_key": "API-nøkkel",
        "api_key_placeholder": "tomt = uendret",
        "api_key_stored": "En nøkkel er lagret i nøkkelringen for denne adressen.",
        "api_key_none": "Ingen nøkkel er lagret for denne adressen.",
        "api_key_delete": "Fjern lagret nøkkel",
        "api_key_deleted": "Nøkkelen er fjernet fra nøkkelringen.",
        "note_language": "Notatspråk",
        "nb": "Bokmål",
        "nn": "Nynorsk",
        "template": "Standardmal",
        "sink": "Notatet sendes til",
        "sink_clipboard": "Utklippstavlen",
        "sink_fhir": "Journalen (FHIR)",
        "clipboard_clear": "Tøm utklippstavlen etter",
        "never": "Aldri",
        "ui_language": "Programspråk",
        "superuser": "Superbrukermodus (redigere maler)",
        "superuser_group": "Superbrukermodus er også gitt av gruppen {group}.",
        "template_dir": "Mappe for egne maler",
        "template_dir_placeholder": "standard: brukerens datamappe",
        "consultations_dir": "Mappe med konsultasjoner (forhåndsvisning)",
        "choose_dir": "Velg mappe",
        "err_asr_model": "Talemodellen finnes ikke: {path} er ingen mappe.",
        "err_llm_model": "Språkmodellen finnes ikke: {path} er ingen mappe.",
        "err_consultations": "Konsultasjonsmappen finnes ikke: {path}",
        "err_key_url": "Oppgi tjeneradressen før API-nøkkelen.",
        "err_prefix": "Kan ikke lagre: {error}",
        "fhir_base_url": "FHIR-adresse",
        "fhir_auth": "Pålogging",
        "auth_none": "Ingen (testtjener)",
        "auth_client_credentials": "OAuth2 klientlegitimasjon (client credentials)",
        "token_url": "Token-adresse",
        "client_id": "Klient-ID",
        "client_secret": "Klienthemmelighet",
        "secret_placeholder": "tomt = uendret",
        "secret_stored": "En klienthemmelighet er lagret i nøkkelringen for denne klient-ID-en.",
        "secret_none": "Ingen klienthemmelighet er lagret for denne klient-ID-en.",
        "scope": "Scope",
        "verify_tls": "Kontroller tjenerens TLS-sertifikat",
        "tls_off": "Advarsel: uten sertifikatkontroll kan forbindelsen til journalen avlyttes "
        "eller forfalskes. Bruk heller sykehusets CA-fil.",
        "ca_bundle": "CA-fil (PEM)",
        "ca_bundle_placeholder": "tomt = systemets sertifikater",
        "choose_ca": "Velg CA-fil",
        "ca_filter": "Sertifikater (*.pem *.crt *.cer);;Alle filer (*)",
        "author": "Forfatter",
        "type_code": "Dokumenttype (kode)",
        "type_display": "Dokumenttype (visningsnavn)",
        "test_patient": "Testpasient (syntetisk fødselsnummer)",
        "timeout": "Tidsavbrudd",
        "retries": "Nye forsøk",
        "test_connection": "Test tilkobling",
        "testing": "Tester tilkoblingen …",
        "test_ok": "OK: {reference} lagret og lest tilbake ({seconds:.2f} s)",
        "test_mismatch": "{reference} ble lagret, men lest tilbake avviker i: {fields}",
        "test_failed": "Feil: {error}",
        "audit": "Revisjonslogg",
        "audit_enabled": "Skriv revisjonslogg (én linje per konsultasjon, ingen pasientdata)",
        "audit_path": "Loggfil",
        "audit_path_placeholder": "standard: brukerens datamappe",
        "choose_audit": "Velg loggfil",
        "err_fhir_url": "Notatet sendes til journalen: oppgi FHIR-adressen.",
        "err_fhir_author": "Notatet sendes til journalen: oppgi forfatteren "
        "(Practitioner/ID eller PractitionerRole/ID).",
        "err_fhir_login": "OAuth2-pålogging: oppgi token-adressen og klient-ID-en.",
        "err_author": "Forfatter: {error}",
        "err_test_patient": "Testpasient: {error}",
        "err_ca_bundle": "CA-filen finnes ikke: {path}",
        "err_audit_path": "Revisjonsloggen må være en fil, ikke en mappe: {path}",
        "err_secret_client": "Oppgi klient-ID-en før klienthemmeligheten.",
    },
    "en": {
        "title": "Settings",
        "tab_asr": "Speech",
        "tab_llm": "Language model",
        "tab_note": "Note",
        "tab_epj": "Record (EPJ)",
        "tab_app": "Program",
        "asr_model": "Speech model",
        "browse": "Browse …",
        "device": "Hardware",
        "device_auto": "Automatic",
        "device_cpu": "Processor (CPU)",
        "device_cuda": "Graphics card (CUDA)",
        "compute_type": "Compute type",
        "asr_language": "Spoken language",
        "lang_no": "Bokmål",
        "lang_nn": "Nynorsk",
        "lang_en": "English",
        "lang_auto": "Automatic",
        "vad": "Voice detection (VAD), 0–3",
        "microphone": "Microphone",
        "mic_default": "System default",
        "mic_missing": "{name} (not connected)",
        "engine": "Engine",
        "llm_model": "Model (id or folder)",
        "llm_model_default": "default: {model}",
        "base_url": "Server URL (openai)",
        "api_model": "Model name on the server",
        "api_key": "API key",
        "api_key_placeholder": "empty = unchanged",
        "api_key_stored": "A key is stored in the keyring for this URL.",
        "api_key_none": "No key is stored for this URL.",
        "api_key_delete": "Remove stored key",
        "api_key_deleted": "The key was removed from the keyring.",
        "note_language": "Note language",
        "nb": "Bokmål",
        "nn": "Nynorsk",
        "template": "Default template",
        "sink": "Send the note to",
        "sink_clipboard": "Clipboard",
        "sink_fhir": "The patient record (FHIR)",
        "clipboard_clear": "Clear the clipboard after",
        "never": "Never",
        "ui_language": "Program language",
        "superuser": "Superuser mode (edit templates)",
        "superuser_group": "Superuser mode is also granted by the group {group}.",
        "template_dir": "Folder for own templates",
        "template_dir_placeholder": "default: the user data folder",
        "consultations_dir": "Folder of consultations (preview)",
        "choose_dir": "Choose folder",
        "err_asr_model": "Speech model not found: {path} is not a folder.",
        "err_llm_model": "Language model not found: {path} is not a folder.",
        "err_consultations": "Consultations folder not found: {path}",
        "err_key_url": "Enter the server URL before the API key.",
        "err_prefix": "Cannot save: {error}",
        "fhir_base_url": "FHIR base URL",
        "fhir_auth": "Authentication",
        "auth_none": "None (test server)",
        "auth_client_credentials": "OAuth2 client credentials",
        "token_url": "Token URL",
        "client_id": "Client ID",
        "client_secret": "Client secret",
        "secret_placeholder": "empty = unchanged",
        "secret_stored": "A client secret is stored in the keyring for this client ID.",
        "secret_none": "No client secret is stored for this client ID.",
        "scope": "Scope",
        "verify_tls": "Verify the server's TLS certificate",
        "tls_off": "Warning: without certificate checks the connection to the record can be "
        "intercepted or forged. Use the hospital's CA file instead.",
        "ca_bundle": "CA file (PEM)",
        "ca_bundle_placeholder": "empty = the system's certificates",
        "choose_ca": "Choose CA file",
        "ca_filter": "Certificates (*.pem *.crt *.cer);;All files (*)",
        "author": "Author",
        "type_code": "Document type (code)",
        "type_display": "Document type (display)",
        "test_patient": "Test patient (synthetic fødselsnummer)",
        "timeout": "Timeout",
        "retries": "Retries",
        "test_connection": "Test connection",
        "testing": "Testing the connection …",
        "test_ok": "OK: {reference} stored and read back ({seconds:.2f} s)",
        "test_mismatch": "{reference} was stored, but the read-back differs in: {fields}",
        "test_failed": "Error: {error}",
        "audit": "Audit log",
        "audit_enabled": "Write an audit log (one line per consultation, no patient data)",
        "audit_path": "Log file",
        "audit_path_placeholder": "default: the user data folder",
        "choose_audit": "Choose log file",
        "err_fhir_url": "The note goes to the record: enter the FHIR base URL.",
        "err_fhir_author": "The note goes to the record: enter the author "
        "(Practitioner/ID or PractitionerRole/ID).",
        "err_fhir_login": "OAuth2 login: enter the token URL and the client ID.",
        "err_author": "Author: {error}",
        "err_test_patient": "Test patient: {error}",
        "err_ca_bundle": "CA file not found: {path}",
        "err_audit_path": "The audit log must be a file, not a folder: {path}",
        "err_secret_client": "Enter the client ID before the client secret.",
    },
}


def _t(key: str, **fmt: object) -> str:
    return text(_TEXT, key, **fmt)


def _query_devices() -> list[dict[str, Any]]:
    """The microphones sounddevice sees; none when audio input is unavailable."""
    try:
        from asr.sources import list_input_devices

        return list_input_devices()
    except Exception as exc:  # no PortAudio, no sounddevice, device error
        logger.debug("cannot list microphones (%s)", type(exc).__name__)
        return []


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", "/")) or "/" in name or "\\" in name


def _select(combo: QComboBox, value: object, missing_label: str | None = None) -> None:
    """Select the item whose data is ``value``, adding one when none has it."""
    index = combo.findData(value)
    if index < 0:
        combo.addItem(missing_label or str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


def _combo(items: list[tuple[str, object]]) -> QComboBox:
    combo = QComboBox()
    for label, data in items:
        combo.addItem(label, data)
    return combo


class SettingsDialog(QDialog):
    """Edit :class:`Settings`; OK validates, saves and emits :attr:`settings_saved`.

    ``input_devices`` are microphones as :func:`asr.sources.list_input_devices` returns
    them (None: ask sounddevice). :meth:`values` and :meth:`apply` drive it without
    clicks. :meth:`test_connection` starts the EPJ connection test; its outcome shows in
    :attr:`test_result`.
    """

    settings_saved = Signal(object)

    def __init__(
        self,
        settings: Settings,
        *,
        input_devices: list[dict[str, Any]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._devices = list(_query_devices() if input_devices is None else input_devices)
        self._marked: list[QWidget] = []  # fields outlined by the last failed save
        self.runner = workers.Runner(self)  # the EPJ connection test
        self._testing = False
        self.setWindowTitle(_t("title"))
        self.setObjectName("SettingsDialog")

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_asr_tab(), _t("tab_asr"))
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

    # ------------------------------------------------------------------------ building
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
        self.asr_device = _combo([(_t(f"device_{d}"), d) for d in DEVICES])
        form.addRow(_t("device"), self.asr_device)
        self.asr_compute = QComboBox()
        self.asr_compute.setEditable(True)
        self.asr_compute.addItems(list(COMPUTE_TYPES))
        form.addRow(_t("compute_type"), self.asr_compute)
        self.asr_language = _combo([(_t("lang_no"), "no"), (_t("lang_nn"), "nn")])
        form.addRow(_t("asr_language"), self.asr_language)
        self.vad = QSpinBox()
        self.vad.setRange(0, 3)
        form.addRow(_t("vad"), self.vad)
        self.microphone = _combo([(_t("mic_default"), "")])
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
        self.llm_engine = _combo([(name, name) for name in available_engines()])
        form.addRow(_t("engine"), self.llm_engine)
        self.llm_model = QComboBox()
        self.llm_model.setEditable(True)
        self.llm_model.addItems(list(EMBEDDED_LLMS))
        line = self.llm_model.lineEdit()
        if line is not None:
            line.setPlaceholderText(_t("llm_model_default", model=DEFAULT_LLM_MODEL))
        row, self.llm_model_browse = self._row_with_browse(self.llm_model, self.llm_model)
        form.addRow(_t("llm_model"), row)
        self.llm_device = _combo([(_t(f"device_{d}"), d) for d in DEVICES])
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
        self.note_language = _combo([(_t("nb"), "nb"), (_t("nn"), "nn")])
        form.addRow(_t("note_language"), self.note_language)
        self.template = QComboBox()
        for tid, title in self._templates():
            self.template.addItem(f"{title} ({tid})" if title else tid, tid)
        form.addRow(_t("template"), self.template)
        self.sink = QComboBox()
        for name in available_sinks():
            label = _t(f"sink_{name}") if f"sink_{name}" in _TEXT["nb"] else name
            self.sink.addItem(label, name)
        form.addRow(_t("sink"), self.sink)
        self.clipboard_clear = QSpinBox()
        self.clipboard_clear.setRange(0, 86400)
        self.clipboard_clear.setSuffix(" s")
        self.clipboard_clear.setSpecialValueText(_t("never"))
        form.addRow(_t("clipboard_clear"), self.clipboard_clear)
        return page

    def _build_epj_tab(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        form = QFormLayout()
        outer.addLayout(form)
        self.fhir_base_url = QLineEdit()
        self.fhir_base_url.setPlaceholderText("https://fhir.sykehus.local/fhir")
        form.addRow(_t("fhir_base_url"), self.fhir_base_url)
        self.fhir_auth = _combo([(_t(f"auth_{a}"), a) for a in FHIR_AUTH])
        self.fhir_auth.currentIndexChanged.connect(self._update_auth_fields)
        form.addRow(_t("fhir_auth"), self.fhir_auth)
        self.fhir_token_url = QLineEdit()
        self.fhir_token_url.setPlaceholderText("https://helseid-sts.sykehus.local/connect/token")
        form.addRow(_t("token_url"), self.fhir_token_url)
        self.fhir_client_id = QLineEdit()
        self.fhir_client_id.editingFinished.connect(self._update_secret_hint)
        form.addRow(_t("client_id"), self.fhir_client_id)
        self.fhir_secret = QLineEdit()
        self.fhir_secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.fhir_secret.setPlaceholderText(_t("secret_placeholder"))
        form.addRow(_t("client_secret"), self.fhir_secret)
        self.fhir_secret_hint = QLabel()
        self.fhir_secret_hint.setWordWrap(True)
        form.addRow("", self.fhir_secret_hint)
        self.fhir_scope = QLineEdit()
        form.addRow(_t("scope"), self.fhir_scope)
        self.fhir_verify_tls = QCheckBox(_t("verify_tls"))
        self.fhir_verify_tls.toggled.connect(self._update_tls_warning)
        form.addRow("", self.fhir_verify_tls)
        self.fhir_tls_warning = QLabel(_t("tls_off"))
        self.fhir_tls_warning.setStyleSheet(ERROR_STYLE)
        self.fhir_tls_warning.setWordWrap(True)
        self.fhir_tls_warning.hide()
        form.addRow("", self.fhir_tls_warning)
        self.fhir_ca_bundle = QLineEdit()
        self.fhir_ca_bundle.setPlaceholderText(_t("ca_bundle_placeholder"))
        row, self.fhir_ca_browse = self._row_with_button(self.fhir_ca_bundle, self._browse_ca)
        form.addRow(_t("ca_bundle"), row)
        self.fhir_author = QLineEdit()
        self.fhir_author.setPlaceholderText("Practitioner/ID")
        form.addRow(_t("author"), self.fhir_author)
        self.fhir_type_code = QLineEdit()
        form.addRow(_t("type_code"), self.fhir_type_code)
        self.fhir_type_display = QLineEdit()
        form.addRow(_t("type_display"), self.fhir_type_display)
        self.fhir_test_patient = QLineEdit()
        self.fhir_test_patient.setPlaceholderText("13897248098")
        form.addRow(_t("test_patient"), self.fhir_test_patient)
        self.fhir_timeout = QDoubleSpinBox()
        self.fhir_timeout.setRange(0.5, 300.0)
        self.fhir_timeout.setDecimals(1)
        self.fhir_timeout.setSuffix(" s")
        form.addRow(_t("timeout"), self.fhir_timeout)
        self.fhir_retries = QSpinBox()
        self.fhir_retries.setRange(0, 10)
        form.addRow(_t("retries"), self.fhir_retries)

        self.test_button = QPushButton(_t("test_connection"))
        self.test_button.clicked.connect(self.test_connection)
        self.test_busy = QProgressBar()
        self.test_busy.setRange(0, 0)  # indeterminate while the test runs
        self.test_busy.setFixedWidth(120)
        self.test_busy.hide()
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_busy)
        test_row.addStretch(1)
        outer.addLayout(test_row)
        self.test_result = QLabel()
        self.test_result.setObjectName("test_result")
        self.test_result.setWordWrap(True)
        self.test_result.hide()
        outer.addWidget(self.test_result)

        group = QGroupBox(_t("audit"))
        audit_form = QFormLayout(group)
        self.audit_enabled = QCheckBox(_t("audit_enabled"))
        audit_form.addRow("", self.audit_enabled)
        self.audit_path = QLineEdit()
        self.audit_path.setPlaceholderText(_t("audit_path_placeholder"))
        row, self.audit_browse = self._row_with_button(self.audit_path, self._browse_audit)
        audit_form.addRow(_t("audit_path"), row)
        outer.addWidget(group)
        outer.addStretch(1)
        return page

    def _build_app_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.ui_language = _combo([(name, code) for code, name in i18n.LANGUAGES.items()])
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

    # ------------------------------------------------------------------------ values
    def _load(self, s: Settings) -> None:
        self.asr_model.setCurrentText(s.asr.model)
        _select(self.asr_device, s.asr.device)
        self.asr_compute.setCurrentText(s.asr.compute_type)
        lang = s.asr.language
        _select(self.asr_language, lang, _t(f"lang_{lang}") if lang in ("en", "auto") else lang)
        self.vad.setValue(s.asr.vad_aggressiveness)
        _select(self.microphone, s.asr.input_device, _t("mic_missing", name=s.asr.input_device))

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
        }

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

    def _check_epj(self, s: Settings) -> tuple[str, QWidget] | None:
        """What the EPJ tab needs beyond the model's own checks: the message and the field."""
        from summarize.delivery.fhir_config import SinkConfigError
        from summarize.delivery.fhir_resource import check_author
        from summarize.delivery.identifiers import PersonNumberError, parse_person_number

        f = s.fhir
        if s.app.sink == "fhir":
            if not f.base_url:
                return _t("err_fhir_url"), self.fhir_base_url
            if not f.author:
                return _t("err_fhir_author"), self.fhir_author
            if f.auth == "client_credentials" and not (f.token_url and f.client_id):
                return _t("err_fhir_login"), (
                    self.fhir_client_id if f.token_url else self.fhir_token_url
                )
        if f.author:
            try:
                check_author(f.author)
            except SinkConfigError as exc:
                return _t("err_author", error=exc), self.fhir_author
        if f.test_patient:
            try:
                parse_person_number(f.test_patient)
            except PersonNumberError as exc:
                return _t("err_test_patient", error=exc), self.fhir_test_patient
        if f.ca_bundle and not Path(f.ca_bundle).expanduser().is_file():
            return _t("err_ca_bundle", path=f.ca_bundle), self.fhir_ca_bundle
        if s.audit.path and Path(s.audit.path).expanduser().is_dir():
            return _t("err_audit_path", path=s.audit.path), self.audit_path
        return None

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

    def _browse_ca(self) -> None:
        start = self.fhir_ca_bundle.text().strip()
        chosen, _ = QFileDialog.getOpenFileName(
            self, _t("choose_ca"), str(Path(start).expanduser()) if start else "", _t("ca_filter")
        )
        if chosen:
            self.fhir_ca_bundle.setText(chosen)

    def _browse_audit(self) -> None:
        start = self.audit_path.text().strip()
        chosen, _ = QFileDialog.getSaveFileName(
            self,
            _t("choose_audit"),
            str(Path(start).expanduser()) if start else "",
            "",
            "",
            QFileDialog.Option.DontConfirmOverwrite,  # an existing log is appended to
        )
        if chosen:
            self.audit_path.setText(chosen)

    def _update_auth_fields(self) -> None:
        oauth = self.fhir_auth.currentData() == "client_credentials"
        for field in (self.fhir_token_url, self.fhir_client_id, self.fhir_secret, self.fhir_scope):
            field.setEnabled(oauth)
        self.fhir_secret_hint.setEnabled(oauth)

    def _update_tls_warning(self) -> None:
        self.fhir_tls_warning.setVisible(not self.fhir_verify_tls.isChecked())

    def _update_secret_hint(self) -> None:
        client_id = self.fhir_client_id.text().strip()
        service = self._settings.fhir.keyring_service
        stored = False
        if client_id and service:
            try:
                import keyring

                stored = bool(keyring.get_password(service, client_id))
            except Exception as exc:
                logger.debug("cannot read the OS keyring (%s)", type(exc).__name__)
        self.fhir_secret_hint.setText(_t("secret_stored") if stored else _t("secret_none"))

    # ------------------------------------------------------------------------ EPJ test
    def form_fhir_config(self) -> FhirConfig:
        """The FHIR settings as now typed (raises ConfigError naming a bad value)."""
        from pydantic import ValidationError

        try:
            return FhirConfig.model_validate(self._merged()["fhir"])
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            raise ConfigError(f"invalid setting fhir.{where}: {msg}") from None

    def test_connection(self) -> None:
        """Send a synthetic test document with the settings as typed and read it back, in
        the background; the outcome shows in :attr:`test_result`."""
        from summarize.delivery.fhir import connection_test

        if self._testing:
            return
        try:
            config = self.form_fhir_config()
        except ScribeError as exc:
            self._show_test(_t("test_failed", error=exc), ok=False)
            return
        typed = self.fhir_secret.text().strip()
        secret = (lambda: typed) if typed and config.auth == "client_credentials" else None
        self._testing = True
        self.test_button.setEnabled(False)
        self.test_busy.show()
        self._show_test(_t("testing"), ok=None)
        task = workers.TaskWorker(functools.partial(connection_test, config, secret=secret))
        task.result.connect(self._on_test_result)
        task.failed.connect(self._on_test_failed)
        self.runner.start(task)

    @Slot(object)
    def _on_test_result(self, outcome: object) -> None:
        self._test_done()
        out = outcome if isinstance(outcome, dict) else {}
        ref = str(out.get("reference", "?"))
        if out.get("ok"):
            seconds = float(out.get("sent_s", 0))
            self._show_test(_t("test_ok", reference=ref, seconds=seconds), ok=True)
        else:
            checked = out.get("checked") or {}
            bad = ", ".join(k for k, same in checked.items() if not same) or "?"
            self._show_test(_t("test_mismatch", reference=ref, fields=bad), ok=False)

    @Slot(str)
    def _on_test_failed(self, why: str) -> None:
        self._test_done()
        self._show_test(_t("test_failed", error=why), ok=False)

    def _test_done(self) -> None:
        self._testing = False
        self.test_busy.hide()
        self.test_button.setEnabled(True)

    def _show_test(self, message: str, *, ok: bool | None) -> None:
        self.test_result.setText(message)
        self.test_result.setStyleSheet("" if ok is None else OK_STYLE if ok else ERROR_STYLE)
        self.test_result.show()

    def done(self, result: int) -> None:
        """Closing waits for a running connection test (its thread must not outlive us)."""
        self.runner.wait_all()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        self.runner.wait_all()
        super().closeEvent(event)

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
