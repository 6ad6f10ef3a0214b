"""Audio capture, voice activity gating and streaming Whisper transcription.

Public API::

    from asr import AsrEngine, AsrConfig, FileSource, SoundDeviceSource, run_stream
"""

from __future__ import annotations

from asr.engine import AsrConfig, AsrEngine
from asr.errors import ScribeError
from asr.pipeline import StreamResult, run_stream
from asr.sources import AudioSource, FileSource, SoundDeviceSource
from asr.streaming import StreamingOptions, StreamingTranscriber
from asr.types import AudioChunk, Segment, Tentative, Transcript, Word

__all__ = [
    "AsrConfig",
    "AsrEngine",
    "AudioChunk",
    "AudioSource",
    "FileSource",
    "ScribeError",
    "Segment",
    "SoundDeviceSource",
    "StreamResult",
    "StreamingOptions",
    "StreamingTranscriber",
    "Tentative",
    "Transcript",
    "Word",
    "run_stream",
]
