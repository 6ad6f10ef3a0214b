"""Workers: ``QObject``s moved to a ``QThread``, talking to the window by typed signals.

Capture + ASR run on the consultation's own thread (:mod:`summarize.consultation`), whose
events reach the window through :class:`EventRelay`; model loading, drafting, delivery and
the end of a session run in :class:`TaskWorker`. Nothing slow runs on the UI thread. A
finished worker and its thread are deleted with ``deleteLater``.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from asr.errors import first_line

logger = logging.getLogger(__name__)


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
            self.failed.emit(first_line(exc))
        else:
            self.result.emit(out)
        finally:
            self._fn = None  # type: ignore[assignment]  # drop references to session data
            self._args = ()
            self.finished.emit()


class EventRelay(QObject):
    """Hands a consultation's events to the UI thread: ``post(tag, event)`` may be called on
    any thread (the capture thread, a worker); a timer on this object's thread drains the
    queue every ``interval_ms`` and calls ``handler(tag, event)`` there, in order, then
    ``after()`` once per batch.

    A queue and a direct call rather than a signal: passing these event objects through a
    ``Signal(object)`` (one per audio chunk for the level meter) corrupted the reference count
    of ``True``/``False`` in PySide6 6.12, and the process aborted at exit (found with gdb:
    ``bool_dealloc`` while clearing a ``_DataclassParams``; gone without the level events and
    with this relay). No Python object crosses Qt here."""

    def __init__(self, handler: Callable[[Any, Any], None], parent: QObject | None = None,
                 interval_ms: int = 40, after: Callable[[], None] | None = None) -> None:
        super().__init__(parent)
        self._handler = handler
        self._after = after  # called once after each non-empty batch (e.g. one redraw)
        self._queue: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def post(self, tag: Any, event: Any) -> None:
        self._queue.put((tag, event))

    @Slot()
    def drain(self) -> None:
        handled = False
        while True:
            try:
                tag, event = self._queue.get_nowait()
            except queue.Empty:
                break
            self._handler(tag, event)
            handled = True
        if handled and self._after is not None:
            self._after()


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
