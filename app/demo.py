"""``scribe demo``: what the product does, in about two minutes, on the embedded models.

1. The live transcript of real Norwegian speech (``app/demo/king.mp3``: King Harald V,
   2016, 85 s), printed as each segment is committed, then its word error rate against
   the official text.
2. A draft note from a fictional consultation (``app/demo/consultation.txt``, its text
   transcript, labelled as such: the embedded Whisper base cannot read synthetic voices,
   so a synthesized recording would give a nonsense note), in the allmennmedisin
   template, with the small talk it left out and why, and the flags to check.

Everything is labelled as a demo on fictional data. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).resolve().parent / "demo"
SPEECH = DEMO_DIR / "king.mp3"
SPEECH_TEXT = DEMO_DIR / "king.txt"
CONSULTATION = DEMO_DIR / "consultation.txt"
TEMPLATE = "allmennmedisin"
RULE = "─" * 78


def add_demo_parser(sub: Any) -> None:
    d = sub.add_parser("demo", help="show the product on bundled demo data: a live transcript of real "
                       "Norwegian speech, then a draft note from a fictional consultation")
    d.add_argument("--skip-transcript", action="store_true", help="only the draft note (part 2)")
    d.add_argument("--skip-note", action="store_true", help="only the live transcript (part 1)")


def _say(text: str = "") -> None:
    print(text, flush=True)


def _header(step: str, title: str, detail: str) -> None:
    _say(f"\n{RULE}\n{step} {title}\n   {detail}\n{RULE}")


class _Progress:
    """The drafter's progress ("utkast 5/18"): rewritten in place on a terminal, else a
    line at most every ``every_s`` seconds (a log or a pipe still shows it moving)."""

    def __init__(self, stream: Any, every_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every_s = every_s
        self._last = 0.0
        self._shown = False

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\r   {message} …\033[K")
            self._shown = True
        elif now - self._last >= self.every_s:
            self.stream.write(f"   {message} …\n")
            self._last = now
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _transcript_part() -> None:
    from app.common import Printer, progress_factory
    from app.settings import load_settings
    from asr.evaluation import error_rates
    from asr.sources import FileSource
    from summarize.consultation.engine import Scribe
    from summarize.consultation.events import Committed, Tentative

    _header("1/2", "Live transkripsjon av ekte norsk tale",
            "Kong Harald Vs tale i hagefesten 1. september 2016 (85 s, utendørs høyttaler), som om den ble "
            "sagt nå;\n   hvert segment skrives når det er bekreftet.")
    source = FileSource(str(SPEECH), realtime=False)
    settings = load_settings()
    _say(f"   laster talemodellen ({settings.asr.model or 'den innebygde'}) …")
    scribe = Scribe(settings, progress_factory=progress_factory(sys.stderr))
    engine = scribe.load_asr()
    printer = Printer(sys.stdout, as_json=False, show_tentative=sys.stdout.isatty())

    def show(ev: object) -> None:
        if isinstance(ev, Committed):
            printer.event(ev.segment)
        elif isinstance(ev, Tentative):
            printer.event(ev)

    consultation = scribe.consultation(None, source, on_event=show, live=False)  # transcription only
    try:
        consultation.record()
    finally:
        printer.close()
    result = consultation.stream
    text = " ".join(s.text for s in consultation.segments)
    consultation.end()
    if result.error is not None:
        raise result.error
    rates = error_rates(SPEECH_TEXT.read_text(encoding="utf-8"), text)
    _say(f"\n   {result.audio_s:.0f} s tale transkribert på {result.processing_s:.0f} s "
         f"(sanntidsfaktor {result.rtf:.2f}) med {engine.model_id} på {engine.device}/{engine.compute_type}.")
    _say(f"   Ordfeilrate (WER) mot den offisielle teksten: {rates.wer:.0%}, tegnfeilrate (CER) {rates.cer:.0%}.")
    _say("   Den innebygde Whisper base er den største som finnes i pakkeregistrene; sykehuset legger inn "
         "NB-Whisper large\n   (asr.model i innstillingene) for langt lavere feilrate, uten kodeendring.")


def _note_part() -> None:
    from app.settings import load_settings
    from summarize.consultation.engine import Scribe
    from summarize.draft.note import note_text
    from summarize.templates.template import load_template
    from summarize.transcript_io import read_transcript

    template = load_template(TEMPLATE)
    utterances = read_transcript(CONSULTATION)
    _header("2/2", "Utkast til journalnotat fra en oppdiktet konsultasjon",
            f"Fastlegekontroll av høyt blodtrykk ({len(utterances)} replikker). Kilde: konsultasjonens "
            "teksttranskript\n   (demodata, ingen ekte pasient), ikke lyd. Mal: "
            f"{template.title} ({template.id}, versjon {template.version}).")
    for u in utterances:
        who = {"lege": "Lege", "pasient": "Pasient", "pårørende": "Pårørende"}.get(u.speaker or "", "Taler")
        _say(f"   {who}: {u.text}")
    settings = load_settings()
    _say(f"\n   laster språkmodellen ({settings.llm.model or 'den innebygde'}) …")
    t_load = time.perf_counter()
    scribe = Scribe(settings)
    engine = scribe.load_llm()
    consultation = scribe.consultation(template, live=False)
    consultation.start()
    consultation.add_utterances(utterances)
    progress = _Progress(sys.stderr)
    t0 = time.perf_counter()
    try:
        try:
            result = consultation.draft(on_progress=progress)
        finally:
            progress.close()
        took = time.perf_counter() - t0
        _say(f"   lastet på {t0 - t_load:.1f} s; utkastet tok {took:.0f} s ({engine.model_id}, CPU).\n")
        _say("UTKAST – DEMO PÅ OPPDIKTEDE DATA. Laget av programvare; klinikeren kontrollerer, retter og "
             "godkjenner notatet.\n")
        _say(note_text(result, template))
    finally:
        consultation.end(audit=False)  # a demo draft is never delivered: wiped, no audit line
        scribe.close()


def cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    _say("ambient-scribe – demo på innebygde modeller og oppdiktede data (ingen ekte pasient, ingenting lagres).")
    _say("Programvaren lager bare utkast; klinikeren kontrollerer og godkjenner hvert notat.")
    if not args.skip_transcript:
        _transcript_part()
    if not args.skip_note:
        _note_part()
    _say(f"\n{RULE}\nFerdig på {time.perf_counter() - t0:.0f} s. Videre:")
    _say("  egen lydfil:         scribe note OPPTAK.wav --template allmennmedisin   (WAV, FLAC, MP3, OGG)")
    _say("  eget transkript:     scribe note --transcript FIL.txt --template allmennmedisin   "
         "(én replikk per linje, 'Lege:'/'Pasient:')")
    _say("  mikrofonen, live:    scribe transcribe --mic")
    _say("  skrivebordsappen:    scribe app   (Ta opp → utkast → gjennomgå → Godkjenn)")
    _say("  maler:               scribe templates list")
    return 0
