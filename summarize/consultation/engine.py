"""The consultation engine every front end drives: :class:`Scribe` (models and settings,
once per process) makes :class:`~summarize.consultation.consultation.Consultation`\\ s.

::

    scribe = Scribe(settings)            # nothing loaded yet
    scribe.load(progress)                # Whisper, then the LLM (a missing LLM is not fatal)
    c = scribe.consultation(template, source, on_event=show)
    c.start(); …; c.stop(wait=True)      # audio → streaming Whisper → small-talk filter → live note
    result = c.draft()                   # the draft with its flags, for review
    c.resolve_flag(0); c.approve(scribe.sink())   # → EPJ → receipt
    c.end()                              # audit line, then everything about the patient is wiped

**Thread safety.** One :class:`Scribe` serves several consultations at once (the desktop app
runs one, the edge server many). What they share is read-only after :meth:`Scribe.load`
or guards itself: the Whisper model (CTranslate2 runs concurrent ``generate`` calls; each
consultation has its own decoder, streaming buffer and VAD state), the LLM engine (llama.cpp
and CTranslate2 serialise calls behind their own lock; the HTTP engine is stateless), the
drug lexicon and the small-talk lexicon (loaded once, never changed), and the audit log
(each line is appended under an exclusive file lock). Everything about a patient lives in
its :class:`Consultation` and nowhere else. :meth:`Scribe.load` and :meth:`Scribe.close`
are called once, from one thread, while no consultation runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from asr.errors import ConfigError, ScribeError
from summarize.consultation.consultation import Consultation, EventSink

logger = logging.getLogger(__name__)


class Scribe:
    """The loaded models and the settings of one process.

    ``settings`` is the app's settings object (sections ``asr``, ``llm``, ``app``, ``fhir``,
    ``audit``). ``asr`` / ``llm`` may be given ready-made (tests, benchmarks, an engine the
    caller already loaded); otherwise :meth:`load` creates them. ``sd`` is the sounddevice
    module to use (tests pass a fake one). ``progress_factory`` draws download/assembly
    progress of embedded models (the CLI's bars).
    """

    def __init__(self, settings: Any, *, asr: Any = None, llm: Any = None, sd: Any = None,
                 progress_factory: Callable[[str, int], Any] | None = None) -> None:
        self.settings = settings
        self.asr = asr
        self.llm = llm
        self.llm_problem: str | None = None
        self.speaker_encoder: Any = None  # the voice encoder (roles from the voices), loaded by load_speakers
        self.voice_profile: Any = None  # the clinician's VoiceProfile, if one is configured or enrolled
        self.speakers_problem: str | None = None
        self._speakers_loaded = False
        self.sd = sd
        self._progress_factory = progress_factory
        self._audit: Any = None
        self._audit_opened = False
        self._lock = threading.Lock()
        self.load_s: dict[str, float] = {}

    # -- models ---------------------------------------------------------------------------
    def load(self, progress: Callable[[str], None] = lambda stage: None, *, asr: bool = True,
             llm: bool = True) -> None:
        """Load Whisper (its weights now, not at the first word), then the LLM. ``progress``
        gets "asr", "llm", "ready". A missing ASR model raises its one-line error; a missing
        LLM is not fatal (the draft is extractive and says so): :attr:`llm_problem` says why."""
        if asr:
            progress("asr")
            self.load_asr()
            try:
                self.load_speakers()
            except ScribeError as exc:  # a damaged voice profile: roles without it, and said
                self.speakers_problem = str(exc).splitlines()[0]
        if llm:
            progress("llm")
            try:
                self.load_llm()
            except Exception as exc:  # ScribeError subclasses carry a one-line message
                self.llm = None
                self.llm_problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                logger.warning("no language model: %s", self.llm_problem)
        progress("ready")

    def load_asr(self) -> Any:
        """The Whisper engine (loaded on first use)."""
        if self.asr is None:
            from asr.engine import AsrConfig, AsrEngine

            t0 = time.perf_counter()
            self.asr = AsrEngine(AsrConfig.from_settings(self.settings.asr), progress_factory=self._progress_factory)
            self.asr.decoder()
            self.load_s["asr"] = time.perf_counter() - t0
            logger.info("ASR model loaded in %.1f s", self.load_s["asr"])
        return self.asr

    def load_llm(self) -> Any:
        """The LLM engine (loaded on first use); raises its one-line error when it cannot."""
        if self.llm is None:
            from summarize.llm.registry import create_engine

            t0 = time.perf_counter()
            self.llm = create_engine(self.settings.llm)
            self.llm_problem = None
            self.load_s["llm"] = time.perf_counter() - t0
            logger.info("LLM %s loaded in %.1f s", self.llm.model_id, self.load_s["llm"])
        return self.llm

    def load_speakers(self) -> Any:
        """The voice encoder and the clinician's voice profile, when ``[speakers] mode`` is
        auto. Missing encoder weights are not fatal (no roles from audio; :attr:`speakers_problem`
        says why); a damaged or foreign profile file raises its one-line error (the fix is
        ``scribe voice enroll``); no profile at the default place is fine."""
        conf = getattr(self.settings, "speakers", None)
        if self._speakers_loaded or conf is None or conf.mode == "off":
            return self.speaker_encoder
        from asr.errors import ModelError
        from asr.speakers import profile as voice_profile
        from asr.speakers.encoder import VoiceEncoder

        self._speakers_loaded = True
        try:
            t0 = time.perf_counter()
            self.speaker_encoder = VoiceEncoder()
            self.load_s["speakers"] = time.perf_counter() - t0
        except ModelError as exc:
            self.speakers_problem = str(exc)
            logger.warning("no speaker roles from audio: %s", self.speakers_problem)
        path = conf.profile_path()
        if conf.voice_profile or path.exists():
            self.voice_profile = voice_profile.load(path)  # a damaged profile: its one-line error
        return self.speaker_encoder

    def speaker_tracker(self, template: Any = None) -> Any:
        """A new :class:`~asr.speakers.tracker.SpeakerTracker` for one consultation (None when
        speakers are off or the encoder is missing)."""
        encoder = self.load_speakers()
        if encoder is None:
            return None
        from asr.speakers.tracker import SpeakerOptions, SpeakerTracker

        main = getattr(template, "main_speaker", None) or "pasient"
        profile = self.voice_profile.embedding if self.voice_profile is not None else None
        return SpeakerTracker(encoder, profile, SpeakerOptions(main_other=main))

    @property
    def models(self) -> dict[str, str | None]:
        return {"asr": getattr(self.asr, "model_id", None), "llm": getattr(self.llm, "model_id", None)}

    def draft_options(self) -> Any:
        from summarize.draft.drafter import DraftOptions

        llm = getattr(self.settings, "llm", None)
        if llm is None:
            return DraftOptions()
        return DraftOptions(strategy=llm.draft, batch_size=llm.batch)

    def transcriber_factory(self, vocabulary: tuple[str, ...] = (), speakers: Any = None
                            ) -> Callable[[Callable[[], float] | None], Any]:
        """``make(clock)`` → a new streaming transcriber on the shared model (one per
        consultation); with a ``speakers`` tracker its segments carry their roles."""
        asr = self.load_asr()

        def make(clock: Callable[[], float] | None) -> Any:
            transcriber = asr.transcriber(clock, vocabulary=vocabulary)
            if speakers is None:
                return transcriber
            from asr.speakers.stream import SpeakerStream

            return SpeakerStream(transcriber, speakers)

        return make

    # -- audio sources ----------------------------------------------------------------------
    def input_devices(self) -> list[dict[str, Any]]:
        from asr.sources import input_devices_or_none

        return input_devices_or_none(self.sd)

    def microphone(self, device: str | int | None = None, **kwargs: Any) -> Any:
        from asr.sources import SoundDeviceSource

        return SoundDeviceSource(device if device not in ("", None) else None, sd=self.sd, **kwargs)

    # -- consultations ----------------------------------------------------------------------
    def consultation(self, template: Any, source: Any = None, *, on_event: EventSink | None = None,
                     live: bool = True, clock: Callable[[], float] = time.monotonic,
                     on_progress: Callable[[float], None] | None = None, speakers: bool = True) -> Consultation:
        """A new consultation with ``template`` (``None``: transcription only, no note).

        ``source`` is an audio source (microphone, file, a phone's stream) or ``None`` when the
        transcript comes as text (:meth:`Consultation.add_utterances`). ``live``: draft in the
        background while recording (the desktop app); otherwise the whole transcript is
        drafted at :meth:`Consultation.draft` (a file, a transcript, a benchmark). ``speakers``:
        give the audio's segments roles from the voices (when ``[speakers] mode`` is auto)."""
        return Consultation(self, template, source, on_event=on_event, live=live, clock=clock, speakers=speakers,
                            on_progress=on_progress)

    # -- delivery ---------------------------------------------------------------------------
    def sink(self, name: str | None = None, **kwargs: Any) -> Any:
        """The configured sink (``app.sink``) or ``name``; the FHIR sink gets its settings and
        the patient (``patient=``, ``encounter=``), the clipboard its callbacks."""
        from summarize.delivery.registry import SINKS, create_sink

        name = (name or self.settings.app.sink).strip().lower()
        if name not in SINKS:
            raise ConfigError(f"unknown EPJ sink {name!r}; available: {', '.join(sorted(SINKS))}")
        if name == "fhir":
            return create_sink("fhir", config=self.settings.fhir, patient=kwargs.get("patient"),
                               encounter=kwargs.get("encounter"))
        return create_sink(name, **{k: v for k, v in kwargs.items() if k not in ("patient", "encounter")})

    def audit(self) -> Any:
        """The audit log (``None`` when switched off); opened once."""
        with self._lock:
            if not self._audit_opened:
                audit = getattr(self.settings, "audit", None)
                self._audit = audit.open() if audit is not None else None
                self._audit_opened = True
            return self._audit

    def reopen_audit(self) -> None:
        """The audit settings changed: the next line goes to the log they name."""
        with self._lock:
            self._audit, self._audit_opened = None, False

    def run_info(self, **timings: float | None) -> Any:
        from summarize.delivery.handover import RunInfo

        return RunInfo.of(self.asr, self.llm, **timings)

    def close(self) -> None:
        """Free the models (their memory); the next :meth:`load` loads them again (new
        settings). Call it when no consultation runs."""
        llm, self.llm, self.asr = self.llm, None, None
        self.speaker_encoder, self.voice_profile, self._speakers_loaded = None, None, False
        if llm is not None:
            llm.close()
