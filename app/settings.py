"""One typed settings object, loaded from the user's config file, the environment
(``SCRIBE_ASR__MODEL=...``) and command-line flags, in rising priority.

The config file is TOML at ``$SCRIBE_CONFIG`` or the user config directory
(``~/.config/ambient-scribe/config.toml`` on Linux); :func:`save_settings` writes it
(the settings dialog). Secrets never go here: the LLM server's API key lives in the OS
keyring (:func:`store_api_key`), under the service and user name
:meth:`LlmConfig.resolve_api_key` reads.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from asr.errors import ConfigError
from asr.models import DEFAULT_ASR_MODEL
from summarize.delivery.fhir_config import FhirConfig
from summarize.llm.config import LlmConfig

logger = logging.getLogger(__name__)

DEFAULT_SINK = "clipboard"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class AsrSettings(BaseModel):
    """Speech recognition."""

    model: str = Field(
        DEFAULT_ASR_MODEL,
        description="Embedded model id or a local CTranslate2 Whisper directory "
        "(e.g. NB-Whisper large converted with ct2-transformers-converter).",
    )
    device: str = Field("auto", description="auto, cpu or cuda")
    compute_type: str = Field(
        "auto", description="auto (cpu: int8, cuda: int8_float16) or a CTranslate2 type"
    )
    cpu_threads: int = Field(0, ge=0, description="0 = all cores")
    language: str = Field("no", description="no (bokmål), nn (nynorsk), en or auto")
    beam_size: int = Field(5, ge=1, le=10, description="beam of the decode that ends an utterance")
    interim_beam_size: int = Field(
        1, ge=1, le=10, description="beam of re-decodes inside an utterance"
    )
    min_chunk_s: float = Field(2.0, gt=0, le=10, description="new speech (s) between re-decodes of a long utterance")
    tentative: Literal["live", "on", "off"] = Field(
        "live",
        description="the cheap path's greyed text on screen: live (microphone and real-time "
        "replay), on (also files read at once, e.g. for --tentative), off",
    )
    tentative_every_s: float = Field(1.0, ge=0.2, le=10, description="new speech (s) between tentative decodes")
    correct_terms: bool = Field(
        True,
        description="replace unsure words that are no Norwegian word but sound like a drug name or a "
        "template term by that name (Debian's wnorwegian word lists)",
    )
    vad_aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode 0-3")
    end_silence_s: float = Field(0.5, gt=0.05, le=5, description="pause (s) that ends an utterance")
    input_device: str = Field("", description="microphone name or index; empty = system default")
    vocabulary: list[str] = Field(
        default_factory=list, description="words to bias recognition (drug names)"
    )
    engine: Literal["local", "openai"] = Field(
        "local",
        description="local (Whisper on this machine) or openai (an OpenAI-compatible "
        "/v1/audio/transcriptions server, e.g. the department's GPU pool; no local model is loaded)",
    )
    api_base: str = Field(
        "",
        description="openai engine: server base URL including the API prefix, e.g. http://gpu-pool:8000/v1 "
        "(POSTs go to {api_base}/audio/transcriptions)",
    )
    api_model: str = Field("whisper-1", description="openai engine: the model name the server knows")
    api_key_env: str = Field(
        "SCRIBE_ASR_API_KEY",
        description="openai engine: environment variable holding the server's API key (sent as a Bearer token)",
    )
    api_timeout_s: float = Field(
        60.0, gt=0, le=600, description="openai engine: longest wait (s) for the transcription of one utterance"
    )

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        from asr.decoder import normalize_language

        normalize_language(v)
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda"):
            raise ValueError("must be auto, cpu or cuda")
        return v


class AppSettings(BaseModel):
    """The desktop app: languages, note defaults, where notes go, superuser mode."""

    model_config = ConfigDict(extra="forbid")

    ui_language: Literal["nb", "en"] = Field(
        default="nb", description="UI language: nb (bokmål) or en"
    )
    note_language: Literal["nb", "nn"] = Field(
        default="nb",
        description="Written form of the note: nb (bokmål) or nn (nynorsk); the template "
        "variant in that form (e.g. allmennmedisin-nn) is preferred.",
    )
    default_template: str = Field(
        default="allmennmedisin", description="Note template id chosen at start"
    )
    superuser: bool = Field(
        default=False, description="Superuser mode (template editing) for this user"
    )
    superuser_group: str = Field(
        default="scribe-superusers",
        description="OS group whose members get superuser mode; empty = none",
    )
    template_dir: str = Field(
        default="", description="Where superusers save templates; empty = the user data directory"
    )
    sink: str = Field(
        default=DEFAULT_SINK, description="Where a finished note goes (e.g. clipboard)"
    )
    clipboard_clear_s: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="Clear the clipboard this long (s) after copying; 0 = never",
    )
    consultations_dir: str = Field(
        default="", description="Shared folder of recorded consultations for the template preview"
    )

    @field_validator("ui_language", mode="before")
    @classmethod
    def _ui_language(cls, v: object) -> object:
        v = v.strip().lower() if isinstance(v, str) else v
        if v not in ("nb", "en"):
            raise ValueError("must be nb (norsk bokmål) or en (English)")
        return v

    @field_validator("note_language", mode="before")
    @classmethod
    def _note_language(cls, v: object) -> object:
        v = v.strip().lower() if isinstance(v, str) else v
        if v not in ("nb", "nn"):
            raise ValueError("must be nb (bokmål) or nn (nynorsk)")
        return v

    @field_validator("default_template")
    @classmethod
    def _template(cls, v: str) -> str:
        v = v.strip()
        if not (_TEMPLATE_ID.match(v) or v.endswith(".j2")):
            raise ValueError("must be a template id such as allmennmedisin or a .md.j2 file")
        return v

    @field_validator("sink")
    @classmethod
    def _sink(cls, v: str) -> str:
        v = v.strip().lower()
        if not _NAME.match(v):
            raise ValueError("must be a sink name such as clipboard")
        return v

    @field_validator("superuser_group")
    @classmethod
    def _group(cls, v: str) -> str:
        v = v.strip()
        if any(c.isspace() or c in ":," for c in v):
            raise ValueError("must be one OS group name (no spaces, ':' or ',')")
        return v

    @field_validator("template_dir", "consultations_dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        v = v.strip()
        if "\0" in v or "\n" in v:
            raise ValueError("must be a folder path on one line")
        if v and Path(v).expanduser().is_file():
            raise ValueError(f"{v} is a file, not a folder")
        return v


class AuditSettings(BaseModel):
    """The PHI-free audit log: one line per session, hash-chained and HMAC-signed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Write one audit line per ended session")
    path: str = Field(default="", description="Audit log file; empty = the user data directory")
    keyring_service: str = Field(default="ambient-scribe", description="OS keyring service of the HMAC key")

    def open(self) -> Any:
        """The :class:`summarize.delivery.audit.AuditLog`, or None when disabled. The key is read
        from the keyring (created on first use) only when a line is written."""
        if not self.enabled:
            return None
        from summarize.delivery.audit import AuditLog, default_audit_path
        from summarize.delivery.audit_keyring import audit_key

        path = Path(self.path).expanduser() if self.path else default_audit_path()
        return AuditLog(path, lambda: audit_key(self.keyring_service))


class SpeakerSettings(BaseModel):
    """Who said it: roles (lege / pasient / pårørende) from the voices, on this machine."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "off"] = Field(default="auto", description="auto: tell the voices apart; off: no roles from audio")
    voice_profile: str = Field(
        default="", description="The clinician's voice profile (scribe voice enroll); empty = the user data directory's, if any")

    @field_validator("voice_profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        v = v.strip()
        if "\0" in v or "\n" in v:
            raise ValueError("must be a file path on one line")
        return v

    def profile_path(self) -> Path:
        from asr.speakers.profile import default_path

        return Path(self.voice_profile).expanduser() if self.voice_profile else default_path()


class EdgeSettings(BaseModel):
    """The mobile edge server (``scribe edge serve``): phones record, this machine transcribes and drafts."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="0.0.0.0", description="address to listen on")
    port: int = Field(default=8443, ge=1, le=65535, description="HTTPS port")
    cert: str = Field(default="", description="TLS certificate chain (PEM) from the hospital CA")
    key: str = Field(default="", description="its private key (PEM)")
    public_url: str = Field(
        default="", description="https://HOST:PORT the phones reach (in the pairing QR code); empty = the host's name and port")
    max_consultations: int = Field(
        default=1, ge=1, le=500,
        description="live consultations at once, more refused as busy (measured: 2 CPU cores carry 1; benchmarks/edge_load.py)")
    max_backlog_s: float = Field(
        default=10.0, gt=0, le=120,
        description="refuse new consultations while a live one's audio waits this long for Whisper (real time peaks at ~6 s)")
    shift_h: float = Field(default=12.0, gt=0, le=24, description="hours a paired phone stays paired")
    pair_ttl_s: int = Field(default=60, ge=10, le=600, description="seconds a pairing code is valid")
    grace_s: float = Field(default=120.0, ge=5, le=3600, description="a consultation whose phone stays away this long is wiped")
    max_frame_bytes: int = Field(default=65544, ge=1024, le=1048576, description="largest audio frame (header + PCM16)")
    control_socket: str = Field(
        default="", description="the local pairing channel (Unix socket, mode 0600); empty = the user runtime directory's")

    @field_validator("cert", "key", "control_socket", "public_url")
    @classmethod
    def _one_line(cls, v: str) -> str:
        v = v.strip()
        if "\0" in v or "\n" in v:
            raise ValueError("must be on one line")
        return v

    def socket_path(self) -> Path:
        if self.control_socket:
            return Path(self.control_socket).expanduser()
        from platformdirs import user_runtime_dir

        return Path(user_runtime_dir("ambient-scribe", appauthor=False)) / "edge.sock"


def available_sinks() -> list[str]:
    """Sink names a user can choose (:data:`summarize.delivery.registry.SINKS`), clipboard first."""
    from summarize.delivery.registry import SINKS

    return [DEFAULT_SINK] + [name for name in SINKS if name != DEFAULT_SINK]


def config_path() -> Path:
    env = os.environ.get("SCRIBE_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("ambient-scribe", appauthor=False)) / "config.toml"


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            return tomllib.loads(self.path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {self.path}: {exc}") from None


class Settings(BaseSettings):
    """Everything configurable, one object."""

    model_config = SettingsConfigDict(
        env_prefix="SCRIBE_", env_nested_delimiter="__", extra="forbid"
    )

    asr: AsrSettings = Field(default_factory=AsrSettings)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    app: AppSettings = Field(default_factory=AppSettings)
    fhir: FhirConfig = Field(default_factory=FhirConfig)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    speakers: SpeakerSettings = Field(default_factory=SpeakerSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls, config_path())


def load_settings(**overrides: Any) -> Settings:
    """Load settings; ``overrides`` are nested dicts from CLI flags (highest priority)."""
    try:
        settings = Settings()
        if overrides:
            merged = settings.model_dump()
            for section, values in overrides.items():
                merged.setdefault(section, {}).update(
                    {k: v for k, v in values.items() if v is not None}
                )
            settings = Settings.model_validate(merged)
        return settings
    except ValidationError as exc:
        where, msg = _error_line(exc)
        raise ConfigError(f"invalid setting {where} ({config_path()} or flag): {msg}") from None


def _error_line(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return where, msg


def validate_settings(data: dict[str, Any]) -> Settings:
    """A :class:`Settings` from nested section dicts (the settings dialog); the environment
    and the config file fill only what ``data`` leaves out. Raises a one-line
    :class:`ConfigError` naming the first bad setting."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where, msg = _error_line(exc)
        raise ConfigError(f"invalid setting {where}: {msg}") from None


# ---------------------------------------------------------------------------- saving

_SECRET_KEY = re.compile(r"(^|_)(api_key|password|secret|token)$", re.IGNORECASE)


def _toml_ready(value: Any, where: str = "") -> Any:
    """Drop None (TOML has no null; every None field defaults to None) and refuse secrets."""
    if isinstance(value, SecretStr):
        raise ConfigError(f"refusing to write secret {where or 'value'} to the config file")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if _SECRET_KEY.search(str(key)):
                raise ConfigError(f"refusing to write secret {name} to the config file")
            if item is not None:
                out[str(key)] = _toml_ready(item, name)
        return out
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v, where) for v in value if v is not None]
    return value


def settings_to_toml(settings: Settings) -> str:
    """The config file text of ``settings``: only values that differ from the defaults."""
    import tomli_w

    data = _toml_ready(settings.model_dump(mode="python", exclude_defaults=True))
    return tomli_w.dumps({k: v for k, v in data.items() if v != {}})


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``settings`` to the TOML config file (default :func:`config_path`); returns it.

    Only non-default values are written, so later default changes reach the user; values
    that came from ``SCRIBE_*`` environment variables are written too. The write is
    atomic (a temporary file in the same folder, then ``os.replace``), the file is
    private (mode 0600) and the parent folder is created. No secret is ever written.
    Raises a one-line :class:`ConfigError` when the file cannot be written.
    """
    path = Path(path or config_path()).expanduser()
    body = settings_to_toml(settings)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o600)
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    logger.info("settings saved to %s", path)
    return path


# ---------------------------------------------------------------------------- superuser


def _os_in_group(group: str) -> bool:
    """Whether the current user is in the OS group ``group`` (POSIX; False elsewhere).

    Looks the one group up (never enumerates the directory, which is slow on LDAP/AD):
    its gid among the process's groups, or the user among its listed members (so a user
    added since login counts).
    """
    try:
        import getpass
        import grp

        entry = grp.getgrnam(group)
        if entry.gr_gid in {os.getgid(), *os.getgroups()}:
            return True
        return getpass.getuser() in entry.gr_mem
    except Exception as exc:  # unknown group, no grp module (Windows), no passwd entry
        logger.debug("superuser group %r not granted (%s)", group, type(exc).__name__)
        return False


def in_superuser_group(settings: Settings, groups: Iterable[str] | None = None) -> bool:
    """Whether the user is in ``app.superuser_group``; ``groups`` (the user's group
    names) replaces the OS lookup, for tests."""
    group = settings.app.superuser_group
    if not group:
        return False
    if groups is not None:
        return group in set(groups)
    return _os_in_group(group)


def is_superuser(settings: Settings, groups: Iterable[str] | None = None) -> bool:
    """Superuser mode: enabled in the settings or granted by membership of
    ``app.superuser_group`` (``groups``: the user's group names, for tests)."""
    return bool(settings.app.superuser) or in_superuser_group(settings, groups)


# ---------------------------------------------------------------------------- API key


def _keyring_slot(config: LlmConfig) -> tuple[str, str]:
    if not config.base_url:
        raise ConfigError("set llm.base_url (the server URL) before storing its API key")
    if not config.keyring_service:
        raise ConfigError("llm.keyring_service is empty: name the OS keyring service to use")
    return config.keyring_service, config.base_url


def _keyring_error(action: str, exc: Exception, config: LlmConfig) -> ConfigError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    fix = f"; set ${config.api_key_env} instead" if config.api_key_env else ""
    return ConfigError(
        f"cannot {action} the API key in the OS keyring ({type(exc).__name__}"
        f"{': ' + detail if detail else ''}){fix}"
    )


def store_api_key(config: LlmConfig, key: str | SecretStr) -> None:
    """Store the LLM server's API key in the OS keyring (service ``keyring_service``,
    user ``base_url``: where :meth:`LlmConfig.resolve_api_key` looks first)."""
    secret = key.get_secret_value() if isinstance(key, SecretStr) else str(key)
    secret = secret.strip()
    if not secret:
        raise ConfigError("the API key is empty")
    service, user = _keyring_slot(config)
    try:
        import keyring

        keyring.set_password(service, user, secret)
    except Exception as exc:
        raise _keyring_error("store", exc, config) from None
    logger.info("API key for %s stored in the OS keyring", user)


def has_api_key(config: LlmConfig) -> bool:
    """Whether the OS keyring holds an API key for ``config.base_url`` (False when there is
    no server URL or no usable keyring)."""
    if not config.base_url or not config.keyring_service:
        return False
    try:
        import keyring

        return bool(keyring.get_password(config.keyring_service, config.base_url))
    except Exception as exc:
        logger.debug("cannot read the OS keyring (%s)", type(exc).__name__)
        return False


def delete_api_key(config: LlmConfig) -> bool:
    """Remove the stored API key; False when there was none."""
    service, user = _keyring_slot(config)
    try:
        import keyring
        from keyring.errors import PasswordDeleteError

        try:
            keyring.delete_password(service, user)
        except PasswordDeleteError:
            return False
    except Exception as exc:
        raise _keyring_error("delete", exc, config) from None
    logger.info("API key for %s removed from the OS keyring", user)
    return True
