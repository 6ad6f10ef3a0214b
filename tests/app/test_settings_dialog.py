"""The settings dialog, driven offscreen: shows the settings, saves valid changes to the
config file, keeps invalid ones out, puts the API key in the (in-memory) keyring only
and switches the UI language."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFileDialog, QLineEdit
from pytestqt.qtbot import QtBot

from app.gui import i18n
from app.gui.settings_dialog import SettingsDialog
from app.gui.settings_text import ERROR_STYLE
from app.settings import Settings, available_sinks, load_settings, save_settings
from summarize.llm.registry import available_engines
from summarize.templates.template import list_templates
from tests.fhir_server import FhirServer, free_port
from tests.keyrings import MemoryKeyring

SECRET = "sk-dialog-91c4e2-never-in-files"
URL = "https://llm.sykehus.local/v1"
DEVICES = [
    {"index": 0, "name": "Innebygd mikrofon", "channels": 2, "default_samplerate": 48000.0},
    {"index": 3, "name": "Jabra Speak 510", "channels": 1, "default_samplerate": 16000.0},
]


@pytest.fixture()
def cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> Iterator[Path]:
    """A fresh config file location, no SCRIBE_* variables, bokmål UI, in-memory keyring."""
    for name in list(os.environ):
        if name.startswith("SCRIBE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config" / "config.toml"
    monkeypatch.setenv("SCRIBE_CONFIG", str(path))
    i18n.set_language("nb")
    yield path
    i18n.set_language("nb")


def make(
    qtbot: QtBot, settings: Settings | None = None, devices: list[dict] | None = DEVICES
) -> SettingsDialog:
    dlg = SettingsDialog(settings or load_settings(), input_devices=devices)
    qtbot.addWidget(dlg)
    return dlg


def pick(combo: QComboBox, data: object) -> None:
    index = combo.findData(data)
    assert index >= 0, (data, [combo.itemData(i) for i in range(combo.count())])
    combo.setCurrentIndex(index)


def read(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_shows_current_values(qtbot: QtBot, cfg: Path) -> None:
    save_settings(
        load_settings(
            asr={
                "device": "cpu",
                "vad_aggressiveness": 1,
                "language": "nn",
                "input_device": "Jabra Speak 510",
                "compute_type": "int8",
            },
            llm={"engine": "openai", "base_url": URL, "api_model": "llama-3-70b"},
            app={
                "note_language": "nn",
                "default_template": "allmennmedisin-nn",
                "clipboard_clear_s": 30,
                "superuser": True,
            },
        )
    )
    dlg = make(qtbot)
    assert dlg.windowTitle() == "Innstillinger"
    assert [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())] == [
        "Tale",
        "Stemmeprofil",
        "Språkmodell",
        "Notat",
        "Journal (EPJ)",
        "Program",
    ]
    assert dlg.asr_device.currentData() == "cpu"
    assert dlg.asr_compute.currentText() == "int8"
    assert dlg.vad.value() == 1 and (dlg.vad.minimum(), dlg.vad.maximum()) == (0, 3)
    assert dlg.asr_language.currentData() == "nn" and dlg.asr_language.currentText() == "Nynorsk"
    assert [dlg.microphone.itemText(i) for i in range(dlg.microphone.count())] == [
        "Systemstandard",
        "Innebygd mikrofon",
        "Jabra Speak 510",
    ]
    assert dlg.microphone.currentText() == "Jabra Speak 510"
    engines = [dlg.llm_engine.itemData(i) for i in range(dlg.llm_engine.count())]
    assert engines == available_engines()
    assert dlg.llm_engine.currentData() == "openai"
    assert dlg.base_url.text() == URL and dlg.api_model.text() == "llama-3-70b"
    assert dlg.api_key.text() == "" and dlg.api_key.echoMode() == dlg.api_key.EchoMode.Password
    assert dlg.note_language.currentData() == "nn"
    ids = [dlg.template.itemData(i) for i in range(dlg.template.count())]
    assert ids == [t.id for t in list_templates()]
    assert dlg.template.currentData() == "allmennmedisin-nn"
    assert [dlg.sink.itemData(i) for i in range(dlg.sink.count())] == available_sinks()
    assert dlg.clipboard_clear.value() == 30
    assert dlg.ui_language.currentData() == "nb" and dlg.superuser.isChecked()
    assert dlg.error_label.isHidden()
    v = dlg.values()
    assert v["asr"]["input_device"] == "Jabra Speak 510" and v["llm"]["base_url"] == URL
    assert v["app"]["default_template"] == "allmennmedisin-nn"


def test_unplugged_microphone_is_kept(qtbot: QtBot, cfg: Path) -> None:
    dlg = make(qtbot, load_settings(asr={"input_device": "Gammel headset"}))
    assert dlg.microphone.currentText() == "Gammel headset (ikke tilkoblet)"
    assert dlg.values()["asr"]["input_device"] == "Gammel headset"
    empty = make(qtbot, load_settings(), devices=[])
    assert empty.microphone.count() == 1 and empty.values()["asr"]["input_device"] == ""


def test_apply_saves_changes_and_emits(qtbot: QtBot, cfg: Path) -> None:
    dlg = make(qtbot)
    pick(dlg.asr_device, "cuda")
    dlg.vad.setValue(3)
    pick(dlg.asr_language, "nn")
    pick(dlg.microphone, "Jabra Speak 510")
    pick(dlg.llm_device, "cpu")
    pick(dlg.note_language, "nn")
    pick(dlg.template, "pediatri")
    dlg.clipboard_clear.setValue(60)
    with qtbot.waitSignal(dlg.settings_saved, timeout=2000) as blocker:
        result = dlg.apply()
    emitted = blocker.args[0]
    assert isinstance(emitted, Settings) and emitted == result == dlg.settings
    assert (emitted.asr.device, emitted.asr.vad_aggressiveness, emitted.asr.language) == (
        "cuda",
        3,
        "nn",
    )
    assert emitted.asr.input_device == "Jabra Speak 510"
    data = read(cfg)
    assert data["asr"] == {
        "device": "cuda",
        "language": "nn",
        "vad_aggressiveness": 3,
        "input_device": "Jabra Speak 510",
    }
    assert data["llm"] == {"device": "cpu"}
    assert data["app"] == {
        "note_language": "nn",
        "default_template": "pediatri",
        "clipboard_clear_s": 60,
    }
    assert load_settings() == emitted
    assert dlg.error_label.isHidden()


def test_ok_button_saves_and_closes_cancel_does_not(qtbot: QtBot, cfg: Path) -> None:
    dlg = make(qtbot)
    pick(dlg.asr_device, "cpu")
    with qtbot.assertNotEmitted(dlg.settings_saved):
        qtbot.mouseClick(
            dlg.buttons.button(QDialogButtonBox.StandardButton.Cancel), Qt.MouseButton.LeftButton
        )
    assert dlg.result() == QDialog.DialogCode.Rejected and not cfg.exists()

    dlg = make(qtbot)
    dlg.show()
    pick(dlg.asr_device, "cpu")
    with qtbot.waitSignal(dlg.settings_saved, timeout=2000):
        qtbot.mouseClick(
            dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
        )
    assert dlg.result() == QDialog.DialogCode.Accepted and not dlg.isVisible()
    assert read(cfg)["asr"]["device"] == "cpu"


def test_invalid_base_url_is_shown_inline_and_nothing_saved(qtbot: QtBot, cfg: Path) -> None:
    save_settings(load_settings(asr={"device": "cpu"}))
    before = cfg.read_bytes()
    dlg = make(qtbot)
    dlg.show()
    pick(dlg.llm_engine, "openai")
    dlg.base_url.setText("https://lege:hemmelig@llm.sykehus.local/v1")
    with qtbot.assertNotEmitted(dlg.settings_saved):
        assert dlg.apply() is None
        qtbot.mouseClick(
            dlg.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
        )
    assert dlg.isVisible() and dlg.result() != QDialog.DialogCode.Accepted  # stays open
    assert not dlg.error_label.isHidden()
    assert "llm.base_url" in dlg.error_label.text() and "credentials" in dlg.error_label.text()
    assert "hemmelig" not in dlg.error_label.text()
    assert dlg.error_label.styleSheet() == ERROR_STYLE
    assert cfg.read_bytes() == before
    # fixing the URL clears the error and saves
    dlg.base_url.setText(URL + "/")
    assert dlg.apply() is not None and dlg.error_label.isHidden()
    assert read(cfg)["llm"] == {"engine": "openai", "base_url": URL}


def test_missing_model_folders_are_refused(qtbot: QtBot, cfg: Path, tmp_path: Path) -> None:
    dlg = make(qtbot)
    missing = tmp_path / "nb-whisper-large"
    dlg.asr_model.setCurrentText(str(missing))
    assert dlg.apply() is None
    assert str(missing) in dlg.error_label.text() and not cfg.exists()
    missing.mkdir()
    llm_missing = tmp_path / "llm" / "my-model-ct2"
    dlg.llm_model.setCurrentText(str(llm_missing))
    assert dlg.apply() is None
    assert str(llm_missing) in dlg.error_label.text() and not cfg.exists()
    dlg.llm_model.setCurrentText("qwen2.5-coder-0.5b-instruct-q4km")  # embedded id: fine
    dlg.consultations_dir.setText(str(tmp_path / "no-consultations"))
    assert dlg.apply() is None and "no-consultations" in dlg.error_label.text()
    dlg.consultations_dir.setText(str(tmp_path))
    assert dlg.apply() is not None
    data = read(cfg)
    assert data["asr"]["model"] == str(missing)
    assert data["llm"]["model"] == "qwen2.5-coder-0.5b-instruct-q4km"
    assert data["app"]["consultations_dir"] == str(tmp_path)


def test_browse_fills_the_model_path(
    qtbot: QtBot, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "whisper-dir"
    chosen.mkdir()
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(chosen))
    )
    dlg = make(qtbot)
    qtbot.mouseClick(dlg.asr_model_browse, Qt.MouseButton.LeftButton)
    assert dlg.asr_model.currentText() == str(chosen)
    qtbot.mouseClick(dlg.template_dir_browse, Qt.MouseButton.LeftButton)
    assert dlg.template_dir.text() == str(chosen)
    assert dlg.values()["asr"]["model"] == str(chosen)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    qtbot.mouseClick(dlg.llm_model_browse, Qt.MouseButton.LeftButton)  # cancelled: unchanged
    assert dlg.llm_model.currentText() == ""


def test_api_key_goes_to_keyring_only(
    qtbot: QtBot,
    cfg: Path,
    memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    dlg = make(qtbot)
    assert not dlg.api_key_delete.isEnabled()
    dlg.api_key.setText(SECRET)  # no server URL yet
    assert dlg.apply() is None and memory_keyring.passwords == {} and not cfg.exists()
    assert "tjeneradressen" in dlg.error_label.text()

    pick(dlg.llm_engine, "openai")
    dlg.base_url.setText(URL)
    with qtbot.waitSignal(dlg.settings_saved, timeout=2000):
        assert dlg.apply() is not None
    assert memory_keyring.passwords == {("ambient-scribe", URL): SECRET}
    assert dlg.api_key.text() == ""  # not kept in the widget
    assert dlg.api_key_hint.text() == "En nøkkel er lagret i nøkkelringen for denne adressen."
    assert dlg.api_key_delete.isEnabled()
    text = cfg.read_text(encoding="utf-8")
    assert SECRET not in text and "api_key" not in read(cfg)["llm"]
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err + caplog.text

    # reopened: the hint shows, an empty field leaves the stored key alone
    again = make(qtbot)
    assert again.api_key.text() == "" and again.api_key_delete.isEnabled()
    assert "lagret" in again.api_key_hint.text()
    again.base_url.setText("https://annen.sykehus.local/v1")  # another server: no key there
    qtbot.keyClick(again.base_url, Qt.Key.Key_Return)  # editing finished
    assert not again.api_key_delete.isEnabled() and "Ingen" in again.api_key_hint.text()
    again.base_url.setText(URL + "/")  # normalised like the saved URL
    qtbot.keyClick(again.base_url, Qt.Key.Key_Return)
    assert again.api_key_delete.isEnabled()
    assert again.apply() is not None
    assert memory_keyring.passwords == {("ambient-scribe", URL): SECRET}
    qtbot.mouseClick(again.api_key_delete, Qt.MouseButton.LeftButton)
    assert memory_keyring.passwords == {}
    assert not again.api_key_delete.isEnabled() and "fjernet" in again.api_key_hint.text()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX groups")
def test_superuser_group_hint(qtbot: QtBot, cfg: Path) -> None:
    import grp

    mine = grp.getgrgid(os.getgid()).gr_name
    granted = make(qtbot, load_settings(app={"superuser_group": mine}))
    assert not granted.superuser_hint.isHidden() and mine in granted.superuser_hint.text()
    assert not granted.superuser.isChecked()  # the group does not write the flag
    plain = make(qtbot, load_settings(app={"superuser_group": "no-such-group-4f1c2e"}))
    assert plain.superuser_hint.isHidden()
    plain.superuser.setChecked(True)
    assert plain.apply() is not None and read(cfg)["app"]["superuser"] is True


def test_ui_language_switch_to_english(qtbot: QtBot, cfg: Path) -> None:
    dlg = make(qtbot)
    assert dlg.tabs.tabText(0) == "Tale" and dlg.microphone.itemText(0) == "Systemstandard"
    assert [dlg.ui_language.itemData(i) for i in range(dlg.ui_language.count())] == list(
        i18n.LANGUAGES
    )
    pick(dlg.ui_language, "en")
    assert dlg.apply() is not None
    assert read(cfg)["app"]["ui_language"] == "en" and i18n.language() == "en"
    reopened = make(qtbot)
    assert reopened.windowTitle() == "Settings"
    assert [reopened.tabs.tabText(i) for i in range(reopened.tabs.count())] == [
        "Speech",
        "Voice profile",
        "Language model",
        "Note",
        "Record (EPJ)",
        "Program",
    ]
    assert reopened.microphone.itemText(0) == "System default"
    assert reopened.ui_language.currentData() == "en"
    reopened.base_url.setText("https://u:p@x.local/v1")
    assert reopened.apply() is None and reopened.error_label.text().startswith("Cannot save")


class BrokenKeyring(MemoryKeyring):
    """A keyring that cannot store anything (locked, no D-Bus)."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("collection is locked")


def test_keyring_failure_is_inline_and_saves_nothing(qtbot: QtBot, cfg: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        dlg = make(qtbot)
        dlg.base_url.setText(URL)
        dlg.api_key.setText(SECRET)
        with qtbot.assertNotEmitted(dlg.settings_saved):
            assert dlg.apply() is None
        msg = dlg.error_label.text()
        assert msg.startswith("Kan ikke lagre") and "collection is locked" in msg
        assert "$SCRIBE_LLM_API_KEY" in msg and SECRET not in msg
        assert not cfg.exists()
        assert dlg.api_key.text() == SECRET  # kept for another try
    finally:
        keyring.set_keyring(previous)


# -- the EPJ tab -------------------------------------------------------------------------

FHIR_URL = "https://fhir.sykehus.local/fhir"
TOKEN_URL = "https://helseid-sts.sykehus.local/connect/token"
FHIR_SECRET = "fhir-client-secret-7d2a-never-in-files"
TEST_FNR = "13897248098"  # synthetic (month + 80): no real person


def fill_epj(dlg: SettingsDialog, **fields: str) -> None:
    for name, value in fields.items():
        getattr(dlg, f"fhir_{name}").setText(value)


def test_epj_tab_round_trips_and_secret_goes_to_keyring_only(
    qtbot: QtBot,
    cfg: Path,
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    ca = tmp_path / "sykehus-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    dlg = make(qtbot)
    assert dlg.tabs.tabText(dlg.tabs.indexOf(dlg.epj_page)) == "Journal (EPJ)"
    assert [dlg.fhir_auth.itemData(i) for i in range(dlg.fhir_auth.count())] == [
        "none",
        "client_credentials",
    ]
    # defaults: no login fields, TLS checked without a warning, audit on
    assert dlg.fhir_auth.currentData() == "none"
    assert not any(
        w.isEnabled()
        for w in (dlg.fhir_token_url, dlg.fhir_client_id, dlg.fhir_secret, dlg.fhir_scope)
    )
    assert dlg.fhir_verify_tls.isChecked() and dlg.fhir_tls_warning.isHidden()
    assert (
        dlg.audit_enabled.isChecked() and dlg.fhir_secret.echoMode() == QLineEdit.EchoMode.Password
    )
    assert dlg.fhir_type_code.text() == "1050" and dlg.fhir_timeout.value() == 15.0

    pick(dlg.sink, "fhir")
    pick(dlg.fhir_auth, "client_credentials")
    assert all(
        w.isEnabled()
        for w in (dlg.fhir_token_url, dlg.fhir_client_id, dlg.fhir_secret, dlg.fhir_scope)
    )
    fill_epj(
        dlg,
        base_url=FHIR_URL + "/",
        token_url=TOKEN_URL,
        client_id="scribe-gp",
        secret=FHIR_SECRET,
        scope="system/DocumentReference.write",
        ca_bundle=str(ca),
        author="PractitionerRole/lege-42",
        type_code="1060",
        type_display="Poliklinisk notat",
        test_patient=TEST_FNR,
    )
    dlg.fhir_verify_tls.setChecked(False)
    assert not dlg.fhir_tls_warning.isHidden()
    assert dlg.fhir_tls_warning.styleSheet() == ERROR_STYLE
    dlg.fhir_verify_tls.setChecked(True)
    assert dlg.fhir_tls_warning.isHidden()
    dlg.fhir_timeout.setValue(30.5)
    dlg.fhir_retries.setValue(1)
    dlg.audit_enabled.setChecked(False)
    dlg.audit_path.setText(str(tmp_path / "audit.log"))
    assert "Ingen" in dlg.fhir_secret_hint.text()
    assert FHIR_SECRET not in str(dlg.values())

    with qtbot.waitSignal(dlg.settings_saved, timeout=2000) as blocker:
        assert dlg.apply() is not None
    saved: Settings = blocker.args[0]
    data = read(cfg)
    assert data["app"]["sink"] == "fhir"
    assert data["fhir"] == {
        "base_url": FHIR_URL,
        "auth": "client_credentials",
        "token_url": TOKEN_URL,
        "client_id": "scribe-gp",
        "scope": "system/DocumentReference.write",
        "ca_bundle": str(ca),
        "timeout_s": 30.5,
        "retries": 1,
        "author": "PractitionerRole/lege-42",
        "type_code": "1060",
        "type_display": "Poliklinisk notat",
        "test_patient": TEST_FNR,
    }
    assert data["audit"] == {"enabled": False, "path": str(tmp_path / "audit.log")}
    assert load_settings() == saved and saved.fhir.base_url == FHIR_URL
    # the secret: in the keyring under (service, client id), nowhere else
    assert memory_keyring.passwords == {("ambient-scribe-fhir", "scribe-gp"): FHIR_SECRET}
    assert FHIR_SECRET not in cfg.read_text(encoding="utf-8") and FHIR_SECRET not in caplog.text
    assert dlg.fhir_secret.text() == "" and "lagret" in dlg.fhir_secret_hint.text()

    # reopened: everything shown again, the secret only as "stored"; empty = unchanged
    again = make(qtbot)
    assert (
        again.fhir_base_url.text() == FHIR_URL
        and again.fhir_auth.currentData() == "client_credentials"
    )
    assert (
        again.fhir_author.text() == "PractitionerRole/lege-42" and again.fhir_retries.value() == 1
    )
    assert again.fhir_timeout.value() == 30.5 and not again.audit_enabled.isChecked()
    assert again.fhir_secret.text() == "" and "lagret" in again.fhir_secret_hint.text()
    again.fhir_client_id.setText("annen-klient")
    qtbot.keyClick(again.fhir_client_id, Qt.Key.Key_Return)  # editing finished
    assert "Ingen" in again.fhir_secret_hint.text()
    again.fhir_client_id.setText("scribe-gp")
    assert again.apply() is not None and read(cfg) == data
    assert memory_keyring.passwords == {("ambient-scribe-fhir", "scribe-gp"): FHIR_SECRET}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"base_url": "", "author": "Practitioner/it-1"}, "base_url", "FHIR-adressen"),
        ({"base_url": FHIR_URL, "author": ""}, "author", "oppgi forfatteren"),
        ({"base_url": FHIR_URL, "author": "Patient/1"}, "author", "Practitioner/ID"),
        ({"base_url": FHIR_URL, "author": "lege 42"}, "author", "Forfatter:"),
        (
            {"base_url": FHIR_URL, "author": "Practitioner/it-1", "test_patient": "13897248099"},
            "test_patient",
            "check digits",
        ),
        (
            {"base_url": FHIR_URL, "author": "Practitioner/it-1", "test_patient": "1309724"},
            "test_patient",
            "11 digits",
        ),
        (
            {"base_url": FHIR_URL, "author": "Practitioner/it-1", "ca_bundle": "/nowhere/ca.pem"},
            "ca_bundle",
            "/nowhere/ca.pem",
        ),
        (
            {"base_url": "ftp://fhir.sykehus.local", "author": "Practitioner/it-1"},
            None,
            "fhir.base_url",
        ),
    ],
)
def test_epj_errors_are_inline_and_save_nothing(
    qtbot: QtBot,
    cfg: Path,
    memory_keyring: MemoryKeyring,
    fields: dict,
    field: str | None,
    message: str,
) -> None:
    dlg = make(qtbot)
    dlg.show()
    pick(dlg.sink, "fhir")
    fill_epj(dlg, **fields)
    dlg.fhir_secret.setText(FHIR_SECRET)  # typed, but nothing may be stored
    dlg.fhir_client_id.setText("scribe-gp")
    with qtbot.assertNotEmitted(dlg.settings_saved):
        assert dlg.apply() is None
    assert not dlg.error_label.isHidden() and message in dlg.error_label.text()
    assert dlg.error_label.styleSheet() == ERROR_STYLE
    assert dlg.tabs.currentWidget() is dlg.epj_page  # the tab with the bad field is shown
    if field is not None:
        widget = getattr(dlg, f"fhir_{field}")
        assert widget.styleSheet() and dlg.focusWidget() is widget
    assert not cfg.exists() and memory_keyring.passwords == {}
    assert dlg.fhir_secret.text() == FHIR_SECRET  # kept for another try


def test_epj_checks_depend_on_the_sink(qtbot: QtBot, cfg: Path, tmp_path: Path) -> None:
    dlg = make(qtbot)
    assert dlg.sink.currentData() == "clipboard"
    assert dlg.apply() is not None  # clipboard: no FHIR address needed
    assert "fhir" not in read(cfg)  # defaults are not written
    fill_epj(dlg, test_patient="12345678901")  # a bad value is refused whatever the sink
    assert dlg.apply() is None and "Testpasient" in dlg.error_label.text()
    fill_epj(dlg, test_patient=TEST_FNR, base_url=FHIR_URL, author="Practitioner/it-1")
    dlg.fhir_secret.setText(FHIR_SECRET)  # but no client id
    assert dlg.apply() is None and "klient-ID" in dlg.error_label.text()
    assert dlg.fhir_client_id.styleSheet() and dlg.fhir_test_patient.styleSheet() == ""
    dlg.fhir_secret.clear()
    dlg.audit_path.setText(str(tmp_path))  # a folder
    assert dlg.apply() is None and "mappe" in dlg.error_label.text()
    dlg.audit_path.clear()
    pick(dlg.sink, "fhir")
    pick(dlg.fhir_auth, "client_credentials")  # without token URL and client id
    assert dlg.apply() is None and "token-adressen" in dlg.error_label.text()
    pick(dlg.fhir_auth, "none")
    assert dlg.apply() is not None and dlg.error_label.isHidden()
    assert dlg.fhir_client_id.styleSheet() == ""  # the outline went with the error
    assert read(cfg)["fhir"] == {
        "base_url": FHIR_URL,
        "author": "Practitioner/it-1",
        "test_patient": TEST_FNR,
    }


def test_epj_browse_buttons(
    qtbot: QtBot, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.pem"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(ca), "")))
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(tmp_path / "a.log"), ""))
    )
    dlg = make(qtbot)
    qtbot.mouseClick(dlg.fhir_ca_browse, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dlg.audit_browse, Qt.MouseButton.LeftButton)
    assert dlg.values()["fhir"]["ca_bundle"] == str(ca)
    assert dlg.values()["audit"]["path"] == str(tmp_path / "a.log")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    qtbot.mouseClick(dlg.fhir_ca_browse, Qt.MouseButton.LeftButton)  # cancelled: unchanged
    assert dlg.fhir_ca_bundle.text() == str(ca)


def test_fhir_secret_keyring_failure_is_inline_and_saves_nothing(qtbot: QtBot, cfg: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        dlg = make(qtbot)
        pick(dlg.fhir_auth, "client_credentials")
        fill_epj(dlg, client_id="scribe-gp", secret=FHIR_SECRET)
        with qtbot.assertNotEmitted(dlg.settings_saved):
            assert dlg.apply() is None
        msg = dlg.error_label.text()
        assert msg.startswith("Kan ikke lagre") and "collection is locked" in msg
        assert FHIR_SECRET not in msg and not cfg.exists()
        assert dlg.fhir_secret.text() == FHIR_SECRET
    finally:
        keyring.set_keyring(previous)


def test_connection_button_against_a_real_fhir_server(
    qtbot: QtBot, cfg: Path, fhir_server: FhirServer
) -> None:
    dlg = make(qtbot)
    dlg.show()
    assert dlg.test_result.isHidden() and dlg.test_busy.isHidden()
    fill_epj(dlg, base_url=fhir_server.base_url, author="Practitioner/it-1", test_patient=TEST_FNR)
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    assert not dlg.test_button.isEnabled() and not dlg.test_busy.isHidden()  # while it runs
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("OK"), timeout=20_000)
    text = dlg.test_result.text()
    assert (
        "DocumentReference/" in text and "lagret og lest tilbake" in text and text.endswith(" s)")
    )
    assert dlg.test_button.isEnabled() and dlg.test_busy.isHidden()
    ref = text.split()[1]
    doc = httpx.get(f"{fhir_server.base_url}/{ref}", timeout=10).json()
    assert doc["subject"]["identifier"]["value"] == TEST_FNR
    assert doc["meta"]["tag"][0]["code"] == "connection-test"
    assert not cfg.exists()  # testing saves nothing
    qtbot.waitUntil(lambda: dlg.runner.busy == 0, timeout=5000)


def test_connection_failure_shows_one_line_error(qtbot: QtBot, cfg: Path) -> None:
    dlg = make(qtbot)
    fill_epj(dlg, base_url=f"http://127.0.0.1:{free_port()}/fhir", author="Practitioner/it-1")
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)  # no test patient
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("Feil"), timeout=5000)
    assert "test patient" in dlg.test_result.text()
    assert dlg.test_result.styleSheet() == ERROR_STYLE and dlg.test_button.isEnabled()
    fill_epj(dlg, test_patient=TEST_FNR)
    dlg.fhir_retries.setValue(0)  # nobody listens there: fails at once
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cannot connect" in dlg.test_result.text(), timeout=10_000)
    assert "\n" not in dlg.test_result.text() and dlg.test_busy.isHidden()
    # the result reaches the label before the worker's thread is torn down (a race in CI)
    qtbot.waitUntil(lambda: dlg.runner.busy == 0, timeout=5000)
    fill_epj(dlg, base_url="ftp://x")  # invalid in the form: no background work at all
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    assert "fhir.base_url" in dlg.test_result.text() and dlg.runner.busy == 0


def test_connection_test_uses_the_typed_client_secret(
    qtbot: QtBot, cfg: Path, memory_keyring: MemoryKeyring, fhir_auth_server: FhirServer
) -> None:
    from tests.conftest import CLIENT

    dlg = make(qtbot)
    pick(dlg.fhir_auth, "client_credentials")
    fill_epj(
        dlg,
        base_url=fhir_auth_server.base_url,
        token_url=fhir_auth_server.token_url,
        client_id=CLIENT["client_id"],
        scope=CLIENT["scopes"],
        author="Practitioner/it-1",
        test_patient=TEST_FNR,
    )
    dlg.fhir_retries.setValue(0)
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)  # nothing typed, none stored
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("Feil"), timeout=10_000)
    assert "keyring" in dlg.test_result.text()
    dlg.fhir_secret.setText(CLIENT["client_secret"])  # typed, not yet saved
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("OK"), timeout=20_000)
    assert "DocumentReference/" in dlg.test_result.text()
    assert memory_keyring.passwords == {} and not cfg.exists()  # testing stores nothing
    assert CLIENT["client_secret"] not in dlg.test_result.text()
