"""Qt-free wiring of the core for the desktop app: models, audio sources, the live
note and the sink. The window gets one :class:`Backend`; tests give it a fake one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Backend:
    """Loads the ASR model and the LLM once (in a worker thread), then makes one audio
    source, one transcriber and one live note per consultation."""

    def __init__(self, settings: Any, *, replay: Path | None = None, replay_speed: float = 1.0,
                 sd: Any | None = None) -> None:
        self.settings = settings
        self.replay = replay
        self.replay_speed = replay_speed
        self._sd = sd
        self.asr: Any = None
        self.llm: Any = None
        self.llm_problem: str | None = None

    # -- models (slow: called on a worker thread) --------------------------------------
    def load_models(self, progress: Callable[[str], None]) -> None:
        """Load Whisper, then the LLM. A missing LLM is not fatal (extractive draft,
        flagged); a missing ASR model is (raised as the core's one-line error)."""
        from app.common import engine_config
        from asr.engine import AsrEngine

        t0 = time.perf_counter()
        progress("asr")
        self.asr = AsrEngine(engine_config(self.settings))
        self.asr.decoder()  # load the weights now, not at the first word
        logger.info("ASR model loaded in %.1f s", time.perf_counter() - t0)
        progress("llm")
        t0 = time.perf_counter()
        try:
            from summarize.llm.registry import create_engine

            self.llm = create_engine(self.settings.llm)
            logger.info("LLM %s loaded in %.1f s", self.llm.model_id, time.perf_counter() - t0)
        except Exception as exc:  # ScribeError subclasses carry a one-line message
            self.llm = None
            self.llm_problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("no language model: %s", self.llm_problem)
        progress("ready")

    @property
    def models(self) -> dict[str, str | None]:
        return {"asr": getattr(self.asr, "model_id", None), "llm": getattr(self.llm, "model_id", None)}

    # -- per consultation ---------------------------------------------------------------
    def input_devices(self) -> list[dict[str, Any]]:
        from asr.sources import list_input_devices

        try:
            return list_input_devices(self._sd)
        except Exception as exc:  # no PortAudio, no device: the picker says so
            logger.info("no input devices: %s", exc)
            return []

    def make_source(self, device: str | int | None) -> Any:
        """The microphone, or the replay file played as if it were one (same path)."""
        if self.replay is not None:
            from asr.sources import FileSource

            speed = self.replay_speed
            return FileSource(self.replay, realtime=True, clock=lambda: time.monotonic() * speed,
                              sleep=lambda s: time.sleep(s / speed))
        from asr.sources import SoundDeviceSource

        return SoundDeviceSource(device if device not in ("", None) else None, sd=self._sd)

    def make_transcriber(self, template: Any) -> Callable[[Callable[[], float] | None], Any]:
        vocab = tuple(getattr(template, "vocabulary", ()) or ())

        def make(clock: Callable[[], float] | None) -> Any:
            return self.asr.transcriber(clock, vocabulary=vocab)

        return make

    def make_note(self, template: Any) -> Any:
        from summarize.drafter import DraftOptions
        from summarize.note import IncrementalNote

        llm = self.settings.llm
        return IncrementalNote(template, self.llm,
                               options=DraftOptions(strategy=llm.draft, batch_size=llm.batch))

    def make_sink(self, **kwargs: Any) -> Any:
        """The configured sink; the FHIR sink gets its settings and the patient."""
        from summarize.sink_registry import create_sink

        name = self.settings.app.sink
        if name == "fhir":
            return create_sink("fhir", config=self.settings.fhir, patient=kwargs.get("patient"),
                               encounter=kwargs.get("encounter"))
        return create_sink(name, **{k: v for k, v in kwargs.items() if k not in ("patient", "encounter")})

    def audit(self) -> Any:
        """The audit log (None when switched off); opened once."""
        if not hasattr(self, "_audit"):
            self._audit = self.settings.audit.open()
        return self._audit

    def run_info(self) -> Any:
        from summarize.delivery import RunInfo

        return RunInfo.of(getattr(self, "asr", None), getattr(self, "llm", None))

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
