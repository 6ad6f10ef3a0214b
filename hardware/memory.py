"""Peak resident memory of this process during a block, sampled on a thread."""

from __future__ import annotations

import threading
from types import TracebackType


class PeakRss:
    """``with PeakRss() as mem: ...`` → ``mem.peak_mb`` (the highest RSS seen) and
    ``mem.base_bytes`` (the RSS when it was made). Subclasses sample more in :meth:`_tick`."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.base_bytes = self.peak_bytes = self._proc.memory_info().rss

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self._proc.memory_info().rss)

    def _tick(self, n: int) -> None:
        """Called after the n-th sample on the sampling thread (nothing here)."""

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self._interval):
            self._sample()
            n += 1
            self._tick(n)

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20
