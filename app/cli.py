"""The ``scribe`` command.

    scribe transcribe PATH|--mic [--input-device NAME|N] [--model DIR] [--language no]
                      [--realtime] [--json]
    scribe devices
    scribe models verify [--model DIR]
    scribe models import SOURCE --name NAME
    scribe demo [--skip-transcript] [--skip-note]
    scribe note AUDIO|--transcript FILE --template ID [--llm NAME|DIR] [--json]
                [--deliver clipboard|fhir --patient FNR|Patient/ID [--encounter Encounter/ID] [--approve]]
    scribe templates list|show ID|validate [PATH]|render ID --transcript FILE
    scribe epj test [--sink fhir] [--url URL] | epj secret [--client-id ID]
    scribe audit verify [--log PATH] | report [--log PATH] [--since YYYY-MM-DD] [--html OUT] [--json]
    scribe bench hardware|mic|models [--json OUT] [--html OUT]

User errors print one line on stderr and exit non-zero; tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from app.cli_voice import add_speaker_args, speaker_settings, warn_speakers
from app.common import (
    EXIT_INTERNAL,
    Printer,
    add_global_flags,
    configure_logging,
    progress_factory,
    run_guarded,
)
from asr.errors import ConfigError, ScribeError, printable

logger = logging.getLogger("scribe")

__all__ = ["EXIT_INTERNAL", "main", "run_guarded"]


def _build_parser() -> argparse.ArgumentParser:
    from app.argtypes import OneLineParser

    parser = OneLineParser(
        prog="scribe",
        description="Local-only ambient scribe: live Norwegian transcription (drafts are for "
        "the clinician to check and approve).",
    )
    add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("transcribe", help="transcribe a file or the microphone, live")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("path", nargs="?", help="audio file (WAV, FLAC, MP3, OGG)")
    src.add_argument("--mic", action="store_true", help="transcribe the microphone until Ctrl-C")
    t.add_argument("--input-device", metavar="NAME|N", help="microphone by name or index (see 'scribe devices')")
    t.add_argument("--model", metavar="DIR", help="CTranslate2 Whisper directory (default: embedded Whisper base)")
    t.add_argument("--language", help="no (bokmål, default), nn (nynorsk), en or auto")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), help="inference device (default auto)")
    t.add_argument("--compute-type", help="CTranslate2 compute type (default: int8 on CPU, int8_float16 on CUDA)")
    t.add_argument("--beam-size", type=int, help="beam of the final decode of each utterance (default 5)")
    t.add_argument("--vad-aggressiveness", type=int, choices=(0, 1, 2, 3), help="webrtcvad mode (default 2)")
    t.add_argument("--vocabulary", metavar="WORDS", help="comma-separated words to bias recognition (drug names)")
    t.add_argument("--realtime", action="store_true", help="replay a file on the wall clock, as if spoken now")
    t.add_argument("--json", action="store_true", help="one JSON object per line")
    t.add_argument("--tentative", action="store_true",
                   help="also the greyed hypotheses of the cheap path (JSON lines of type tentative), "
                   "also for a file read at once")
    add_speaker_args(t)

    sub.add_parser("devices", help="list audio input devices")

    m = sub.add_parser("models", help="model management")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    mv = msub.add_parser("verify", help="assemble/verify the ASR model and print its directory")
    mv.add_argument("--model", metavar="DIR")
    from app.cli_llm_models import add_models_import_parser

    add_models_import_parser(msub)

    n = sub.add_parser("note", help="draft a note from audio or a transcript (for the clinician to approve)")
    nsrc = n.add_mutually_exclusive_group(required=True)
    nsrc.add_argument("audio", nargs="?", help="audio file of the consultation")
    nsrc.add_argument("--transcript", metavar="FILE", help="text (one utterance per line, optional "
                      "'Lege:'/'Pasient:'/'Pårørende:' prefix) or 'scribe transcribe --json' output")
    n.add_argument("--template", required=True, metavar="ID", help="note template (see 'scribe templates list')")
    n.add_argument("--llm", metavar="NAME|DIR", help="embedded LLM id or CTranslate2 directory (default: embedded)")
    n.add_argument("--llm-engine", metavar="ENGINE", help="ctranslate2 (default), transformers or openai")
    n.add_argument("--no-llm", action="store_true", help="extractive draft only (no language model)")
    n.add_argument("--model", metavar="DIR", help="CTranslate2 Whisper directory for the audio")
    n.add_argument("--language", help="ASR language: no (default), nn, en or auto")
    n.add_argument("--json", action="store_true", help="the draft as one JSON object")
    add_speaker_args(n)
    n.add_argument("--deliver", metavar="SINK", help="after approval, send the note to the EPJ: clipboard or fhir")
    n.add_argument("--patient", metavar="FNR|Patient/ID", help="fhir: the patient (fødselsnummer, D-nummer or "
                   "Patient/ID)")
    n.add_argument("--encounter", metavar="Encounter/ID", help="fhir: the encounter (optional)")
    n.add_argument("--approve", action="store_true", help="approve the draft as printed, accepting its flags "
                   "(only after reading it; without it a terminal asks)")

    from app.gui.run import add_app_parser

    add_app_parser(sub)
    from app.demo import add_demo_parser

    add_demo_parser(sub)
    from app.cli_templates import add_templates_parser

    add_templates_parser(sub)
    from app.cli_epj import add_epj_parser

    add_epj_parser(sub)
    from app.cli_audit import add_audit_parser

    add_audit_parser(sub)
    from app.cli_bench import add_bench_parser

    add_bench_parser(sub)
    from app.cli_voice import add_voice_parser

    add_voice_parser(sub)
    from app.cli_edge import add_edge_parser

    add_edge_parser(sub)
    return parser


def _file_bar(source: Any, enabled: bool) -> tuple[Any, Callable[[float], None] | None]:
    """A tqdm bar over a file's duration on a terminal: (bar or None, on_progress or None)."""
    if source.live or not enabled or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=round(source.duration, 1), unit="s", desc="transcribing", file=sys.stderr, leave=False)

    def on_progress(pos: float) -> None:
        bar.update(round(pos, 1) - bar.n)

    return bar, on_progress


def cmd_transcribe(args: argparse.Namespace) -> int:
    from app.settings import load_settings
    from asr.sources import FileSource, SoundDeviceSource
    from summarize.consultation.engine import Scribe
    from summarize.consultation.events import Committed, Relabelled, Tentative

    vocabulary = [w.strip() for w in args.vocabulary.split(",") if w.strip()] if args.vocabulary else None
    settings = load_settings(
        asr={
            "model": args.model,
            "language": args.language,
            "device": args.device,
            "compute_type": args.compute_type,
            "beam_size": args.beam_size,
            "vad_aggressiveness": args.vad_aggressiveness,
            "input_device": args.input_device,
            "vocabulary": vocabulary,
            "tentative": "on" if args.tentative else None,
        },
        speakers=speaker_settings(args),
    )
    # Open the input first: a bad file or missing device fails before the model loads.
    source: Any
    if args.mic:
        if args.realtime:
            raise ConfigError("--realtime applies to files; the microphone is always live")
        source = SoundDeviceSource(settings.asr.input_device or None)
        source_name = f"microphone {source.name!r}"
    else:
        source = FileSource(args.path, realtime=args.realtime)
        source_name = os.path.basename(args.path)
    scribe = Scribe(settings, progress_factory=progress_factory(sys.stderr))
    engine = scribe.load_asr()
    scribe.load_speakers()  # a damaged voice profile fails here, before any audio
    warn_speakers(scribe)

    out = sys.stdout
    printer = Printer(out, args.json, show_tentative=out.isatty() and (args.mic or args.realtime or args.tentative),
                      json_tentative=args.tentative)

    def on_event(ev: Any) -> None:
        if isinstance(ev, Committed):
            printer.event(ev.segment)
        elif isinstance(ev, Relabelled):
            printer.speakers(ev.labels)
        elif isinstance(ev, Tentative):
            printer.event(ev)

    bar, on_progress = _file_bar(source, not args.json)
    consultation = scribe.consultation(None, source, on_event=on_event, live=False, on_progress=on_progress)
    if args.mic:
        print(f"listening on {source_name}; press Ctrl-C to stop", file=sys.stderr)
    try:
        consultation.record()
    finally:
        if bar is not None:
            bar.close()
        printer.close()
    result = consultation.stream
    segments = len(consultation.segments)
    corrections = consultation.term_corrections
    speakers = consultation.speaker_summary() if consultation.speakers is not None else None
    consultation.end()  # the transcript was printed; nothing of it stays in memory
    summary = {
        "type": "summary",
        "audio_s": round(result.audio_s, 3),
        "processing_s": round(result.processing_s, 3),
        "rtf": round(result.rtf, 4),
        "wall_s": round(result.wall_s, 3),
        "clock": result.clock,
        "segments": segments,
        "term_corrections": corrections,
        "paths": {name: {"decodes": int(p["decodes"]), "rtf": round(result.path_rtf(name), 4)}
                  for name, p in result.paths.items()},
        "model": engine.model_id,
        "device": engine.device,
        "compute_type": engine.compute_type,
    }
    if speakers is not None:
        summary["speakers"] = {k: v for k, v in speakers.items() if k != "lines_by_role"}
    empty = not segments
    if empty:
        summary["note"] = "no speech detected" if result.audio_s > 0 else "the audio is empty"
    if result.interrupted:
        summary["interrupted"] = True
    if result.error is not None:
        summary["error"] = str(result.error)
    if args.json:
        out.write(json.dumps(summary, ensure_ascii=False) + "\n")
        out.flush()
    else:
        print(
            f"{source_name}: {result.audio_s:.1f} s of audio, {segments} segments, "
            f"processing {result.processing_s:.1f} s (RTF {result.rtf:.2f}), "
            f"{engine.model_id} on {engine.device}/{engine.compute_type}",
            file=sys.stderr,
        )
    if empty and result.error is None:
        print(f"note: {summary['note']} in {source_name}; the transcript is empty", file=sys.stderr)
    if result.error is not None:
        raise result.error
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from asr.sources import list_input_devices

    devices = list_input_devices()
    if not devices:
        raise ScribeError("no audio input device found: connect a microphone and retry")
    for d in devices:
        print(f"{d['index']:>3}  {d['name']}  ({d['channels']} ch, {d['default_samplerate']:.0f} Hz)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from app.settings import load_settings
    from asr.models import resolve_whisper_model

    settings = load_settings(asr={"model": args.model})
    directory, model_id = resolve_whisper_model(
        settings.asr.model, progress_factory=progress_factory(sys.stderr)
    )
    print(f"{model_id}: {directory} (ok)")
    return 0


def cmd_models_dispatch(args: argparse.Namespace) -> int:
    if args.models_command == "import":
        from app.cli_llm_models import cmd_models_import

        return cmd_models_import(args)
    code = cmd_models(args)
    if code == 0 and args.model is None:
        from app.cli_llm_models import cmd_models_llm_verify

        code = cmd_models_llm_verify(args)
    if code == 0 and args.model is None:
        from asr.speakers.encoder import VoiceEncoder, weights_path

        VoiceEncoder()  # its sha256, and that it reads
        print(f"speaker encoder (resemblyzer GE2E): {weights_path()} (ok)")
    return code


def _delivery_sink(args: argparse.Namespace, scribe: Any) -> Any:
    """The sink for ``--deliver``, checked before any work (patient, author, URL, TLS, login)."""
    from asr.errors import ConfigError

    if not args.deliver:
        for flag in ("patient", "encounter", "approve"):
            if getattr(args, flag):
                raise ConfigError(f"--{flag} goes with --deliver")
        return None
    name = args.deliver.strip().lower()
    if name == "clipboard":
        raise ConfigError("the clipboard sink belongs to the desktop app ('scribe app'); "
                          "in a terminal the note is printed on stdout")
    if not args.approve and not sys.stdin.isatty():
        raise ConfigError("--deliver needs --approve when not run from a terminal: read the draft, then approve it")
    if args.json:
        raise ConfigError("--deliver prints the note as text for the clinician to read; leave out --json")
    sink = scribe.sink(name, patient=args.patient, encounter=args.encounter)
    sink.preflight()
    from summarize.delivery.audit import check_before_delivery

    check_before_delivery(scribe.audit())  # no unaudited delivery
    return sink


def _approve_and_deliver(args: argparse.Namespace, consultation: Any, sink: Any, timing: dict[str, Any]) -> int:
    """The clinician approves the printed draft (``--approve`` or a yes at the prompt);
    the note goes to the EPJ; the audit line is written; the consultation is wiped."""
    if not args.approve:
        print(f"Godkjenn notatet over og send det til journalen ({sink.name})? [j/N] ", end="",
              file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("j", "ja", "y", "yes"):
            consultation.end("discarded", **timing)
            print("ikke sendt: utkastet er forkastet", file=sys.stderr)
            return 0
    accepted = len(consultation.session.unresolved)
    try:
        consultation.approve(sink, accept_flags=True)
        receipt = consultation.send()
    except Exception:
        unknown = consultation.outcome == "unknown"
        consultation.end(**timing)
        if unknown:  # never "not stored" when we cannot know
            print("scribe: it is NOT KNOWN whether the EPJ stored the note (the answer was lost); it is printed "
                  "above. Running the same command again is safe: the EPJ recognises the note and does not "
                  "store it twice", file=sys.stderr)
        else:
            print("scribe: the note was NOT stored in the EPJ; it is printed above (copy it, or run again)",
                  file=sys.stderr)
        raise
    consultation.end(**timing)
    print(f"godkjent ({accepted} merknad(er) godtatt) og sendt: {receipt.detail}", file=sys.stderr)
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    from app.settings import load_settings
    from summarize.consultation.engine import Scribe
    from summarize.templates.template import load_template

    settings = load_settings(
        asr={"model": args.model, "language": args.language},
        llm={"model": args.llm, "engine": args.llm_engine},
        speakers=speaker_settings(args),
    )
    template = load_template(args.template)  # an unknown template fails before any work
    scribe = Scribe(settings, progress_factory=progress_factory(sys.stderr))
    sink = _delivery_sink(args, scribe)  # so does a wrong patient number or EPJ setting
    if not args.no_llm:  # a missing or wrong model fails before the audio is transcribed
        scribe.load_llm()
    try:
        return _draft_and_print(args, scribe, template, sink)
    finally:
        scribe.close()


def _draft_and_print(args: argparse.Namespace, scribe: Any, template: Any, sink: Any) -> int:
    """Transcribe (or read the transcript), draft, print; then approve and deliver with ``--deliver``."""
    from pathlib import Path
    from time import perf_counter as clock

    from summarize.draft.note import note_json, note_text
    from summarize.errors import TranscriptInputError
    from summarize.transcript_io import read_transcript

    asr_s: float | None = None
    if args.transcript:
        utterances = read_transcript(Path(args.transcript))
        consultation = scribe.consultation(template, live=False)
        consultation.start()
        consultation.add_utterances(utterances)
        consultation.session.audio_s = (utterances[-1].end or 0.0) if utterances else 0.0
    else:
        from asr.sources import FileSource

        source = FileSource(args.audio, realtime=False)
        scribe.load_asr()
        scribe.load_speakers()
        warn_speakers(scribe)
        bar, on_progress = _file_bar(source, True)
        consultation = scribe.consultation(template, source, live=False, on_progress=on_progress)
        t0 = clock()
        try:
            consultation.record()
        finally:
            if bar is not None:
                bar.close()
        asr_s = clock() - t0
        if consultation.audio_problem:
            print(f"scribe: warning: {printable(consultation.audio_problem)} (drafting from what was transcribed)",
                  file=sys.stderr)
        if not consultation.segments:  # silent or empty audio is not an error: an empty draft that says so
            if sink is not None:
                consultation.end(audit=False)
                raise TranscriptInputError(f"no speech was recognised in {args.audio}: nothing to send to the EPJ")
            print(f"scribe: note: no speech was recognised in {printable(args.audio)}; the draft is empty",
                  file=sys.stderr)
    tty = sys.stderr.isatty() and not args.json

    def progress(msg: str) -> None:
        if tty:
            print(f"\r{msg} …", end="", file=sys.stderr, flush=True)

    t0 = clock()
    try:
        result = consultation.draft(on_progress=progress)
    except BaseException:
        consultation.end(audit=False)
        raise
    finally:
        if tty:
            print("\r", end="", file=sys.stderr)
    stop_to_draft = clock() - t0
    timing = {
        "asr_s": round(asr_s, 3) if asr_s is not None else None,
        "draft_s": result.timing.get("draft_s"),
        "stop_to_draft_s": round(stop_to_draft, 3),
        "tokens_per_s": result.timing.get("tokens_per_s"),
    }
    models = {"asr": getattr(scribe.asr, "model_id", None), "llm": getattr(scribe.llm, "model_id", None)}
    if args.json:
        print(json.dumps({**note_json(result, models, timing), "speakers": consultation.speaker_summary(),
                          "term_corrections": consultation.term_corrections}, ensure_ascii=False))
    else:
        print(note_text(result, template), flush=True)
        print(
            "\nUtkast laget av programvare; klinikeren kontrollerer og godkjenner notatet. "
            f"({'uttrekk uten språkmodell' if result.draft.extractive else models['llm']}, "
            f"{timing['stop_to_draft_s']:.1f} s)",
            file=sys.stderr,
        )
    if sink is not None:
        return _approve_and_deliver(args, consultation, sink, timing)
    consultation.end(audit=False)  # printed, not delivered: nothing to audit, everything wiped
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "transcribe": cmd_transcribe,
    "devices": cmd_devices,
    "models": cmd_models_dispatch,
    "note": cmd_note,
    "demo": lambda args: __import__("app.demo", fromlist=["cmd_demo"]).cmd_demo(args),
    "app": lambda args: __import__("app.gui.run", fromlist=["cmd_app"]).cmd_app(args),
    "templates": lambda args: __import__("app.cli_templates", fromlist=["cmd_templates"]).cmd_templates(args),
    "epj": lambda args: __import__("app.cli_epj", fromlist=["cmd_epj"]).cmd_epj(args),
    "audit": lambda args: __import__("app.cli_audit", fromlist=["cmd_audit"]).cmd_audit(args),
    "bench": lambda args: __import__("app.cli_bench", fromlist=["cmd_bench"]).cmd_bench(args),
    "voice": lambda args: __import__("app.cli_voice", fromlist=["cmd_voice"]).cmd_voice(args),
    "edge": lambda args: __import__("app.cli_edge", fromlist=["cmd_edge"]).cmd_edge(args),
}


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        args.command = "app"  # `scribe` alone opens the window
    configure_logging(args.debug, args.verbose)
    from summarize.consultation.privacy import disable_core_dumps

    disable_core_dumps()  # a crash must not write the session's memory to disk
    if args.command in ("transcribe", "note", "demo", "app", "bench", "models", "edge"):
        # CTranslate2's native library is loaded before Qt, torch or matplotlib: a late first
        # import after them crashed once (an import-order clash of native runtimes)
        import ctranslate2  # noqa: F401
    return run_guarded(COMMANDS[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
