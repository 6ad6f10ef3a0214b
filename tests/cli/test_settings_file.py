"""The user config file: save/load round trip, file safety, validation, superuser mode and
the API key in the OS keyring (an in-memory keyring backend; never the real one)."""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from pathlib import Path

import keyring
import pytest

from app import settings as settings_mod
from app.settings import (
    AppSettings,
    AsrSettings,
    Settings,
    available_sinks,
    config_path,
    delete_api_key,
    has_api_key,
    in_superuser_group,
    is_superuser,
    load_settings,
    save_settings,
    settings_to_toml,
    store_api_key,
    validate_settings,
)
from asr.errors import ConfigError
from summarize.llm.config import LlmConfig
from tests.keyrings import MemoryKeyring

SECRET = "sk-test-7f3a9c1e-do-not-log"
URL = "https://llm.sykehus.local/v1"


class BrokenKeyring(MemoryKeyring):
    """A keyring whose every call fails, like a locked one without D-Bus."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("keyring locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("keyring locked\nsecond line")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("keyring locked")


@pytest.fixture()
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SCRIBE_CONFIG in a folder that does not exist yet; no other SCRIBE_* variables."""
    for name in list(os.environ):
        if name.startswith("SCRIBE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "conf" / "sub" / "config.toml"
    monkeypatch.setenv("SCRIBE_CONFIG", str(path))
    return path


def _custom() -> Settings:
    return load_settings(
        asr={"device": "cpu", "vad_aggressiveness": 3, "language": "nn", "input_device": "USB"},
        llm={"engine": "openai", "base_url": URL + "/", "api_model": "llama-3-70b"},
        app={
            "ui_language": "en",
            "note_language": "nn",
            "default_template": "allmennmedisin-nn",
            "superuser": True,
            "clipboard_clear_s": 45,
            "consultations_dir": "~/konsultasjoner",
        },
    )


def test_round_trip_writes_only_changed_values(cfg: Path) -> None:
    assert not cfg.parent.exists()
    original = _custom()
    written = save_settings(original)
    assert written == cfg == config_path()
    loaded = load_settings()
    assert loaded == original
    assert loaded.llm.base_url == URL  # normalised once, stored normalised
    data = tomllib.loads(cfg.read_text(encoding="utf-8"))
    assert data["asr"] == {
        "device": "cpu",
        "language": "nn",
        "vad_aggressiveness": 3,
        "input_device": "USB",
    }
    assert data["app"]["note_language"] == "nn" and data["app"]["clipboard_clear_s"] == 45
    assert "beam_size" not in data["asr"] and "timeout_s" not in data["llm"]
    # back to all defaults: the file is empty and loads as defaults
    defaults = Settings(asr=AsrSettings(), llm=LlmConfig(), app=AppSettings())
    save_settings(defaults)
    assert cfg.read_text(encoding="utf-8") == ""
    assert load_settings() == defaults


def test_explicit_path_and_old_files_without_app_section(cfg: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    assert save_settings(_custom(), other) == other and other.is_file()
    assert not cfg.exists()
    cfg.parent.mkdir(parents=True)
    cfg.write_text('[asr]\ndevice = "cpu"\n', encoding="utf-8")  # written before [app] existed
    s = load_settings()
    assert s.asr.device == "cpu" and s.app == AppSettings()
    assert s.app.ui_language == "nb" and s.app.note_language == "nb"
    assert s.app.default_template == "allmennmedisin" and s.app.sink == "clipboard"
    assert s.app.superuser is False and s.app.superuser_group == "scribe-superusers"


def test_environment_overrides_the_app_section(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(load_settings(app={"ui_language": "nb", "sink": "clipboard"}))
    monkeypatch.setenv("SCRIBE_APP__UI_LANGUAGE", "en")
    assert load_settings().app.ui_language == "en"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_file_is_private_and_written_atomically(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(_custom())
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["config.toml"]
    before = cfg.read_bytes()

    def fail_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings_mod.os, "replace", fail_replace)
    with pytest.raises(ConfigError) as exc:
        save_settings(load_settings(asr={"device": "cuda"}))
    assert "cannot write" in str(exc.value) and "No space left" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert cfg.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["config.toml"]  # no temp left


def test_unwritable_folder_is_one_line_error(cfg: Path) -> None:
    cfg.parent.parent.mkdir(parents=True)
    cfg.parent.write_text("a file where the folder should be")
    with pytest.raises(ConfigError) as exc:
        save_settings(_custom())
    assert str(exc.value).startswith("cannot write ") and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("toml", "where", "hint"),
    [
        ('[app]\nnote_language = "sv"\n', "app.note_language", "nynorsk"),
        ('[app]\nui_language = "de"\n', "app.ui_language", "English"),
        ("[app]\nclipboard_clear_s = -5\n", "app.clipboard_clear_s", "greater than"),
        ('[app]\nsink = "Clip Board!"\n', "app.sink", "sink name"),
        ('[app]\ndefault_template = "../etc/x"\n', "app.default_template", "template id"),
        ('[app]\nsuperuser_group = "a b"\n', "app.superuser_group", "one OS group"),
        ('[app]\nsuperuser = "maybe"\n', "app.superuser", "boolean"),
        ('[app]\ncolour = "red"\n', "app.colour", "extra"),
        ('[llm]\nbase_url = "https://u:pw@llm.local/v1"\n', "llm.base_url", "credentials"),
        ("[asr]\nvad_aggressiveness = 4\n", "asr.vad_aggressiveness", "less than"),
    ],
)
def test_invalid_values_are_one_line_errors(cfg: Path, toml: str, where: str, hint: str) -> None:
    cfg.parent.mkdir(parents=True)
    cfg.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    msg = str(exc.value)
    assert "\n" not in msg and where in msg and hint.lower() in msg.lower(), msg
    assert str(cfg) in msg
    assert "pw@" not in msg


def test_template_dir_must_not_be_a_file(cfg: Path, tmp_path: Path) -> None:
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="app.template_dir.*is a file"):
        validate_settings({"app": {"template_dir": str(f)}})
    ok = validate_settings({"app": {"template_dir": str(tmp_path / "not-yet")}})
    assert ok.app.template_dir == str(tmp_path / "not-yet")


def test_validate_settings_normalises_and_reports(cfg: Path) -> None:
    s = validate_settings(
        {"app": {"ui_language": " EN ", "note_language": "NN", "sink": "Clipboard"}}
    )
    assert (s.app.ui_language, s.app.note_language, s.app.sink) == ("en", "nn", "clipboard")
    with pytest.raises(ConfigError) as exc:
        validate_settings({"asr": {"device": "tpu"}})
    assert str(exc.value) == "invalid setting asr.device: must be auto, cpu or cuda"


def test_available_sinks_starts_with_clipboard() -> None:
    sinks = available_sinks()
    assert sinks[0] == "clipboard" and len(sinks) == len(set(sinks))


def test_superuser_by_flag_and_by_group(cfg: Path) -> None:
    plain = load_settings()
    assert not is_superuser(plain, groups=["users", "audio"])
    assert is_superuser(plain, groups=["users", "scribe-superusers"])
    assert in_superuser_group(plain, groups=["scribe-superusers"])
    flagged = load_settings(app={"superuser": True})
    assert is_superuser(flagged, groups=[])
    assert not in_superuser_group(flagged, groups=[])
    custom = load_settings(app={"superuser_group": "legekontor-admin"})
    assert is_superuser(custom, groups=["legekontor-admin"])
    assert not is_superuser(custom, groups=["scribe-superusers"])
    nobody = load_settings(app={"superuser_group": ""})
    assert not is_superuser(nobody, groups=[""])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX groups")
def test_superuser_by_real_os_group(cfg: Path) -> None:
    import grp

    mine = grp.getgrgid(os.getgid()).gr_name
    assert is_superuser(load_settings(app={"superuser_group": mine}))
    assert not is_superuser(load_settings(app={"superuser_group": "no-such-group-4f1c2e"}))


def test_api_key_goes_to_keyring_never_to_the_file(
    cfg: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    monkeypatch.delenv("SCRIBE_LLM_API_KEY", raising=False)
    s = _custom()
    assert not has_api_key(s.llm)
    store_api_key(s.llm, f"  {SECRET} ")
    assert memory_keyring.passwords == {("ambient-scribe", URL): SECRET}
    assert has_api_key(s.llm)
    # the same place LlmConfig reads it from
    resolved = s.llm.resolve_api_key()
    assert resolved is not None and resolved.get_secret_value() == SECRET
    save_settings(s)
    text = cfg.read_text(encoding="utf-8")
    assert SECRET not in text
    assert "api_key" not in tomllib.loads(text).get("llm", {})
    assert SECRET not in settings_to_toml(load_settings())
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err + caplog.text
    # another server URL has no key; delete is idempotent
    assert not has_api_key(s.llm.model_copy(update={"base_url": "https://other.local/v1"}))
    assert delete_api_key(s.llm) is True
    assert not has_api_key(s.llm) and memory_keyring.passwords == {}
    assert delete_api_key(s.llm) is False


def test_api_key_errors_are_one_line(cfg: Path, memory_keyring: MemoryKeyring) -> None:
    no_url = LlmConfig()
    with pytest.raises(ConfigError, match="base_url"):
        store_api_key(no_url, SECRET)
    assert not has_api_key(no_url)
    with pytest.raises(ConfigError, match="empty"):
        store_api_key(LlmConfig(base_url=URL), "   ")
    assert memory_keyring.passwords == {}

    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        with pytest.raises(ConfigError) as exc:
            store_api_key(LlmConfig(base_url=URL), SECRET)
        msg = str(exc.value)
        assert "\n" not in msg and "keyring" in msg and "RuntimeError" in msg
        assert SECRET not in msg
        assert has_api_key(LlmConfig(base_url=URL)) is False  # unreadable keyring: no key
        with pytest.raises(ConfigError, match="cannot delete"):
            delete_api_key(LlmConfig(base_url=URL))
    finally:
        keyring.set_keyring(previous)


def test_secret_fields_are_refused() -> None:
    with pytest.raises(ConfigError, match="llm.api_key"):
        settings_mod._toml_ready({"llm": {"engine": "openai", "api_key": SECRET}})
    with pytest.raises(ConfigError, match="app.password"):
        settings_mod._toml_ready({"app": {"password": SECRET}})
    assert settings_mod._toml_ready({"llm": {"api_key_env": "X", "model": None}}) == {
        "llm": {"api_key_env": "X"}
    }
