"""Speech recognition of the microphone test's passage: the recording as the app hears it
(16 kHz mono, :func:`to_16k_mono`) transcribed with the project's streaming ASR and scored
against the reference text (:func:`transcribe_wer`).

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.mic_capture import ANALYSIS_RATE


def transcribe_wer(
    audio16k_mono: np.ndarray,
    reference_text: str,
    transcriber_factory: Callable[..., Any],
    *,
    on_progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[float, str]:
    """Transcribe with the streaming ASR (``transcriber_factory(clock)`` makes a
    :class:`asr.streaming.StreamingTranscriber`, e.g. ``AsrEngine.transcriber``) and return
    ``(WER against reference_text, hypothesis)`` with the project's normalisation."""
    from asr.evaluation import error_rates
    from asr.pipeline import run_stream
    from asr.sources import ArraySource

    audio = np.ascontiguousarray(audio16k_mono, dtype=np.float32)
    duration = max(len(audio) / ANALYSIS_RATE, 1e-9)
    progress = (lambda pos: on_progress(min(1.0, pos / duration))) if on_progress else None
    result = run_stream(ArraySource(audio), transcriber_factory, on_progress=progress, stop=stop)
    try:
        if result.error is not None:
            raise result.error
        hypothesis = result.transcript.text
    finally:
        result.transcript.clear()
    return error_rates(reference_text, hypothesis).wer, hypothesis


def to_16k_mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix to mono and resample to 16 kHz, the way the app's audio path does."""
    from asr.sources import Resampler

    a = np.asarray(audio, dtype=np.float32)
    channels = 1 if a.ndim == 1 else a.shape[1]
    r = Resampler(int(sample_rate), channels)
    out = [r.process(a), r.flush()]
    return np.concatenate(out).astype(np.float32)
