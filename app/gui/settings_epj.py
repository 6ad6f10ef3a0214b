"""The settings dialog's record (EPJ) tab: the FHIR and audit log fields, their checks and
the background "Test connection".

:class:`EpjPage` is the layer of :class:`app.gui.settings_dialog.SettingsDialog` between
:class:`app.gui.settings_pages.SettingsPages` (whose row helpers it uses) and the dialog;
the connection test runs on the dialog's :attr:`runner`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
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
    QVBoxLayout,
    QWidget,
)

from app.gui import workers
from app.gui.settings_pages import SettingsPages, combo_box
from app.gui.settings_text import ERROR_STYLE, FHIR_AUTH, OK_STYLE
from app.gui.settings_text import tr as _t
from app.settings import Settings
from asr.errors import ConfigError, ScribeError
from summarize.delivery.fhir_config import FhirConfig

logger = logging.getLogger(__name__)


class EpjPage(SettingsPages):
    """Builds the record (EPJ) tab, keeps its fields consistent, checks it and tests the
    connection it describes."""

    def _build_epj_tab(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        form = QFormLayout()
        outer.addLayout(form)
        self.fhir_base_url = QLineEdit()
        self.fhir_base_url.setPlaceholderText("https://fhir.sykehus.local/fhir")
        form.addRow(_t("fhir_base_url"), self.fhir_base_url)
        self.fhir_auth = combo_box([(_t(f"auth_{a}"), a) for a in FHIR_AUTH])
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
