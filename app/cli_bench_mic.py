"""``scribe bench mic``: the microphone test for hospital IT (issue #6).

    scribe bench mic [--device NAME|N] [--seconds-silence N] [--seconds-speech N]
                     [--model DIR] [--no-asr] [--json OUT] [--html OUT]
    scribe bench mic --file REC.wav [--silence SILENCE.wav] [--reference TEXT.txt|builtin]
    scribe bench mic --list

Live: records the room's silence, then the user reading the built-in passage (printed on
the screen), measures the microphone (:mod:`hardware.mic`), transcribes the passage with
the configured Whisper model and prints the numbers and the verdict. Headless
(``--file``): analyses a recording; the noise floor comes from its pauses or from
``--silence``; the WER only with ``--reference`` (a text file, or ``builtin`` for the
built-in passage). The recordings stay in memory; only the reports asked for are written.

Exit status: 0 for ok or marginal, 1 for unfit, 2 for a bad file or option, 3 for a
missing or busy device, 4 for a broken model. Run alone: ``python -m app.cli_bench_mic``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.bench_common import add_report_args, check_report_paths
from asr.errors import ConfigError, DeviceError

logger = logging.getLogger(__name__)

BUILTIN = ("builtin", "builtin-nb", "builtin-nn")


def add_mic_parser(bsub: Any) -> None:
    m = bsub.add_parser(
        "mic", help="test a microphone: noise, level, SNR, clipping, bandwidth, WER"
    )
    m.add_argument(
        "--file",
        type=Path,
        metavar="REC",
        help="analyse this recording instead of recording (headless)",
    )
    m.add_argument(
        "--silence",
        type=Path,
        metavar="FILE",
        help="with --file: a recording of the room's silence for the noise floor "
        "(default: the quietest parts of REC)",
    )
    m.add_argument(
        "--reference",
        metavar="TEXT.txt|builtin",
        help="the text read in the recording, for the word error rate (default: the "
        "built-in passage when recording live; none with --file); 'builtin' or "
        "'builtin-nn' for the built-in passage in bokmål or nynorsk",
    )
    m.add_argument("--device", metavar="NAME|N", help="input device by name or index (see --list)")
    m.add_argument(
        "--seconds-silence",
        type=float,
        default=5.0,
        metavar="N",
        help="seconds of room silence to record (default 5)",
    )
    m.add_argument(
        "--seconds-speech",
        type=float,
        default=30.0,
        metavar="N",
        help="seconds of the passage read aloud to record (default 30)",
    )
    m.add_argument(
        "--list",
        action="store_true",
        help="list the input devices with their sample rates and channels",
    )
    m.add_argument(
        "--model", metavar="DIR", help="Whisper model for the WER (default: the configured one)"
    )
    m.add_argument("--no-asr", action="store_true", help="skip the transcription and the WER")
    m.add_argument(
        "--lang",
        choices=("en", "nb"),
        default="en",
        help="language of the reasons and the report (default en)",
    )
    add_report_args(m)


# ------------------------------------------------------------------------ helpers


def _check_args(args: argparse.Namespace) -> None:
    if args.silence is not None and args.file is None:
        raise ConfigError("--silence needs --file (live tests record the silence themselves)")
    if args.file is not None and args.device is not None:
        raise ConfigError("give either --file or --device, not both")
    if args.seconds_speech <= 0 or args.seconds_silence < 0:
        raise ConfigError("--seconds-speech must be positive and --seconds-silence not negative")
    if args.seconds_speech > 600 or args.seconds_silence > 600:
        raise ConfigError("recordings are limited to 600 s")
    check_report_paths(args.json, args.html)


def _settings(args: argparse.Namespace) -> Any:
    from app.settings import load_settings

    return load_settings(asr={"model": getattr(args, "model", None)})


def resolve_reference(spec: str | None, live: bool, language: str | None) -> str | None:
    """The reference text: a file, the built-in passage, or ``None`` (no WER)."""
    from hardware.passage import PASSAGE_NB, PASSAGE_NN, passage

    if spec is None:
        return passage(language) if live else None
    if spec in BUILTIN:
        return {"builtin-nb": PASSAGE_NB, "builtin-nn": PASSAGE_NN}.get(spec) or passage(language)
    p = Path(spec)
    if not p.is_file():
        raise ConfigError(f"reference text not found: {p} (a UTF-8 text file, or 'builtin')")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not text.strip():
        raise ConfigError(f"the reference text {p} is empty")
    return text


def _load_engine(settings: Any) -> Any:
    from app.common import progress_factory
    from asr.engine import AsrConfig, AsrEngine

    return AsrEngine(AsrConfig.from_settings(settings.asr), progress_factory=progress_factory(sys.stderr))


def _bars(stream: Any) -> tuple[Callable[[str, float], None], Callable[[], None]]:
    """A tqdm bar per recording stage (seconds) and one for the transcription (%)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    labels = {"silence": "silence", "speech": "reading", "transcribe": "transcribing"}

    def progress(stage: str, fraction: float) -> None:
        if stage not in labels:
            return
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(
                total=100,
                desc=labels[stage],
                unit="%",
                file=stream,
                leave=False,
                disable=None,
                dynamic_ncols=True,
            )
        bar.update(max(0, int(round(fraction * 100)) - bar.n))

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


def _announcer(reference: str | None, stream: Any, countdown: bool) -> Callable[[str, float], None]:
    def announce(stage: str, seconds: float) -> None:
        if stage == "silence":
            print(
                f"\nBe quiet for {seconds:g} s: measuring the room's background noise.", file=stream
            )
        else:
            print(
                f"\nNow read this aloud at your normal voice and distance ({seconds:g} s):\n",
                file=stream,
            )
            if reference:
                print(_wrap(reference), file=stream)
            print(file=stream)
        if countdown:
            for n in (3, 2, 1):
                print(f"  {n} …", file=stream, flush=True)
                time.sleep(1.0)
        print("  recording", file=stream, flush=True)

    return announce


def _wrap(text: str, width: int = 76) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="    "))


def format_result(result: Any) -> str:
    """The numbers, the verdict and its reasons as plain text."""
    a = result.analysis
    ch = "channel" if a.channels == 1 else "channels"
    used = "" if a.channel_used == "mono" else f", using {a.channel_used}"
    lines = [
        f"microphone test: {result.source} ({a.sample_rate} Hz, {a.channels} {ch}{used})",
        f"  noise floor      {a.noise_floor_dbfs:7.1f} dBFS  ({a.noise_source})",
        f"  speech level     {a.speech_level_dbfs:7.1f} dBFS",
        f"  SNR              {a.snr_db:7.1f} dB",
        f"  clipping         {a.clipping_pct:7.2f} % of samples",
        f"  DC offset        {a.dc_offset_pct:7.2f} % of full scale",
        f"  dropouts         {a.dropouts - a.xruns:7d}     (+ {a.xruns} buffer overruns)",
        f"  bandwidth        {a.bandwidth_hz:7.0f} Hz",
        f"  speech time      {a.speech_s:7.1f} s of {a.duration_s:.1f} s",
    ]
    for c in a.per_channel if a.channels > 1 else []:
        dead = "  DEAD" if c.dead else ""
        lines.append(
            f"  channel {c.channel}:  level {c.speech_level_dbfs:6.1f} dBFS, "
            f"SNR {c.snr_db:5.1f} dB, clipping {c.clipping_pct:.2f} %{dead}"
        )
    if result.wer is not None:
        lines.append(
            f"  WER              {100 * result.wer:7.1f} %    "
            f"({result.reference_words} reference words"
            f"{', ' + result.model_id if result.model_id else ''})"
        )
    elif result.reference_words is not None:
        lines.append("  WER                    –    (not measured)")
    lines.append(f"verdict: {result.verdict}")
    lines.extend(f"  - {r}" for r in result.reasons)
    return "\n".join(lines)


# ------------------------------------------------------------------------ command


def cmd_bench_mic(
    args: argparse.Namespace,
    *,
    sd: Any | None = None,
    transcriber_factory: Callable[..., Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> int:
    """Run ``scribe bench mic``; ``sd`` (sounddevice) and ``transcriber_factory`` are
    injectable for tests. User errors are raised as :class:`ScribeError`."""
    from hardware import mic, mic_capture, mic_report

    out, err = sys.stdout, sys.stderr
    if args.list:
        devices = mic_capture.list_devices(sd)
        if not devices:
            raise DeviceError("no audio input device found: connect a microphone and retry")
        for d in devices:
            takes = {True: "16 kHz: yes", False: "16 kHz: no", None: ""}[d["takes_16k"]]
            print(
                f"{d['index']:>3}  {d['name']}  ({d['channels']} ch, "
                f"{d['default_samplerate']:.0f} Hz default{'; ' + takes if takes else ''})",
                file=out,
            )
        return 0
    _check_args(args)
    live = args.file is None
    settings = _settings(args)
    reference = (
        None
        if args.no_asr
        else resolve_reference(args.reference, live, getattr(settings.asr, "language", None))
    )

    kwargs: dict[str, Any] = {}
    notes: list[str] = []
    if live:
        choice = mic_capture.check_device(args.device, mic_capture.ANALYSIS_RATE, sd)
        for note in choice.notes:
            print(f"scribe: note: {note}", file=err)
        kwargs.update(
            device=choice,
            sd=sd,
            seconds_silence=args.seconds_silence,
            seconds_speech=args.seconds_speech,
        )
    else:
        # decode first: a bad file fails before the model loads
        speech, rate, problem = mic_capture.decode_native(args.file)
        if problem:
            notes.append(problem)
            print(f"scribe: warning: {problem}", file=err)
        silence = None
        if args.silence is not None:
            silence, srate, sproblem = mic_capture.decode_native(args.silence)
            if sproblem:
                notes.append(sproblem)
            if srate != rate:
                silence = mic_capture._resample_channels(silence, srate, rate)
        kwargs.update(speech=speech, silence=silence, sample_rate=rate, source_name=str(args.file))
        del speech, silence

    model_id = None
    if reference is not None and transcriber_factory is None:
        engine = _load_engine(settings)
        transcriber_factory, model_id = engine.transcriber, engine.model_id

    progress, close_bars = _bars(err)
    try:
        result = mic.run_mic_test(
            reference=reference,
            transcriber_factory=transcriber_factory,
            model_id=model_id,
            progress=progress,
            announce=_announcer(reference, err, countdown=err.isatty()) if live else None,
            lang=args.lang,
            fingerprint=fingerprint,
            notes=notes,
            **kwargs,
        )
    finally:
        close_bars()
        kwargs.clear()
    print(format_result(result), file=out)
    for note in result.notes:
        if note not in notes:
            print(f"note: {note}", file=out)
    for p in mic_report.write_report_files(result.report, json_path=args.json, html_path=args.html):
        print(f"wrote {p}", file=err)
    return 1 if result.verdict == "unfit" else 0


def main(
    argv: list[str] | None = None,
    *,
    sd: Any | None = None,
    transcriber_factory: Callable[..., Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> int:
    """``scribe bench mic ARGS`` with a sounddevice module, an ASR factory or a fingerprint
    injected (tests), through the CLI's own parser and error handling."""
    from app.argtypes import OneLineParser
    from app.common import add_global_flags, configure_logging, run_guarded

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mic"]:
        argv = argv[1:]
    parser = OneLineParser(prog="scribe bench")
    add_global_flags(parser)
    add_mic_parser(parser.add_subparsers(dest="bench_command", metavar="WHAT", required=True))
    args = parser.parse_args(["mic", *argv])
    configure_logging(args.debug, args.verbose)
    return run_guarded(
        lambda a: cmd_bench_mic(a, sd=sd, transcriber_factory=transcriber_factory, fingerprint=fingerprint),
        args,
    )


if __name__ == "__main__":
    sys.exit(main())
