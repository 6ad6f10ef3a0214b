"""One typed settings object, loaded from the user's config file, the environment
(``SCRIBE_ASR__MODEL=...``) and command-line flags, in rising priority.

The config file is TOML at ``$SCRIBE_CONFIG`` or the user config directory
(``~/.config/ambient-scribe/config.toml`` on Linux). Secrets never go here (issue #3+
keeps them in the OS keyring).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from asr.errors import ConfigError
from asr.models import DEFAULT_ASR_MODEL
from summarize.llm.config import LlmConfig


class AsrSettings(BaseModel):
    """Speech recognition."""

    model: str = Field(
        DEFAULT_ASR_MODEL,
        description="Embedded model id or a local CTranslate2 Whisper directory "
        "(e.g. NB-Whisper large converted with ct2-transformers-converter).",
    )
    device: str = Field("auto", description="auto, cpu or cuda")
    compute_type: str = Field("auto", description="auto (cpu: int8, cuda: int8_float16) or a CTranslate2 type")
    cpu_threads: int = Field(0, ge=0, description="0 = all cores")
    language: str = Field("no", description="no (bokmål), nn (nynorsk), en or auto")
    beam_size: int = Field(5, ge=1, le=10, description="beam of the decode that ends an utterance")
    interim_beam_size: int = Field(1, ge=1, le=10, description="beam of re-decodes inside an utterance")
    min_chunk_s: float = Field(2.0, gt=0, le=10, description="new speech (s) between re-decodes")
    vad_aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode 0-3")
    end_silence_s: float = Field(0.5, gt=0.05, le=5, description="pause (s) that ends an utterance")
    input_device: str = Field("", description="microphone name or index; empty = system default")
    vocabulary: list[str] = Field(default_factory=list, description="words to bias recognition (drug names)")

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

    model_config = SettingsConfigDict(env_prefix="SCRIBE_", env_nested_delimiter="__", extra="forbid")

    asr: AsrSettings = Field(default_factory=AsrSettings)
    llm: LlmConfig = Field(default_factory=LlmConfig)

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
                merged.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
            settings = Settings.model_validate(merged)
        return settings
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise ConfigError(f"invalid setting {where} ({config_path()} or flag): {err.get('msg')}") from None
