"""The edge server's live consultations: one :class:`LiveSession` per phone recording, each a
:class:`~summarize.consultation.consultation.Consultation` on the process's one shared
:class:`~summarize.consultation.engine.Scribe`, fully isolated in memory.

A session outlives its WebSocket: a phone that loses the connection resumes with the session id
and the last acknowledged sample offset (same device only). A session whose phone stays away
longer than the grace period is wiped. :class:`EdgeSessions` admits new consultations only
while Whisper keeps up (a maximum number live, and no live one's audio waiting longer than
``max_backlog_s``), so an extra phone is told "opptatt" instead of slowing everyone down.

Messages to the phone are plain dicts (``docs/edge-protocol.md``); they hold patient text and
are never logged. Log lines carry counts and short session-id prefixes only.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from app.edge.frames import SAMPLE_RATE, AudioIntake
from asr.errors import ScribeError
from asr.sources import PushSource

logger = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
LIVE = ("recording", "paused", "drafting")


class EdgeError(Exception):
    """A refusal for the phone: protocol ``code``, a Norwegian ``message``, a close code."""

    def __init__(self, code: str, message: str, close: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


BUSY = ("Serveren er opptatt: for mange pågående konsultasjoner akkurat nå. Prøv igjen om litt, "
        "eller bruk en arbeidsstasjon.")


def flags_message(consultation: Any) -> dict[str, Any]:
    flags = [{"index": i, **item.flag.to_dict(), "resolved": item.resolution}
             for i, item in enumerate(consultation.flags)]
    return {"type": "flags", "flags": flags, "can_approve": bool(consultation.can_approve)}


def receipt_dict(receipt: Any) -> dict[str, Any]:
    return {"sink": receipt.sink, "delivered_at": receipt.delivered_at.isoformat(timespec="seconds"),
            "detail": receipt.detail, "reference": receipt.reference}


class LiveSession:
    """One consultation recorded on a phone (see the module docstring)."""

    def __init__(self, scribe: Any, template: Any, device: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.id = secrets.token_urlsafe(12)
        self.device_id = device.id
        self.user = device.user
        self.template = template
        self.source = PushSource()
        self.intake = AudioIntake()
        self._clock = clock
        self._lock = threading.RLock()
        self._listener: Listener | None = None
        self.detached_at: float | None = clock()
        self.state = "recording"
        self.draft_message: dict[str, Any] | None = None
        self.ended = False
        self._transcribed_s = 0.0  # audio the transcriber has taken in (its progress)
        self.consultation = scribe.consultation(template, self.source, on_event=self._on_event,
                                                on_progress=self._on_progress)
        self.consultation.start()

    def _on_progress(self, audio_s: float) -> None:
        self._transcribed_s = audio_s

    # -- the phone's connection -------------------------------------------------------------
    def attach(self, listener: Listener) -> Listener | None:
        """A (re)connected phone's socket gets the events from now on; the old one's listener
        (to close it) is returned."""
        with self._lock:
            old, self._listener = self._listener, listener
            self.detached_at = None
            return old

    def detach(self, listener: Listener) -> None:
        with self._lock:
            if self._listener is listener:
                self._listener = None
                self.detached_at = self._clock()

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            listener = self._listener
        if listener is not None:
            listener(message)

    def _on_event(self, ev: Any) -> None:
        from summarize.consultation.events import Committed, RecordingEnded, Relabelled, Tentative

        if isinstance(ev, Committed):
            self.send({**ev.segment.to_dict(), "smalltalk": ev.dropped})
        elif isinstance(ev, Tentative):
            self.send(ev.to_dict())
        elif isinstance(ev, Relabelled):
            self.send({"type": "speakers", "changes": [{"id": i, "speaker": r, "speaker_id": v}
                                                       for i, (r, v) in sorted(ev.labels.items())]})
        elif isinstance(ev, RecordingEnded) and ev.error:
            self.send({"type": "error", "code": "recording", "message": f"Opptaket stoppet: {ev.error}"})

    def ready_message(self) -> dict[str, Any]:
        """The answer to ``hello``: where to resume, and the whole committed transcript."""
        segments, filtered = self.consultation.transcript_snapshot()
        reasons = {d.id: d.reason for d in filtered.dropped} if filtered is not None else {}
        return {"type": "ready", "session": self.id, "resume_from": self.intake.expected,
                "template": {"id": self.template.id, "title": self.template.title}, "state": self.state,
                "segments": [{**s.to_dict(), "smalltalk": reasons.get(s.id, "")} for s in segments]}

    # -- audio ----------------------------------------------------------------------------
    def take_audio(self, frame: Any) -> int:
        """Take a frame's new samples (resends dropped); the next expected offset."""
        with self._lock:
            if self.state not in ("recording", "paused"):
                raise EdgeError("not_recording", "Opptaket er stoppet; lyden tas ikke imot.")
            samples = self.intake.take(frame)
            if len(samples):
                self.source.push(samples)
            return self.intake.expected

    @property
    def backlog_s(self) -> float:
        """Seconds of this phone's audio that Whisper has not taken in yet (the pipeline takes
        audio off the source at once, so the source's own queue does not show it)."""
        if self.state not in ("recording", "paused", "drafting"):
            return 0.0
        return max(0.0, self.source.received / SAMPLE_RATE - self._transcribed_s)

    # -- the review -------------------------------------------------------------------------
    def pause(self, paused: bool) -> None:
        with self._lock:
            if self.state in ("recording", "paused"):
                self.state = "paused" if paused else "recording"
        self.send({"type": "state", "state": self.state})

    def preview(self) -> dict[str, Any] | None:
        if self.state not in ("recording", "paused"):
            return None
        draft = self.consultation.preview()
        if draft is None:
            return None
        return {"type": "preview", "sections": [{"id": s.id, "title": s.title, "text": s.text} for s in draft.sections]}

    def stop_and_draft(self) -> dict[str, Any]:
        """Stop the recording, transcribe what is left, draft (slow: the LLM; off the event loop)."""
        from summarize.draft.note import note_json

        with self._lock:
            if self.state in ("drafting", "review"):
                if self.draft_message is not None:
                    return self.draft_message
                raise EdgeError("not_ready", "Utkastet lages allerede.")
            if self.state not in ("recording", "paused"):
                raise EdgeError("not_ready", "Konsultasjonen er avsluttet.")
            self.state = "drafting"
        self.send({"type": "state", "state": "drafting"})
        c = self.consultation
        # End the phone's audio, not the transcription: every sample already taken (and
        # acknowledged) is still transcribed before the draft (Consultation.stop would drop what
        # waits in the pipeline's queue, as a microphone's Stop does).
        self.source.close()
        t0 = time.perf_counter()
        result = c.draft()
        models = c.scribe.models
        timing = {"draft_s": result.timing.get("draft_s"), "stop_to_draft_s": round(time.perf_counter() - t0, 3),
                  "tokens_per_s": result.timing.get("tokens_per_s")}
        message = {"type": "draft", **note_json(result, models, timing), "speakers": c.speaker_summary(),
                   "term_corrections": c.term_corrections}  # as `scribe note --json` prints it
        flags = flags_message(c)
        message["flags"] = flags["flags"]
        message["can_approve"] = flags["can_approve"]
        with self._lock:
            if self.ended:
                raise EdgeError("unknown_session", "Konsultasjonen er avsluttet.")
            self.state = "review"
            self.draft_message = message
        return message

    def _review(self) -> None:
        if self.state != "review":
            raise EdgeError("not_ready", "Det finnes ikke noe utkast å redigere ennå.")

    def edit_section(self, section: str, text: str) -> dict[str, Any]:
        with self._lock:
            self._review()
            try:
                self.consultation.edit_section(section, text)
            except (KeyError, ValueError, ScribeError) as exc:
                raise EdgeError("bad_message", f"Avsnittet kan ikke endres: {str(exc)[:80]}") from None
            if self.draft_message is not None:
                for s in self.draft_message["sections"]:
                    if s["id"] == section:
                        s["text"] = text
            return self._flags()

    def resolve_flag(self, index: int, how: str) -> dict[str, Any]:
        with self._lock:
            self._review()
            if not 0 <= index < len(self.consultation.flags):
                raise EdgeError("bad_message", "Ukjent merknad.")
            self.consultation.resolve_flag(index, how)
            return self._flags()

    def _flags(self) -> dict[str, Any]:
        message = flags_message(self.consultation)
        if self.draft_message is not None:
            self.draft_message["flags"] = message["flags"]
            self.draft_message["can_approve"] = message["can_approve"]
        return message

    def approve(self, sink: Any, on_delivered: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Approve and deliver (slow: the EPJ; off the event loop). A refused delivery keeps
        the approved note here for another try. ``on_delivered`` gets the ``delivered``
        message before the phone does."""
        from summarize.consultation.session import SessionError
        from summarize.delivery.sinks import SinkError

        c = self.consultation
        with self._lock:
            self._review()
            if c.delivery is None:
                if not c.can_approve:
                    raise EdgeError("flags_open", "Alle merknader må håndteres før du kan godkjenne.")
                try:
                    c.approve(sink)
                except (SessionError, ScribeError) as exc:
                    raise EdgeError("not_ready", f"Kan ikke godkjenne: {str(exc).splitlines()[0][:120]}") from None
            self.state = "approving"
        try:
            receipt = c.send(sink)
        except SinkError as exc:
            with self._lock:
                self.state = "review"
            raise EdgeError("delivery", f"EPJ tok ikke imot notatet ({str(exc).splitlines()[0][:120]}). "
                                        "Det godkjente notatet er beholdt; prøv igjen.") from None
        message = {"type": "delivered", "receipt": receipt_dict(receipt)}
        if on_delivered is not None:
            on_delivered(message)
        self.send(message)  # to the phone's current connection (it may have reconnected meanwhile)
        self.end()
        return message

    # -- the end ----------------------------------------------------------------------------
    def end(self, how: str = "discarded") -> None:
        """Audit line and wipe (idempotent); the capture thread stops."""
        with self._lock:
            if self.ended:
                return
            self.ended = True
            self.state = "ended"
            self.draft_message = None
            self._listener = None
        self.source.wipe()
        self.consultation.end(how, wait=False)
        threading.Thread(target=self.consultation.join, name="edge-wipe", daemon=True).start()


class EdgeSessions:
    """All live sessions of the server, admission control and the grace period."""

    def __init__(self, scribe: Any, templates: dict[str, Any], *, max_live: int, max_backlog_s: float,
                 grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.scribe = scribe
        self.templates = templates
        self.max_live = max_live
        self.max_backlog_s = max_backlog_s
        self.grace_s = grace_s
        self._clock = clock
        self._sessions: dict[str, LiveSession] = {}
        # what became of a session that ended (delivered: the receipt, which holds no patient
        # data; or discarded), for a phone that lost the connection just then: by id, for the grace period
        self._finished: dict[str, tuple[str, dict[str, Any], float]] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def live(self) -> list[LiveSession]:
        with self._lock:
            return [s for s in self._sessions.values() if s.state in LIVE]

    def new(self, device: Any, template_id: str | None) -> LiveSession:
        """A new consultation for ``device``, or ``busy``."""
        template = self.templates.get(template_id or "") if template_id else None
        if template is None:
            raise EdgeError("bad_hello", "Ukjent notatmal.")
        with self._lock:
            live = [s for s in self._sessions.values() if s.state in LIVE]
            behind = max((s.backlog_s for s in live), default=0.0)
            if len(live) >= self.max_live or behind > self.max_backlog_s:
                self.refused += 1
                logger.info("consultation refused as busy (%d live, longest backlog %.1f s)", len(live), behind)
                raise EdgeError("busy", BUSY, close=4429)
            session = LiveSession(self.scribe, template, device, clock=self._clock)
            self._sessions[session.id] = session
        logger.info("consultation %s started (%d live)", session.id[:4], len(live) + 1)
        return session

    def get(self, session_id: Any, device: Any) -> LiveSession:
        """A device's own session to resume; another device's is refused like an unknown one
        would not be: ``not_yours`` (and nothing about it is told)."""
        with self._lock:
            session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.ended:
            raise EdgeError("unknown_session", "Konsultasjonen finnes ikke lenger (telefonen var borte for lenge, "
                                               "eller den er levert eller forkastet).", close=4410)
        if session.device_id != device.id:
            raise EdgeError("not_yours", "Denne konsultasjonen hører til en annen telefon.", close=4403)
        return session

    def forget(self, session: LiveSession, final: dict[str, Any] | None = None) -> None:
        """Drop an ended session; ``final`` (its ``delivered`` or ``discarded`` message) is told
        to its phone if it comes back within the grace period."""
        with self._lock:
            self._sessions.pop(session.id, None)
            if final is not None:
                self._finished[session.id] = (session.device_id, final, self._clock())

    def finished(self, session_id: Any, device: Any) -> dict[str, Any] | None:
        """The final message of this device's session that ended (None if there is none)."""
        with self._lock:
            entry = self._finished.get(session_id) if isinstance(session_id, str) else None
        return entry[1] if entry is not None and entry[0] == device.id else None

    def end(self, session: LiveSession, how: str = "discarded", final: dict[str, Any] | None = None) -> None:
        session.end(how)
        self.forget(session, final)

    def reap(self) -> int:
        """Wipe sessions whose phone stayed away longer than the grace period; how many."""
        now = self._clock()
        with self._lock:
            gone = [s for s in self._sessions.values()
                    if s.ended or (s.detached_at is not None and now - s.detached_at > self.grace_s)]
            self._finished = {k: v for k, v in self._finished.items() if now - v[2] <= self.grace_s}
        for s in gone:
            if not s.ended:
                logger.info("consultation %s wiped: the phone stayed away longer than %.0f s", s.id[:4], self.grace_s)
            self.end(s)
        return len(gone)

    def revoke_device(self, device_id: str) -> int:
        with self._lock:
            gone = [s for s in self._sessions.values() if s.device_id == device_id]
            self._finished = {k: v for k, v in self._finished.items() if v[0] != device_id}
        for s in gone:
            self.end(s)
        return len(gone)

    def close(self) -> None:
        with self._lock:
            gone = list(self._sessions.values())
            self._finished.clear()
        for s in gone:
            self.end(s)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            sessions = list(self._sessions.values())
        return {"sessions": len(sessions), "live": sum(s.state in LIVE for s in sessions),
                "backlog_s": round(max((s.backlog_s for s in sessions), default=0.0), 2), "refused": self.refused}
