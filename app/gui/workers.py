"""Workers: ``QObject``s moved to a ``QThread``, talking to the window by typed signals.

Capture + ASR run in :class:`RecordWorker`; model loading, drafting, delivery and the
end of a session run in :class:`TaskWorker`. Nothing slow runs on the UI thread. A
finished worker and its thread are deleted with ``deleteLater``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

logger = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class TaskWorker(QObject):
    """Runs ``fn(*args)`` once; ``result`` carries its return value, ``failed`` a
    one-line message (never the traceback, which could quote patient text)."""

    result = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__()
        self._fn = fn
        self._args = args

    @Slot()
    def run(self) -> None:
        try:
            out = self._fn(*self._args)
        except Exception as exc:
            logger.warning("background task failed: %s", type(exc).__name__)
            self.failed.emit(_one_line(exc))
        else:
            self.result.emit(out)
        finally:
            self._fn = None  # type: ignore[assignment]  # drop references to session data
            self._args = ()
            self.finished.emit()


class AudioBuffers:
    """The audio and text a recording holds outside the session (the source's decoded
    file, the transcriber's buffer); a plain object, so the session can wipe it after
    the worker's Qt object is gone."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.transcriber: Any = None

    def wipe(self) -> None:
        self.source.wipe()
        if self.transcriber is not None:
            self.transcriber.wipe()
        self.transcriber = None


class RecordWorker(QObject):
    """Audio source → streaming Whisper until Stop (or the source ends or fails).

    ``segment`` carries each committed :class:`asr.types.Segment`, ``tentative`` the greyed
    tail, ``level`` the input level in dBFS, ``finished`` an error line ("" if none) once
    everything buffered was transcribed and the source closed.
    """

    segment = Signal(object)
    tentative = Signal(str)
    level = Signal(float)
    finished = Signal(str)

    def __init__(self, source: Any, make_transcriber: Callable[..., Any]) -> None:
        super().__init__()
        from asr.sources import GatedSource

        self.source = GatedSource(source, on_level=self.level.emit)
        self._make = make_transcriber
        self.stop_event = threading.Event()
        self.buffers = AudioBuffers(self.source)

    def pause(self, paused: bool) -> None:
        (self.source.paused.set if paused else self.source.paused.clear)()

    def stop(self) -> None:
        self.stop_event.set()
        self.source.close()

    def _transcriber_for(self, clock: Any) -> Any:
        self.buffers.transcriber = self._make(clock)
        return self.buffers.transcriber

    @Slot()
    def run(self) -> None:
        from asr.pipeline import run_stream
        from asr.types import Segment

        def on_event(ev: Any) -> None:
            if isinstance(ev, Segment):
                if ev.text.strip():
                    self.segment.emit(ev)
            else:
                self.tentative.emit(ev.text)

        error = ""
        try:
            result = run_stream(self.source, self._transcriber_for, on_event=on_event, stop=self.stop_event)
            if result.error is not None:
                error = _one_line(result.error)
            result.transcript.segments.clear()  # the session holds the segments; no second copy
        except Exception as exc:  # a model or device failure: what was committed is already out
            logger.warning("recording failed: %s", type(exc).__name__)
            error = _one_line(exc)
        self.finished.emit(error)


# Every started thread until its Runner saw it finish: a Runner deleted with its window
# while a worker still runs must not take the QThread with it (Qt aborts the process when
# a running QThread is destroyed).
_STARTED: set[QThread] = set()


class Runner(QObject):
    """Starts workers on their own ``QThread`` and deletes both when the work is done.

    It lives on the UI thread, so ``QThread.finished`` reaches :meth:`_done` there
    (queued); worker results must likewise be connected to bound methods of UI-thread
    objects, never to lambdas (PySide would call those on the worker thread).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[QThread, QObject] = {}

    def start(self, worker: QObject) -> QThread:
        thread = QThread()
        worker.moveToThread(thread)
        thread.started.connect(worker.run)  # type: ignore[attr-defined]
        # direct: quit() is thread-safe, and a queued call would wait for the UI thread,
        # which may itself be waiting for this thread (closing the window)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # type: ignore[attr-defined]
        thread.finished.connect(self._done)
        self._running[thread] = worker
        _STARTED.add(thread)
        thread.start()
        return thread

    @Slot()
    def _done(self) -> None:
        thread = self.sender()
        worker = self._running.pop(thread, None)  # type: ignore[call-overload]
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            _STARTED.discard(thread)  # type: ignore[arg-type]
            thread.deleteLater()

    @property
    def busy(self) -> int:
        return len(self._running)

    def wait_all(self, ms: int = 60_000) -> bool:
        """Wait for every worker (closing the window); True if all ended in time."""
        ok = True
        for thread in list(self._running):
            ok = thread.wait(ms) and ok
        return ok
