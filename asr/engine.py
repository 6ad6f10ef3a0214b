"""An ASR engine: a resolved, checked and loaded Whisper model plus its options.

It creates one :class:`StreamingTranscriber` per session and offers the offline
(whole-file) transcription used as the baseline in benchmarks. With ``engine = "openai"``
no model is loaded: an OpenAI-compatible server transcribes (:mod:`asr.remote`) and each
session gets a :class:`~asr.remote.RemoteTranscriber`, which has the same interface.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from asr.decoder import DecodeOptions, WhisperDecoder
from asr.errors import ConfigError
from asr.loader import ComputeChoice, choose_compute, load_whisper
from asr.models import Progress, resolve_whisper_model
from asr.remote import DEFAULT_KEY_ENV, DEFAULT_MODEL, AsrServer, RemoteTranscriber, ServerOptions, transcribe_whole
from asr.streaming import StreamingOptions, StreamingTranscriber
from asr.types import Word
from asr.vad import VadOptions

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

ENGINES = ("local", "openai")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AsrConfig:
    model: str | None = None  # embedded id or directory; None = embedded default
    device: str = "auto"
    compute_type: str | None = None
    cpu_threads: int = 0
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    vad: VadOptions = field(default_factory=VadOptions)
    tentative: str = "live"  # the cheap path: "live" (live sources), "on", "off"
    engine: str = "local"  # "local" (Whisper here) or "openai" (a server: the api_* fields)
    api_base: str = ""
    api_model: str = DEFAULT_MODEL
    api_key_env: str = DEFAULT_KEY_ENV
    api_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, a: Any) -> AsrConfig:
        """The config of the settings' ``[asr]`` section (any object with its fields)."""
        from asr.decoder import normalize_language

        return cls(
            model=a.model,
            device=a.device,
            compute_type=None if a.compute_type == "auto" else a.compute_type,
            cpu_threads=a.cpu_threads,
            decode=DecodeOptions(
                language=normalize_language(a.language),
                beam_size=a.beam_size,
                interim_beam_size=a.interim_beam_size,
                vocabulary=tuple(a.vocabulary),
            ),
            streaming=StreamingOptions(min_chunk_s=a.min_chunk_s, tentative_every_s=a.tentative_every_s),
            vad=VadOptions(aggressiveness=a.vad_aggressiveness, end_silence_s=a.end_silence_s),
            tentative=a.tentative,
            engine=getattr(a, "engine", "local"),
            api_base=getattr(a, "api_base", ""),
            api_model=getattr(a, "api_model", DEFAULT_MODEL),
            api_key_env=getattr(a, "api_key_env", DEFAULT_KEY_ENV),
            api_timeout_s=getattr(a, "api_timeout_s", 60.0),
        )


class AsrEngine:
    """The configured engine. ``engine = "openai"`` loads no model: ``model`` and
    ``model_dir`` are None, ``server`` is the :class:`~asr.remote.AsrServer` and
    ``model_id`` reads ``openai:<api_model>@<host>``."""

    def __init__(
        self,
        config: AsrConfig | None = None,
        *,
        cache_dir: Path | None = None,
        progress_factory: Callable[[str, int], Progress] | None = None,
    ) -> None:
        self.config = config or AsrConfig()
        self.server: AsrServer | None = None
        self.model: WhisperModel | None = None
        self.model_dir: Path | None = None
        if self.config.engine not in ENGINES:
            raise ConfigError(f"unknown asr.engine {self.config.engine!r}: use local or openai")
        if self.config.engine == "openai":
            c = self.config
            self.server = AsrServer(ServerOptions(c.api_base, model=c.api_model, api_key_env=c.api_key_env,
                                                  timeout_s=c.api_timeout_s))
            self.choice = ComputeChoice("remote", "server")
            self.model_id = self.server.model_id
            return
        self.choice = choose_compute(self.config.device, self.config.compute_type)
        self.model_dir, self.model_id = resolve_whisper_model(
            self.config.model, cache_dir=cache_dir, progress_factory=progress_factory
        )
        self.model = load_whisper(self.model_dir, self.choice, self.config.cpu_threads)

    @property
    def device(self) -> str:
        return self.choice.device

    @property
    def compute_type(self) -> str:
        return self.choice.compute_type

    def _local_model(self) -> WhisperModel:
        if self.model is None:
            raise ConfigError('asr.engine "openai" has no local Whisper model: use asr.engine = "local" for this')
        return self.model

    def _decode_options(self, vocabulary: tuple[str, ...]) -> DecodeOptions:
        opts = self.config.decode
        if vocabulary:
            words = tuple(dict.fromkeys((*opts.vocabulary, *vocabulary)))
            opts = dataclasses.replace(opts, vocabulary=words)
        return opts

    def decoder(self, vocabulary: tuple[str, ...] = ()) -> WhisperDecoder | None:
        """A decoder on the loaded model; ``vocabulary`` (a template's drug names) is
        added to the configured prompt words for this session only. The openai engine has
        none: it checks that the server answers (a one-line error if not) and returns None."""
        if self.server is not None:
            self.server.check()
            return None
        return WhisperDecoder(self._local_model(), self._decode_options(vocabulary))

    def transcriber(
        self, clock: Callable[[], float] | None = None, vocabulary: tuple[str, ...] = (),
        tentative: bool | None = None,
    ) -> StreamingTranscriber:
        """A transcriber for one session; ``clock`` is given for live sources (the
        microphone, a real-time replay), which get the cheap tentative path when the
        config's ``tentative`` is ``"live"`` (``tentative`` overrides).

        The openai engine's :class:`~asr.remote.RemoteTranscriber` has no tentative path
        (``tentative`` is ignored) and the same interface; it is typed as the streaming
        transcriber because :func:`asr.pipeline.run_stream` names that class."""
        if self.server is not None:
            remote = RemoteTranscriber(self.server, self._decode_options(vocabulary), self.config.vad, clock=clock,
                                       use_vad=self.config.streaming.use_vad)
            return cast(StreamingTranscriber, remote)
        mode = self.config.tentative
        if tentative is None:
            tentative = mode == "on" or (mode == "live" and clock is not None)
        decoder = WhisperDecoder(self._local_model(), self._decode_options(vocabulary))
        return StreamingTranscriber(
            decoder, self.config.streaming, self.config.vad, clock=clock, tentative=tentative,
        )

    def transcribe_offline(self, audio: np.ndarray, beam_size: int | None = None) -> list[Word]:
        """Whole-buffer transcription with faster-whisper's own defaults (the baseline);
        by the server for the openai engine (``beam_size`` is the server's then)."""
        opts = self.config.decode
        if self.server is not None:
            return transcribe_whole(self.server, audio, opts)
        segments, _ = self._local_model().transcribe(
            audio,
            language=opts.language,
            beam_size=beam_size or opts.beam_size,
            word_timestamps=True,
            initial_prompt=", ".join(opts.vocabulary) + "." if opts.vocabulary else None,
        )
        return [
            Word(w.word, float(w.start), float(w.end), float(w.probability))
            for s in segments
            for w in (s.words or ())
        ]
