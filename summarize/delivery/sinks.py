"""EPJ sinks: where an approved note goes. They accept only an :class:`ApprovedNote`.

Sinks are chosen by name through :data:`summarize.delivery.registry.SINKS` (a registry, not an
``if`` chain). The clipboard sink ("klipp og lim", what most trials use today) writes through a setter
the caller injects (the desktop app passes Qt's clipboard; tests pass a list), so this
module stays Qt-free. The FHIR DocumentReference sink lives in :mod:`summarize.delivery.fhir`.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from asr.errors import ScribeError
from summarize.consultation.session import ApprovedNote

logger = logging.getLogger(__name__)


class SinkError(ScribeError):
    """Delivery failed; the approved note stays in memory for a retry.

    ``kind`` is a short code for the audit log (never text from the note)."""

    exit_code = 6
    kind = "error"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the sink reports back (no patient data)."""

    sink: str
    delivered_at: datetime
    detail: str
    reference: str | None = None


class EpjSink(Protocol):
    name: str

    def deliver(self, note: ApprovedNote) -> Receipt: ...


def note_html(note: ApprovedNote) -> str:
    """The note as simple HTML (headings and paragraphs) for targets that accept it."""
    parts = [f"<h3>{html.escape(note.title)}</h3>"]
    for title, text in note.sections:
        parts.append(f"<p><b>{html.escape(title)}</b><br>{html.escape(text)}</p>")
    return "\n".join(parts)


class ClipboardSink:
    """Puts the note on the clipboard as plain text (and HTML where the setter takes it).

    ``set_text(plain, html)`` writes the clipboard; ``get_text()`` reads it back so that
    ``clear_after_s`` clears it later only if it still holds this note (the clinician may
    have copied something else meanwhile). ``schedule(seconds, fn)`` runs ``fn`` later
    (the app passes a Qt single-shot timer; the default is a daemon ``threading.Timer``).
    """

    name = "clipboard"

    def __init__(
        self,
        set_text: Callable[[str, str | None], None],
        get_text: Callable[[], str] | None = None,
        *,
        clear_after_s: float = 0,
        schedule: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self._set = set_text
        self._get = get_text
        self.clear_after_s = clear_after_s
        self._schedule = schedule or _thread_timer

    def deliver(self, note: ApprovedNote) -> Receipt:
        if not isinstance(note, ApprovedNote):
            raise SinkError("only an approved note can be delivered")
        try:
            self._set(note.text, note_html(note))
        except Exception as exc:
            raise SinkError(f"the clipboard could not be written ({type(exc).__name__})") from None
        detail = "kopiert til utklippstavlen"
        if self.clear_after_s > 0 and self._get is not None:
            text = note.text
            self._schedule(self.clear_after_s, lambda: self._clear_if_still(text))
            detail += f"; tømmes om {self.clear_after_s:g} s"
        logger.info("note delivered to the clipboard (%d characters)", len(note.text))
        return Receipt(self.name, datetime.now(UTC), detail)

    def _clear_if_still(self, text: str) -> None:
        try:
            if self._get is not None and self._get() == text:
                self._set("", None)
        except Exception as exc:
            logger.warning("clearing the clipboard failed: %s", type(exc).__name__)


def _thread_timer(seconds: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t
