"""An ASR engine: a resolved, checked and loaded Whisper model plus its options.

It creates one :class:`StreamingTranscriber` per session and offers the offline
(whole-file) transcription used as the baseline in benchmarks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.decoder import DecodeOptions, WhisperDecoder
from asr.loader import choose_compute, load_whisper
from asr.models import Progress, resolve_whisper_model
from asr.streaming import StreamingOptions, StreamingTranscriber
from asr.types import Word
from asr.vad import VadOptions

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
        )


class AsrEngine:
    def __init__(
        self,
        config: AsrConfig | None = None,
        *,
        cache_dir: Path | None = None,
        progress_factory: Callable[[str, int], Progress] | None = None,
    ) -> None:
        self.config = config or AsrConfig()
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

    def decoder(self, vocabulary: tuple[str, ...] = ()) -> WhisperDecoder:
        """A decoder on the loaded model; ``vocabulary`` (a template's drug names) is
        added to the configured prompt words for this session only."""
        opts = self.config.decode
        if vocabulary:
            words = tuple(dict.fromkeys((*opts.vocabulary, *vocabulary)))
            opts = dataclasses.replace(opts, vocabulary=words)
        return WhisperDecoder(self.model, opts)

    def transcriber(
        self, clock: Callable[[], float] | None = None, vocabulary: tuple[str, ...] = (),
        tentative: bool | None = None,
    ) -> StreamingTranscriber:
        """A transcriber for one session; ``clock`` is given for live sources (the
        microphone, a real-time replay), which get the cheap tentative path when the
        config's ``tentative`` is ``"live"`` (``tentative`` overrides)."""
        mode = self.config.tentative
        if tentative is None:
            tentative = mode == "on" or (mode == "live" and clock is not None)
        return StreamingTranscriber(
            self.decoder(vocabulary), self.config.streaming, self.config.vad, clock=clock, tentative=tentative,
        )

    def transcribe_offline(self, audio: np.ndarray, beam_size: int | None = None) -> list[Word]:
        """Whole-buffer transcription with faster-whisper's own defaults (the baseline)."""
        opts = self.config.decode
        segments, _ = self.model.transcribe(
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
