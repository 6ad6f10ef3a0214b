"""One consultation's whole life on a shared :class:`~summarize.consultation.engine.Scribe`:
audio source → streaming Whisper → small-talk filter → (live) note → review → approval →
sink → receipt, then the audit line and the wipe.

It owns everything about the patient: the review :class:`~summarize.consultation.session.Session`
(transcript, edits, draft, flags), the incremental note, the audio source's and the
transcriber's buffers, and the delivery in flight. :meth:`Consultation.end` (or
:meth:`discard`) writes the PHI-free audit line and wipes all of it in place.

Threads: :meth:`start` runs capture and transcription on a thread of its own and emits
:class:`~summarize.consultation.events.Committed` / ``Tentative`` / ``Level`` /
``RecordingEnded`` from there; :meth:`record` does the same on the caller's thread (a CLI
that wants Ctrl-C). The review methods may be called from any one other thread; a lock keeps
the transcript consistent while the capture thread adds to it. :meth:`draft` and
:meth:`approve` are slow (the LLM, the network): a GUI calls them on a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from asr.errors import first_line
from summarize.consultation.events import (
    Committed,
    Delivered,
    Drafted,
    Ended,
    Level,
    RecordingEnded,
    Relabelled,
    Tentative,
)
from summarize.consultation.session import Session, SessionError, State
from summarize.types import Utterance

logger = logging.getLogger(__name__)

EventSink = Callable[[Any], None]


class Consultation:
    """See the module docstring. Create it with :meth:`Scribe.consultation`."""

    def __init__(self, scribe: Any, template: Any, source: Any = None, *, on_event: EventSink | None = None,
                 live: bool = True, clock: Callable[[], float] = time.monotonic,
                 on_progress: Callable[[float], None] | None = None, speakers: bool = True) -> None:
        from summarize.draft.smalltalk import SmallTalkFilter

        self.scribe = scribe
        self.template = template
        self.session = Session(template, clock=clock)
        self.smalltalk = SmallTalkFilter()
        self.live = live and template is not None
        self.note: Any = None
        if self.live:
            from summarize.draft.note import IncrementalNote

            self.note = IncrementalNote(template, scribe.llm, smalltalk=self.smalltalk,
                                        options=scribe.draft_options())
        self.delivery: Any = None
        self.stream: Any = None  # the capture's StreamResult (timings; its transcript is emptied)
        self.recording_error = ""
        self.audio_problem = ""  # a cut recording, said as a flag in the draft
        self._source = source
        self._gated: Any = None
        if source is not None:
            from asr.sources import GatedSource

            self._gated = GatedSource(source, on_level=lambda dbfs: self._emit(Level(dbfs)))
        self._transcriber: Any = None
        # who said it (roles from the voices): only for audio, when the engine has the encoder
        tracker = getattr(scribe, "speaker_tracker", None)
        self.speakers: Any = tracker(template) if tracker is not None and source is not None and speakers else None
        self._relabels = 0
        self.term_corrections = 0  # misheard drug names and terms corrected (a count, no words)
        self._corrector: Any = None
        self._emit_to = on_event or (lambda ev: None)
        self._progress = on_progress
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recorded = threading.Event()
        self._lock = threading.RLock()
        self._ended = False
        self._failure: BaseException | None = None
        self.session.on_wipe(self._wipe_buffers)

    # -- identity and state -------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.session.id

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def audio_paused(self) -> bool:
        """True while the microphone's audio is dropped (Pause)."""
        return self._gated is not None and self._gated.paused.is_set()

    @property
    def ended(self) -> bool:
        return self._ended

    def _emit(self, event: Any) -> None:
        try:
            self._emit_to(event)
        except Exception as exc:  # a front end's bug must not stop the transcription
            logger.warning("event handler failed: %s", type(exc).__name__)

    # -- recording ------------------------------------------------------------------------
    def start(self, background: bool = True) -> None:
        """Start recording. With an audio source, capture + ASR run on a thread of their own
        (``background``), or on the thread that calls :meth:`capture` (a GUI's worker thread)."""
        with self._lock:
            self.session.start()
        if self._source is not None and background:
            self._thread = threading.Thread(target=self.capture, name=f"consultation-{self.id[:8]}", daemon=True)
            self._thread.start()

    def record(self) -> None:
        """Start and record on the calling thread until the source ends, :meth:`stop` is
        called from elsewhere, or Ctrl-C (which ends the recording, not the program)."""
        self.start(background=False)
        self.capture()
        if self._failure is not None:  # on the caller's thread a model failure is the caller's
            failure, self._failure = self._failure, None
            raise failure

    def pause(self) -> None:
        with self._lock:
            self.session.pause()
        if self._gated is not None:
            self._gated.paused.set()

    def resume(self) -> None:
        with self._lock:
            self.session.resume()
        if self._gated is not None:
            self._gated.paused.clear()

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        """Stop recording: what was said is still transcribed and committed, then
        :class:`RecordingEnded` follows. ``wait``: return only after that."""
        with self._lock:
            if self.session.state in (State.RECORDING, State.PAUSED):
                self.session.stop()
        self._stop.set()
        if self._gated is not None:
            self._gated.close()
        if wait:
            self.wait_recorded(timeout)

    def wait_recorded(self, timeout: float | None = None) -> bool:
        """Wait until capture and transcription ended; True if they did."""
        if self._source is None:
            return True
        return self._recorded.wait(timeout)

    def _make_transcriber(self, clock: Callable[[], float] | None) -> Any:
        vocabulary = tuple(getattr(self.template, "vocabulary", ()) or ())
        self._transcriber = self.scribe.transcriber_factory(vocabulary, self.speakers)(clock)
        return self._transcriber

    def capture(self) -> None:
        """Capture and transcribe until the source ends or :meth:`stop` (after ``start(background=False)``)."""
        from asr.pipeline import run_stream
        from asr.speakers.stream import SpeakersChanged
        from asr.types import Segment

        assert self._gated is not None

        def on_asr(ev: Any) -> None:
            if isinstance(ev, Segment):
                if ev.text.strip():
                    self.add_segment(self._correct_terms(ev))
            elif isinstance(ev, SpeakersChanged):
                self._set_speakers(ev.labels, by_clinician=False)
            elif not self._ended:
                with self._lock:
                    if self.session.state in (State.RECORDING, State.PAUSED, State.DRAFTING):
                        self.session.set_tentative(ev.text)
                self._emit(Tentative(ev.text, getattr(ev, "start", 0.0), getattr(ev, "end", 0.0),
                                     getattr(ev, "emitted_at", 0.0)))

        error = ""
        try:
            result = run_stream(self._gated, self._make_transcriber, on_event=on_asr, on_progress=self._progress,
                                stop=self._stop)
            result.transcript.segments.clear()  # the session holds the segments; no second copy
            self.stream = result
            if result.error is not None:
                error = first_line(result.error)
                self.audio_problem = error
            with self._lock:
                if not self._ended and not self.session.audio_s:
                    self.session.audio_s = result.audio_s
        except Exception as exc:  # a model or device failure: what was committed is already in
            logger.warning("recording failed: %s", type(exc).__name__)
            error = first_line(exc)
            self._failure = exc
        self.recording_error = error
        with self._lock:
            if not self._ended and self.session.state in (State.RECORDING, State.PAUSED):
                self.session.stop()  # the source ended by itself (file, device lost)
            if not self._ended:
                self.session.set_tentative("")
        if self._ended:  # wiped while the last words were decoded: wipe what they left
            self._wipe_buffers()
        self._recorded.set()
        self._emit(RecordingEnded(error))

    # -- the transcript -------------------------------------------------------------------
    def add_segment(self, segment: Any) -> None:
        """A committed segment (from the transcriber, or fed by the caller)."""
        with self._lock:
            if self._ended:
                return
            self.session.add_segment(segment)
            if segment.speaker_id is not None:
                self._count_speakers()
            filtered = self.session.filter(self.smalltalk)
            if self.note is not None:
                self.note.update(self.session.utterances(), self.session.restored)
            reason = next((d.reason for d in filtered.dropped if d.id == segment.id), "")
        self._emit(Committed(segment, reason))

    def _correct_terms(self, segment: Any) -> Any:
        """A committed segment with misheard drug names and template terms corrected
        (``[asr] correct_terms``; see :mod:`summarize.grounding.asr_correction`)."""
        asr_settings = getattr(getattr(self.scribe, "settings", None), "asr", None)
        if not getattr(asr_settings, "correct_terms", True):
            return segment
        if self._corrector is None:
            from summarize.grounding.asr_correction import TermCorrector

            vocabulary = (*(getattr(self.template, "vocabulary", ()) or ()), *getattr(asr_settings, "vocabulary", ()))
            self._corrector = TermCorrector(vocabulary)
        corrected, changes = self._corrector.correct_segment(segment)
        self.term_corrections += len(changes)
        return corrected

    def add_utterances(self, utterances: Sequence[Utterance]) -> None:
        """A transcript that came as text (a file, a benchmark): its utterances, in order,
        with their speakers; an utterance without times keeps its place."""
        from asr.types import Segment

        for i, u in enumerate(utterances):
            start = u.start if u.start is not None else float(i)
            end = u.end if u.end is not None else start
            self.add_segment(Segment(u.id, start, end, u.text, tuple(u.words or ()), end, u.speaker))

    def utterances(self) -> list[Utterance]:
        with self._lock:
            return self.session.utterances()

    @property
    def segments(self) -> list[Any]:
        return self.session.segments

    @property
    def filtered(self) -> Any:
        return self.session.filtered

    def transcript_snapshot(self) -> tuple[list[Any], Any]:
        """The committed segments and the small-talk filter's result, consistent with each
        other (a phone that reconnects gets both)."""
        with self._lock:
            return list(self.session.segments), self.session.filtered

    def _refilter(self) -> None:
        self.session.filter(self.smalltalk)
        if self.note is not None and self.session.state in (State.RECORDING, State.PAUSED):
            self.note.update(self.session.utterances(), self.session.restored)

    def edit_segment(self, segment_id: int, text: str) -> None:
        with self._lock:
            self.session.edit_segment(segment_id, text)
            self._refilter()

    def delete_segment(self, segment_id: int) -> None:
        with self._lock:
            self.session.delete_segment(segment_id)
            self._refilter()

    def restore(self, segment_id: int) -> None:
        """Put a segment the small-talk filter dropped back into the note (or undo a delete)."""
        with self._lock:
            self.session.restore(segment_id)
            self._refilter()

    # -- who said it --------------------------------------------------------------------------
    def relabel(self, segment_id: int | None = None, *, voice_id: int | None = None, role: str | None) -> list[int]:
        """The clinician says who spoke: one line (``segment_id``) or every line of a voice
        (``voice_id``, also its later lines). ``role``: "lege", "pasient", "pårørende" or None.
        Returns the segment ids that changed; the live note (or, after Stop, the next
        :meth:`redraft`) drafts only those again."""
        from asr.speakers.roles import ROLES

        if role is not None and role not in ROLES:
            raise SessionError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        if self.speakers is not None:
            labels = self.speakers.relabel(segment_id=segment_id, voice_id=voice_id, role=role)
        else:  # a labelled transcript, or speakers off: the session's own segments
            with self._lock:
                labels = {s.id: (role, s.speaker_id) for s in self.session.segments
                          if (segment_id is not None and s.id == segment_id)
                          or (voice_id is not None and s.speaker_id == voice_id)}
        self._relabels += 1
        return self._set_speakers(labels, by_clinician=True)

    def _set_speakers(self, labels: dict[int, Any], *, by_clinician: bool) -> list[int]:
        with self._lock:
            if self._ended:
                return []
            changed = self.session.set_speakers(labels)
            if changed:
                self._refilter()
            self._count_speakers()
        if changed:
            self._emit(Relabelled({i: labels[i] for i in changed}, by_clinician))
        return changed

    def _count_speakers(self) -> None:
        voices = {s.speaker_id for s in self.session.segments if s.speaker_id is not None}
        counts = {"voices": len(voices), "relabels": self._relabels}
        if self.speakers is not None and self.speakers.profile is not None:
            counts["profile"] = 1
        self.session.speaker_counts = counts if voices or self._relabels else {}

    @property
    def speaker_method(self) -> str | None:
        """How the roles were assigned: "profile", "behaviour" (no profile: who asks and
        advises), "labelled" (a transcript with speakers) or None."""
        if self.speakers is not None:
            method = self.speakers.assignment.method
            return None if method == "none" else method
        with self._lock:
            return "labelled" if any(s.speaker for s in self.session.segments) else None

    def speaker_summary(self) -> dict[str, Any]:
        """What the note JSON says of the roles: how they were assigned (automatically from
        the voices, or as labelled), how many voices, how sure, and lines per role."""
        method = self.speaker_method
        with self._lock:
            by_role: dict[str, int] = {}
            for seg in self.session.segments:
                key = seg.speaker or "ukjent"
                by_role[key] = by_role.get(key, 0) + 1
            voices = len({s.speaker_id for s in self.session.segments if s.speaker_id is not None})
        out: dict[str, Any] = {"method": method, "automatic": method in ("profile", "behaviour"),
                               "voices": voices, "lines_by_role": by_role, "relabels": self._relabels}
        if self.speakers is not None and method is not None:
            out["confidence"] = round(float(self.speakers.assignment.confidence), 2)
        return out

    # -- the draft ------------------------------------------------------------------------
    def preview(self) -> Any:
        """The draft so far while recording (only what the background drafting finished)."""
        with self._lock:
            if self.note is None or self._ended or self.session.state not in (State.RECORDING, State.PAUSED):
                return None
            utterances, restored = self.session.utterances(), frozenset(self.session.restored)
        return self.note.preview(utterances, restored)

    def draft(self, on_progress: Callable[[str], None] | None = None) -> Any:
        """Draft (what is left of) the note, verify it, and open the review: the ``NoteResult``.

        Slow (the LLM): call it off a UI thread. Recording must have stopped."""
        from summarize.draft.note import make_note
        from summarize.types import Flag

        if self.template is None:
            raise SessionError("this consultation has no template: nothing to draft")
        self.wait_recorded()
        with self._lock:
            if self.session.state in (State.IDLE, State.RECORDING, State.PAUSED):
                self.session.stop()
            self._refilter()
            utterances, restored = self.session.utterances(), frozenset(self.session.restored)
        t0 = time.perf_counter()
        if self.note is not None:
            result = self.note.finish(utterances, restored)
        else:
            result = make_note(utterances, self.template, self.scribe.llm, smalltalk=self.smalltalk,
                               options=self.scribe.draft_options(), on_progress=on_progress)
        seconds = time.perf_counter() - t0
        if self.audio_problem:
            result.draft.flags.insert(0, Flag("truncated_audio", truncated_text(self.session.audio_s)))
        with self._lock:
            if self._ended:
                raise SessionError("the consultation ended while it was drafted")
            self.session.set_draft(result.draft, result.filtered)
        self._emit(Drafted(result, seconds))
        return result

    def redraft(self, on_progress: Callable[[str], None] | None = None) -> Any:
        """After transcript changes in review: draft again (only what changed, when live)."""
        with self._lock:
            self.session.redraft()
        return self.draft(on_progress)

    def edit_section(self, section_id: str, text: str) -> None:
        with self._lock:
            self.session.edit_section(section_id, text)

    def resolve_flag(self, index: int, how: str = "accepted") -> None:
        with self._lock:
            self.session.resolve_flag(index, how)

    @property
    def flags(self) -> list[Any]:
        return self.session.flags

    @property
    def can_approve(self) -> bool:
        return self.session.can_approve

    # -- approval and delivery --------------------------------------------------------------
    def approve(self, sink: Any, *, accept_flags: bool = False) -> Any:
        """The clinician approved: freeze the note as an :class:`ApprovedNote` for ``sink``
        and keep it (:attr:`delivery`) until :meth:`send` got it there.

        Refused while a flag is unresolved (``accept_flags``: the clinician accepted them all,
        e.g. ``scribe note --approve``) and when the audit log cannot be written (no
        unaudited delivery)."""
        from summarize.delivery.audit import check_before_delivery
        from summarize.delivery.handover import Delivery

        with self._lock:
            if self.delivery is not None:
                raise SessionError("this note was already approved; send it again instead")
            if accept_flags:
                for i, item in enumerate(self.session.flags):
                    if item.resolution is None:
                        self.session.resolve_flag(i, "accepted")
            check_before_delivery(self.scribe.audit())
            self.delivery = Delivery(self.session.approve(), sink)
            return self.delivery.note

    def send(self, sink: Any = None) -> Any:
        """Send the approved note (again), to ``sink`` if given (e.g. the clipboard after the
        EPJ refused it); the receipt. A :class:`SinkError` leaves the note here for the next
        try. Slow (the network): a GUI calls it off the UI thread."""
        d = self.delivery
        if d is None:
            raise SessionError("nothing approved to send")
        if sink is not None:
            d.sink = sink
        receipt = d.send()
        self._emit(Delivered(receipt))
        return receipt

    @property
    def outcome(self) -> str | None:
        """What became of the approved note: delivered, unknown (the answer was lost),
        failed, or None (nothing approved, or not sent yet)."""
        d = self.delivery
        if d is None:
            return None
        if d.receipt is not None and d.error is None:
            return "delivered"
        if d.error is not None:
            return "unknown" if bool(getattr(d.error, "maybe_stored", False)) else "failed"
        return None

    # -- the end ----------------------------------------------------------------------------
    def end(self, how: str | None = None, *, audit: bool = True, wait: bool = True,
            **timings: float | None) -> dict[str, Any] | None:
        """Write the audit line (no patient data) and wipe everything; idempotent.

        The outcome follows the delivery (delivered, unknown, failed); without one it is
        ``how`` (default "discarded"). A consultation without a template (transcription
        only) or with ``audit=False`` (a draft printed, never delivered) writes no audit
        line. ``wait=False`` returns at once (a UI thread) and leaves :meth:`join` to the
        caller. Returns the audit record written (or None)."""
        from summarize.delivery.handover import end_session

        with self._lock:
            if self._ended:
                return None
            self._ended = True
            outcome = self.outcome or how or "discarded"
        self._stop.set()
        if self._gated is not None:
            self._gated.close()
        with self._lock:
            written = end_session(self.session, outcome, delivery=self.delivery,
                                  run=self.scribe.run_info(**timings),
                                  audit=self.scribe.audit() if audit and self.template is not None else None)
            self.delivery = None
        logger.info("consultation ended: %s", outcome)
        if wait:
            self.join()
        self._emit(Ended(outcome))
        return written

    def join(self, timeout: float = 60.0) -> None:
        """After :meth:`end`: wait for the capture thread and the background drafting to stop
        (seconds, if the LLM is mid-call), and wipe what they still held."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._wipe_buffers()
        note, self.note = self.note, None
        if note is not None:
            note.close()

    def discard(self) -> None:
        """The clinician threw the consultation away: audit line ("discarded"), wipe."""
        self.end("discarded")

    def _wipe_buffers(self) -> None:
        """Called by the session's wipe: the source's and the transcriber's buffers."""
        for holder in (self._gated, self._source, self._transcriber, self.speakers):
            wipe = getattr(holder, "wipe", None)
            if callable(wipe):
                wipe()
        self._transcriber = None
        self._corrector = None

    @property
    def is_empty(self) -> bool:
        return self.session.is_empty


def truncated_text(audio_s: float) -> str:
    m, s = divmod(max(audio_s, 0.0), 60)
    return (f"Opptaket ble bare lest til {int(m):02d}:{s:04.1f} (filen er avkortet eller skadet); "
            "resten mangler i transkripsjonen og i notatet.")
