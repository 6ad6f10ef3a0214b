"""Typed configuration of the LLM engine (the ``llm`` section of the settings).

Secrets are never stored here: the API key of an OpenAI-compatible server comes from
the OS keyring (service :attr:`LlmConfig.keyring_service`, user = the server's
``base_url``) or, failing that, from the environment variable named by
:attr:`LlmConfig.api_key_env`. It is handled as a :class:`pydantic.SecretStr` and never
logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class LlmConfig(BaseModel):
    """Which LLM engine drafts notes, on what model and hardware, and how to reach a server."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    engine: str = Field(
        default="auto",
        description="Engine registry name: auto (default: llamacpp for the embedded models "
        "and .gguf files, ctranslate2 for CTranslate2 directories, transformers for Hugging "
        "Face checkpoints), llamacpp (local GGUF, memory-mapped, JSON-schema constrained "
        "output), ctranslate2 (local), transformers "
        "(local, PyTorch; GPU sites and benchmark baseline) or openai (an OpenAI-compatible "
        "HTTP server inside the hospital network).",
    )
    model: str | None = Field(
        default=None,
        description="Embedded model id (e.g. qwen2.5-coder-0.5b-instruct-q4km) or a local model "
        "directory (CTranslate2 for ctranslate2, transformers for transformers) or a .gguf "
        "file (llamacpp). "
        "None = the embedded default model. Ignored by the openai engine.",
    )
    device: str = Field(default="auto", description="auto, cpu or cuda (local engines)")
    compute_type: str | None = Field(
        default=None,
        description="CTranslate2 compute type; None/auto = int8 on CPU, int8_float16 (or "
        "float16) on CUDA. The transformers engine uses float32 on CPU and float16 on CUDA "
        "unless this is float32, float16 or bfloat16.",
    )
    threads: int = Field(
        default=0, ge=0, description="CPU threads of a local engine; 0 = all cores"
    )
    base_url: str | None = Field(
        default=None,
        description="openai engine: server base URL including the API prefix, "
        "e.g. https://llm.sykehus.local/v1 (POSTs go to {base_url}/chat/completions).",
    )
    api_model: str | None = Field(
        default=None,
        description="openai engine: the model name the server knows (the request's "
        "'model' field). None = the server's default (sent as 'default').",
    )
    api_key_env: str = Field(
        default="SCRIBE_LLM_API_KEY",
        description="Environment variable holding the server API key, used when the OS "
        "keyring has none.",
    )
    keyring_service: str = Field(
        default="ambient-scribe",
        description="OS keyring service holding the API key (user name = base_url). "
        "Looked up before the environment variable.",
    )
    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="openai engine: longest wait (s) for the server's next data (the answer's "
        "start, then each streamed chunk) before giving up with a timeout error.",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="openai engine: longest wait (s) to open the connection"
    )
    verify_tls: bool | str = Field(
        default=True,
        description="openai engine: verify the server's TLS certificate (true, default), "
        "a path to the hospital's CA bundle (PEM file or directory), or false (tests only).",
    )
    allow_http: bool = Field(
        default=False,
        description="openai engine: allow plain http to a server that is not on this machine "
        "(a lab set-up only: the transcript and the API key would cross the network unencrypted).",
    )
    max_context: int | None = Field(
        default=None,
        gt=0,
        description="Cap on the context window (prompt + output tokens). Local engines use "
        "min(model's max_position_embeddings, this); the openai engine uses this or 8192.",
    )
    draft: Literal["lines", "note"] = Field(
        default="lines",
        description="How notes are drafted: 'lines' = each clinical utterance becomes short "
        "journal sentences (suits small local models, drafts while recording); 'note' = the "
        "model writes the whole note under the template's headings (for large models).",
    )
    batch: int = Field(
        default=0,
        ge=0,
        le=32,
        description="Utterances drafted together ('lines'): 0 = the engine's choice (4 "
        "concurrent requests to an LLM server, a batch of 4 on a GPU, one by one on a CPU, "
        "where batching measured no faster); 1 = one by one.",
    )
    temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=2.0,
        description="Default sampling temperature when a caller passes none; 0 = greedy "
        "(deterministic, recommended for notes).",
    )

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        v = v.strip().lower()
        if not v:
            raise ValueError("must name an engine (auto, llamacpp, ctranslate2, transformers or openai)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda"):
            raise ValueError("must be auto, cpu or cuda")
        return v

    @field_validator("model", "compute_type", "api_model", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, str):
            v = v.strip().rstrip("/")
            parts = urlsplit(v)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http(s) URL such as https://llm.sykehus.local/v1")
            if parts.username or parts.password:
                raise ValueError("must not contain credentials; keep the API key in the keyring")
        return v

    @field_validator("verify_tls", mode="before")
    @classmethod
    def _verify_tls(cls, v: object) -> object:
        if isinstance(v, str):
            s = v.strip()
            if s.lower() in _TRUE:
                return True
            if s.lower() in _FALSE:
                return False
            if not s:
                return True
            return str(Path(s).expanduser())
        return v

    def resolve_api_key(self) -> SecretStr | None:
        """The API key: the OS keyring first (service, base_url), then ``$api_key_env``.

        A keyring that is missing or broken is not an error (logged at DEBUG); returns
        None when neither source has a key.
        """
        if self.base_url and self.keyring_service:
            try:
                import keyring

                secret = keyring.get_password(self.keyring_service, self.base_url)
            except Exception as exc:  # no backend, locked, D-Bus missing ...
                logger.debug("no API key from the OS keyring (%s)", type(exc).__name__)
                secret = None
            if secret:
                logger.debug("API key for %s from the OS keyring", self.base_url)
                return SecretStr(secret)
        value = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if value.strip():
            logger.debug("API key from $%s", self.api_key_env)
            return SecretStr(value.strip())
        return None
