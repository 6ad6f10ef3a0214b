"""Drive an :class:`AudioSource` through a :class:`StreamingTranscriber`.

Live sources (microphone, real-time replay) are read on a capture thread into an
in-memory queue so capture never waits for a decode; the consumer drains whatever
arrived, then lets the transcriber decide whether to decode. Offline sources are fed
chunk by chunk, as if live but without waiting.

The session clock is the wall clock for live sources (``emitted_at - end`` is then
the commit latency) and the audio clock (seconds of audio consumed) otherwise.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asr.errors import ScribeError
from asr.sources import AudioSource
from asr.streaming import Event, StreamingTranscriber
from asr.types import AudioChunk, Segment, Transcript

logger = logging.getLogger(__name__)

_END = object()


@dataclass(slots=True)
class StreamResult:
    transcript: Transcript
    audio_s: float = 0.0
    processing_s: float = 0.0
    wall_s: float = 0.0
    clock: str = "audio"
    interrupted: bool = False
    error: ScribeError | None = None
    latencies: list[float] = field(default_factory=list)
    paths: dict[str, dict[str, float]] = field(default_factory=dict)  # decodes and seconds per path

    @property
    def rtf(self) -> float:
        return self.processing_s / self.audio_s if self.audio_s > 0 else 0.0

    def path_rtf(self, name: str) -> float:
        """Decode time of one path (``accurate`` or ``tentative``) per second of audio."""
        seconds = self.paths.get(name, {}).get("seconds", 0.0)
        return seconds / self.audio_s if self.audio_s > 0 else 0.0


class WallClock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


def run_stream(
    source: AudioSource,
    make_transcriber: Callable[[Callable[[], float] | None], StreamingTranscriber],
    on_event: Callable[[Event], None] = lambda e: None,
    on_progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> StreamResult:
    """Run until the source ends, ``stop`` is set, Ctrl-C, or the source fails.

    A failing source (device unplugged, truncated file) does not lose text: what was
    buffered is decoded and committed, and the error is returned in the result.
    """
    clock = WallClock() if source.live else None
    transcriber = make_transcriber(clock)
    result = StreamResult(transcript=transcriber.transcript, clock="wall" if clock else "audio")
    wall = WallClock()
    process_time = 0.0

    def emit(events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, Segment):
                result.latencies.append(ev.emitted_at - ev.end)
            on_event(ev)

    def step(chunks: list[AudioChunk]) -> None:
        nonlocal process_time
        t0 = time.perf_counter()
        for c in chunks:
            transcriber.insert_audio_chunk(c)
            result.audio_s = max(result.audio_s, c.end)
        events = transcriber.process_iter()
        process_time += time.perf_counter() - t0
        emit(events)
        if on_progress:
            on_progress(result.audio_s)

    try:
        if source.live:
            _run_live(source, step, stop)
        else:
            for chunk in source.chunks():
                if stop is not None and stop.is_set():
                    break
                step([chunk])
    except KeyboardInterrupt:
        result.interrupted = True
        logger.info("interrupted: flushing what was said")
    except ScribeError as exc:
        result.error = exc
    finally:
        source.close()
    t0 = time.perf_counter()
    final = transcriber.finish()
    process_time += time.perf_counter() - t0
    emit(list(final))
    if result.error is None:
        result.error = getattr(source, "problem", None)
    result.processing_s = process_time
    result.wall_s = wall()
    for name in ("accurate", "tentative"):
        stats = getattr(transcriber, name, None)
        if stats is not None and hasattr(stats, "calls"):
            result.paths[name] = {"decodes": stats.calls, "seconds": stats.seconds}
    return result


STOP_DRAIN_S = 10.0  # after Stop, how long the source may take to hand over what it had


def _run_live(
    source: AudioSource,
    step: Callable[[list[AudioChunk]], None],
    stop: threading.Event | None,
) -> None:
    q: queue.Queue[object] = queue.Queue()

    def capture() -> None:
        try:
            for chunk in source.chunks():
                q.put(chunk)
        except BaseException as exc:  # handed to the consumer thread
            q.put(exc)
        finally:
            q.put(_END)

    thread = threading.Thread(target=capture, name="scribe-capture", daemon=True)
    thread.start()
    try:
        done = False
        stopped_at: float | None = None
        while not done:
            if stop is not None and stop.is_set() and stopped_at is None:
                # Stop ends the recording, not the transcription: the source is closed, and what
                # it had already delivered (queued during the last decode) is still transcribed.
                stopped_at = time.monotonic()
                source.close()
            if stopped_at is not None and time.monotonic() - stopped_at > STOP_DRAIN_S:
                logger.warning("the audio source did not end %.0f s after Stop", STOP_DRAIN_S)
                break
            try:
                items = [q.get(timeout=0.2)]
            except queue.Empty:
                continue
            while True:  # drain what else arrived during the last decode
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            chunks: list[AudioChunk] = []
            error: BaseException | None = None
            for item in items:
                if item is _END:
                    done = True
                elif isinstance(item, BaseException):
                    error = item
                elif isinstance(item, AudioChunk):
                    chunks.append(item)
            if chunks:
                step(chunks)
            if error is not None:
                raise error
    finally:
        source.close()
        thread.join(timeout=5)
