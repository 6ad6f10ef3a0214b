"""The microphone test for hospital IT (issue #6): is this microphone good enough?

Record a few seconds of room silence and the clinician reading the fixed passage
(:mod:`hardware.passage`), or analyse a file; measure the signal; transcribe the passage
with the real streaming ASR and compare it with the text; give a verdict with reasons.
The CLI (``scribe bench mic``) and the app's "Test microphone" dialog both call
:func:`run_mic_test`. Nothing is written to disk but the reports asked for: the
recordings live in memory and are dropped when the test ends.

The parts: :mod:`hardware.mic_capture` (input devices, recording, files),
:mod:`hardware.mic_analysis` (the measurements and their method),
:mod:`hardware.mic_asr` (the passage's transcript and WER), :mod:`hardware.mic_verdict`
(the thresholds and the verdict) and :mod:`hardware.mic_report` (the result and its report).
This module runs them in order.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.mic_analysis import analyze
from hardware.mic_asr import to_16k_mono, transcribe_wer
from hardware.mic_capture import (
    ANALYSIS_RATE,
    DeviceChoice,
    MicTestCancelled,
    _resample_channels,
    check_device,
    decode_native,
    record,
)
from hardware.mic_report import MicTestResult, build_report
from hardware.mic_verdict import is_reference_mismatch, verdict

Progress = Callable[[str, float], None]


def run_mic_test(
    *,
    file: str | os.PathLike[str] | None = None,
    silence_file: str | os.PathLike[str] | None = None,
    speech: np.ndarray | None = None,
    silence: np.ndarray | None = None,
    sample_rate: int | None = None,
    device: str | int | DeviceChoice | None = None,
    sd: Any | None = None,
    seconds_silence: float = 5.0,
    seconds_speech: float = 30.0,
    reference: str | None = None,
    transcriber_factory: Callable[..., Any] | None = None,
    model_id: str | None = None,
    progress: Progress | None = None,
    on_level: Callable[[float], None] | None = None,
    announce: Callable[[str, float], None] | None = None,
    stop: threading.Event | None = None,
    lang: str = "en",
    fingerprint: dict[str, Any] | None = None,
    make_report: bool = True,
    source_name: str | None = None,
    notes: list[str] | None = None,
) -> MicTestResult:
    """The whole microphone test, used by the CLI and by the dialog.

    The recording comes from ``file`` (and ``silence_file``), from ``speech`` (and
    ``silence``) arrays at ``sample_rate``, or, live, from ``device`` (``sd`` the
    sounddevice module, injectable; or a :class:`DeviceChoice` from :func:`check_device`):
    ``seconds_silence`` of room silence, then
    ``seconds_speech`` of the user reading the passage. ``announce(stage, seconds)`` is
    called before each live recording ("silence", "speech"; it may count down);
    ``progress(stage, fraction)`` for the stages "check", "silence", "speech", "analyse",
    "transcribe", "report", "done"; ``on_level(dbfs)`` with the input level while
    recording. With ``reference`` and ``transcriber_factory`` the passage is transcribed
    and its WER computed. The audio is dropped before this returns.
    """

    def step(stage: str, fraction: float) -> None:
        if stop is not None and stop.is_set():
            raise MicTestCancelled("the microphone test was stopped")
        if progress is not None:
            progress(stage, fraction)

    notes = list(notes or [])
    choice: DeviceChoice | None = None
    xruns = 0
    step("check", 0.0)
    if file is not None:
        speech, rate, problem = decode_native(file)
        if problem:
            notes.append(problem)
        source = str(file)
        if silence_file is not None:
            silence, srate, sproblem = decode_native(silence_file)
            if sproblem:
                notes.append(sproblem)
            if srate != rate:
                silence = _resample_channels(silence, srate, rate)
    elif speech is not None:
        if not sample_rate:
            raise ValueError("sample_rate is required with speech=")
        rate = int(sample_rate)
        source = source_name or "memory"
    else:
        if isinstance(device, DeviceChoice):
            choice = device
        else:
            choice = check_device(device, ANALYSIS_RATE, sd)
            notes.extend(choice.notes)
        rate = choice.sample_rate
        source = f"input device {choice.name!r}"

        def recorder(stage: str) -> Callable[[float, float], None]:
            def cb(fraction: float, level: float) -> None:
                step(stage, fraction)
                if on_level is not None:
                    on_level(level)

            return cb

        if seconds_silence > 0:
            if announce is not None:
                announce("silence", seconds_silence)
            silence, x1 = record(
                choice, seconds_silence, sd=sd, stop=stop, on_progress=recorder("silence")
            )
            xruns += x1
        if announce is not None:
            announce("speech", seconds_speech)
        speech, x2 = record(
            choice, seconds_speech, sd=sd, stop=stop, on_progress=recorder("speech")
        )
        xruns += x2

    step("analyse", 0.0)
    analysis = analyze(speech, rate, silence=silence, xruns=xruns)
    silence = None
    wer: float | None = None
    hypothesis: str | None = None
    mismatch = False
    ref_words: int | None = None
    if reference is not None and reference.strip():
        from asr.evaluation import normalize_text

        ref_words = len(normalize_text(reference).split())
        if analysis.no_speech:
            notes.append("word error rate not measured: no speech in the recording")
        elif transcriber_factory is None:
            notes.append("word error rate not measured: no speech recognition model")
        else:
            step("transcribe", 0.0)
            audio16 = to_16k_mono(speech, rate)
            speech = None
            wer, hypothesis = transcribe_wer(
                audio16,
                reference,
                transcriber_factory,
                on_progress=lambda f: step("transcribe", f),
                stop=stop,
            )
            if stop is not None and stop.is_set():
                raise MicTestCancelled("the microphone test was stopped")
            del audio16
            mismatch = is_reference_mismatch(analysis, reference, hypothesis, wer)
    speech = None
    v, reasons = verdict(analysis, wer, mismatch, lang=lang)
    result = MicTestResult(
        analysis=analysis,
        verdict=v,
        reasons=reasons,
        wer=wer,
        reference_words=ref_words,
        reference_mismatch=mismatch,
        hypothesis=hypothesis,
        model_id=model_id,
        source=source,
        device=choice,
        notes=notes,
    )
    if make_report:
        step("report", 0.0)
        result.report = build_report(result, lang=lang, fingerprint=fingerprint)
    step("done", 1.0)
    return result
