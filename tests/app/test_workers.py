"""The event relay: events posted on other threads reach the UI thread in order, as direct
calls (no Python object through a Qt signal), with one ``after`` call per batch."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


def test_events_from_other_threads_arrive_in_order_on_the_ui_thread(qtbot: Any) -> None:
    from PySide6.QtCore import QObject

    from app.gui.workers import EventRelay

    seen: list[tuple[Any, Any, bool]] = []
    batches: list[int] = []
    ui = threading.get_ident()
    owner = QObject()
    relay = EventRelay(lambda tag, ev: seen.append((tag, ev, threading.get_ident() == ui)), owner,
                       interval_ms=10, after=lambda: batches.append(len(seen)))

    def post_many(tag: str) -> None:
        for i in range(200):
            relay.post(tag, i)

    threads = [threading.Thread(target=post_many, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    qtbot.waitUntil(lambda: len(seen) == 400, timeout=5000)
    assert all(on_ui for _, _, on_ui in seen)  # the handler ran on the UI thread only
    for tag in ("a", "b"):  # each thread's events in the order it posted them, none lost
        assert [ev for t, ev, _ in seen if t == tag] == list(range(200))
    assert batches and batches[-1] == 400 and len(batches) < 400  # one "after" per batch, not per event
    del owner
