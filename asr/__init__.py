"""Audio capture, voice activity gating and streaming Whisper transcription.

Public API::

    from asr import AsrEngine, AsrConfig, FileSource, SoundDeviceSource, run_stream
"""

from __future__ import annotations

import os as _os

# OpenMP threads that spin while they wait (libgomp's default, used by llama.cpp and
# CTranslate2) starve everything else on a 2-core machine: two llama.cpp decodes side by
# side took 174 s instead of 4.3 s (measured). Waiting threads sleep instead; one decode
# alone is about 10 % slower (2.43 s vs 2.19 s). Set before the native libraries load; a
# value already in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# CTranslate2's oneDNN keeps a compiled primitive for every tensor shape it meets (1024 by
# default). Streaming decodes buffers of ever new lengths, so the cache grew the process by
# 395 MB over a 30-minute consultation (measured: 712 MB after 5 minutes, 1107 MB after 30).
# With 32 the memory stays flat (a fast replay: 371 MB after 2 minutes, 372 MB after 6; the
# 30-minute real-time run: +13.5 MB from minute 5 to 30).
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")

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
