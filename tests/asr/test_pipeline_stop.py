"""Stop ends the recording, not the transcription: audio a live source had already delivered
(queued while the transcriber was busy decoding) still reaches the transcriber."""

from __future__ import annotations

import threading
import time

import numpy as np

from asr.pipeline import run_stream
from asr.sources import GatedSource, PushSource
from asr.types import Transcript


class SlowTranscriber:
    """Takes audio at once but spends 0.5 s per decode, so audio queues up behind it."""

    def __init__(self) -> None:
        self.transcript = Transcript()
        self.samples = 0

    def insert_audio_chunk(self, chunk: object) -> None:
        self.samples += len(chunk.samples)  # type: ignore[attr-defined]

    def process_iter(self) -> list[object]:
        time.sleep(0.5)
        return []

    def finish(self) -> list[object]:
        return []


def test_stop_transcribes_what_the_source_had_already_delivered() -> None:
    source = PushSource()
    gated = GatedSource(source)
    stop = threading.Event()
    transcriber = SlowTranscriber()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (run_stream(gated, lambda clock: transcriber, stop=stop), done.set()))
    thread.start()
    for _ in range(10):
        source.push(np.zeros(1600, np.float32))
    time.sleep(0.2)  # the consumer is inside a decode now
    for _ in range(40):
        source.push(np.zeros(1600, np.float32))
    time.sleep(0.05)
    stop.set()  # the clinician pressed Stop while 4 s of audio waited
    thread.join(30)
    assert done.is_set()
    assert transcriber.samples == source.received == 50 * 1600
