"""Who said it: speaker roles from the voices, measured on labelled consultations (issue #19).

    python -m benchmarks.speakers [FOLDER ...] [--profile-audio REC] [--one-voice AUDIO]
                                  [--notes | --no-notes] [--llm NAME|DIR] [--json OUT]

For each consultation (``*.flac`` + ``*.turns.json`` + ``*.yaml``; default the shared ones,
or the copies in ``tests/data/consultations``):

1. the audio is transcribed once by the streaming transcriber (embedded Whisper base, int8,
   as fast as it goes): the baseline RTF and peak RSS;
2. its committed segments are replayed, in the order and at the audio positions they were
   committed, through :class:`asr.speakers.stream.SpeakerStream` (the wrapper the app uses),
   once without a voice profile and once with the clinician's profile enrolled from a separate
   recording (``tests/data/voice/lege-passage.flac``: espeak-ng with the clinician's voice
   settings of ``../shared/tools/synth_consultation.py`` reading the microphone test's
   passage). The speaker work runs after each commit on the transcriber's thread, so its
   time is what it adds to the streaming RTF and to the commit latency (per commit, p50/p95);
3. scores against the labelled turns (:mod:`asr.speakers.evaluation`): role accuracy and
   clinician-vs-other accuracy (shares of speech time) and cluster purity;
4. with ``--notes``: the note drafted from the audio's segments with the roles (profile and
   no profile) and without (every speaker None), fact recall of each (the LLM: embedded
   Qwen2.5-Coder-1.5B unless ``--llm``).

``--one-voice AUDIO`` (default ``app/demo/king.mp3``, real speech of one man) must come out
as one voice. Baselines and candidates run in the same process on the same machine; the JSON
(with the machine's fingerprint) goes to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import ScribeError
from benchmarks.output import write_record
from hardware.fingerprint import fingerprint
from hardware.memory import PeakRss

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"clinician_profile_min": 0.95, "role_profile_min": 0.90, "clinician_no_profile_min": 0.85,
           "added_rtf_max": 0.05, "added_rss_mb_max": 150.0, "added_latency_p95_max_s": 0.3}
PROFILE_AUDIO = ROOT / "tests" / "data" / "voice" / "lege-passage.flac"
ONE_VOICE = ROOT / "app" / "demo" / "king.mp3"


def default_folders() -> list[Path]:
    shared = ROOT.parent / "shared" / "data" / "consultations"
    return [shared if shared.is_dir() else ROOT / "tests" / "data" / "consultations"]


class _Replay:
    """A transcriber stand-in that gives back recorded segments when the audio reaches the
    point where the real transcriber committed them."""

    def __init__(self, committed: list[tuple[float, Any]]) -> None:
        self._pending = sorted(committed, key=lambda c: c[0])
        self.audio_end = 0.0

    def insert_audio_chunk(self, chunk: Any) -> None:
        self.audio_end = max(self.audio_end, chunk.end)

    def process_iter(self) -> list[Any]:
        out = [seg for at, seg in self._pending if at <= self.audio_end]
        self._pending = [(at, seg) for at, seg in self._pending if at > self.audio_end]
        return out

    def finish(self) -> list[Any]:
        out, self._pending = [seg for _, seg in self._pending], []
        return out

    def wipe(self) -> None:
        self._pending = []


def transcribe(engine: Any, audio: np.ndarray) -> tuple[list[tuple[float, Any]], dict[str, Any]]:
    """Stream the audio through Whisper once: the committed segments with the audio position
    at which each was committed, and the run's numbers."""
    from asr.pipeline import run_stream
    from asr.sources import ArraySource
    from asr.types import Segment

    committed: list[tuple[float, Any]] = []
    state = {"pos": 0.0}
    transcriber_box: list[Any] = []

    def make(clock: Any) -> Any:
        t = engine.transcriber(clock)
        transcriber_box.append(t)
        return t

    def on_event(ev: Any) -> None:
        if isinstance(ev, Segment) and ev.text.strip():
            committed.append((transcriber_box[0].audio_end if transcriber_box else state["pos"], ev))

    with PeakRss() as mem:
        result = run_stream(ArraySource(audio), make, on_event=on_event)
    return committed, {"audio_s": result.audio_s, "processing_s": result.processing_s, "rtf": result.rtf,
                       "peak_rss_mb": mem.peak_mb, "segments": len(committed)}


def replay(encoder: Any, profile: Any, audio: np.ndarray, committed: list[tuple[float, Any]],
           main_other: str = "pasient") -> tuple[list[Any], dict[str, Any]]:
    """The segments through the speaker wrapper as the app runs it; (labelled segments, costs)."""
    from asr.speakers.stream import SpeakerStream
    from asr.speakers.tracker import SpeakerOptions, SpeakerTracker
    from asr.types import SAMPLE_RATE, AudioChunk

    tracker = SpeakerTracker(encoder, profile.embedding if profile is not None else None,
                             SpeakerOptions(main_other=main_other))
    stream = SpeakerStream(_Replay(committed), tracker)
    per_commit: list[float] = []
    step = SAMPLE_RATE // 10
    for i in range(0, len(audio), step):
        stream.insert_audio_chunk(AudioChunk(audio[i:i + step].copy(), i / SAMPLE_RATE))  # the wipe zeroes it
        before = stream.seconds
        if stream.process_iter() and stream.seconds > before:
            per_commit.append(stream.seconds - before)
    stream.finish()
    segments = list(stream.transcript.segments)
    costs = {"seconds": stream.seconds, "per_commit": per_commit, "voices": tracker.assignment.voices,
             "method": tracker.assignment.method, "confidence": tracker.assignment.confidence}
    stream.wipe()
    return segments, costs


def _case_files(folder: Path) -> list[tuple[Path, Path, Path]]:
    out = []
    for turns in sorted(folder.glob("*.turns.json")):
        stem = turns.name[: -len(".turns.json")]
        audio = next((folder / f"{stem}{ext}" for ext in (".flac", ".wav", ".ogg") if (folder / f"{stem}{ext}").exists()),
                     None)
        yaml_path = folder / f"{stem}.yaml"
        if audio is not None and yaml_path.exists():
            out.append((audio, turns, yaml_path))
    return out


def _main_speaker(yaml_path: Path) -> str:
    """The template's main voice besides the clinician's (pediatri: pårørende)."""
    import yaml

    from asr.errors import ScribeError as _Err
    from benchmarks.note_quality import template_for

    specialty = (yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}).get("specialty", "allmennmedisin")
    try:
        return str(template_for(specialty).main_speaker)
    except (_Err, OSError, ValueError):
        return "pasient"


def _note_recall(scribe: Any, case: dict[str, Any], segments: list[Any], template: Any) -> float:
    from benchmarks.note_quality import measured

    c = scribe.consultation(template, live=False)
    c.start()
    for seg in segments:
        c.add_segment(seg)
    c.stop()
    return float(measured(c, case, template)["fact_recall"])


def run(folders: list[Path], profile_audio: Path, one_voice: Path | None, notes: bool, llm: str | None) -> dict[str, Any]:
    import dataclasses

    from asr.engine import AsrConfig, AsrEngine
    from asr.sources import decode_file
    from asr.speakers.encoder import VoiceEncoder
    from asr.speakers.evaluation import score
    from hardware.voice import enroll

    engine = AsrEngine(AsrConfig())
    engine.decoder()
    with PeakRss() as load_mem:
        encoder = VoiceEncoder()
    profile = enroll(decode_file(profile_audio)[0], encoder)
    scribe = None
    if notes:
        from app.settings import load_settings
        from summarize.consultation.engine import Scribe

        scribe = Scribe(load_settings(llm={"model": llm}, speakers={"mode": "off"}), asr=engine)
        scribe.load_llm()
    cases: list[dict[str, Any]] = []
    for folder in folders:
        for audio_path, turns_path, yaml_path in _case_files(folder):
            audio, _ = decode_file(audio_path)
            turns = json.loads(turns_path.read_text(encoding="utf-8"))
            committed, asr = transcribe(engine, audio)
            main_other = _main_speaker(yaml_path)
            row: dict[str, Any] = {"id": audio_path.stem, "set": folder.name, "asr": asr, "main_other": main_other}
            with PeakRss() as mem:
                for name, prof in (("no_profile", None), ("profile", profile)):
                    segments, costs = replay(encoder, prof, audio, committed, main_other)
                    row[name] = {**score(segments, turns).to_dict(), "voices_found": costs["voices"],
                                 "method": costs["method"], "confidence": round(costs["confidence"], 2),
                                 "speaker_s": costs["seconds"], "per_commit": costs["per_commit"]}
                    row[f"_{name}_segments"] = segments
            row["speaker_peak_rss_mb"] = mem.peak_mb
            if scribe is not None:
                from benchmarks.note_quality import load_case, template_for

                case = load_case(yaml_path)
                template = template_for(case["specialty"])
                with_profile, no_profile = row["_profile_segments"], row["_no_profile_segments"]
                plain = [dataclasses.replace(s, speaker=None, speaker_id=None) for s in with_profile]
                recall_profile = _note_recall(scribe, case, with_profile, template)
                same = [(s.start, s.speaker) for s in no_profile] == [(s.start, s.speaker) for s in with_profile]
                row["fact_recall"] = {  # the same roles draft the same note: drafted once
                    "without_roles": _note_recall(scribe, case, plain, template),
                    "roles_no_profile": recall_profile if same else _note_recall(scribe, case, no_profile, template),
                    "roles_profile": recall_profile,
                }
            row.pop("_no_profile_segments")
            row.pop("_profile_segments")
            cases.append(row)
            print(f"  {row['set']}/{row['id']}: clinician {row['no_profile']['clinician_accuracy']:.3f} / "
                  f"{row['profile']['clinician_accuracy']:.3f} (no profile / profile)", file=sys.stderr)
    one = None
    if one_voice is not None and one_voice.exists():
        audio, _ = decode_file(one_voice)
        committed, _asr = transcribe(engine, audio)
        segments, costs = replay(encoder, None, audio, committed)
        one = {"file": one_voice.name, "voices_found": costs["voices"],
               "segments": len(segments), "ids": sorted({s.speaker_id for s in segments if s.speaker_id is not None})}
    return summarize(cases, one, load_mem.peak_mb - load_mem.base_bytes / 2**20, profile.summary())


def _weighted(cases: list[dict[str, Any]], variant: str, key: str) -> float:
    total = sum(c[variant]["seconds"] for c in cases)
    return sum(c[variant][key] * c[variant]["seconds"] for c in cases) / total if total else 0.0


def summarize(cases: list[dict[str, Any]], one: dict[str, Any] | None, encoder_mb: float,
              profile: dict[str, Any]) -> dict[str, Any]:
    sets: dict[str, dict[str, Any]] = {}
    for name in sorted({c["set"] for c in cases}):
        sub = [c for c in cases if c["set"] == name]
        sets[name] = {v: {k: round(_weighted(sub, v, k), 4) for k in ("role_accuracy", "clinician_accuracy", "purity")}
                      for v in ("no_profile", "profile")}
    audio_s = sum(c["asr"]["audio_s"] for c in cases)
    asr_s = sum(c["asr"]["processing_s"] for c in cases)
    speaker_s = max(sum(c[v]["speaker_s"] for c in cases) for v in ("no_profile", "profile"))
    per_commit = [t for c in cases for v in ("no_profile", "profile") for t in c[v]["per_commit"]]
    for c in cases:
        for v in ("no_profile", "profile"):
            c[v].pop("per_commit")
    asr_peak = max(c["asr"]["peak_rss_mb"] for c in cases) if cases else 0.0
    speaker_peak = max(c["speaker_peak_rss_mb"] for c in cases) if cases else 0.0
    record: dict[str, Any] = {
        "benchmark": "speakers",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile,
        "cases": cases,
        "sets": sets,
        "cost": {
            "audio_s": round(audio_s, 1),
            "asr_rtf": round(asr_s / audio_s, 4) if audio_s else None,
            "speaker_rtf": round(speaker_s / audio_s, 4) if audio_s else None,
            "total_rtf": round((asr_s + speaker_s) / audio_s, 4) if audio_s else None,
            "per_commit_p50_s": round(float(np.percentile(per_commit, 50)), 4) if per_commit else None,
            "per_commit_p95_s": round(float(np.percentile(per_commit, 95)), 4) if per_commit else None,
            "encoder_load_mb": round(encoder_mb, 1),
            "asr_peak_rss_mb": round(asr_peak, 1),
            "with_speakers_peak_rss_mb": round(max(asr_peak, speaker_peak), 1),
            "added_rss_mb": round(max(0.0, speaker_peak - asr_peak) + max(0.0, encoder_mb), 1),
        },
        "one_voice": one,
        "targets": TARGETS,
        "machine": fingerprint(),
    }
    if any("fact_recall" in c for c in cases):
        record["fact_recall"] = {k: round(float(np.mean([c["fact_recall"][k] for c in cases if "fact_recall" in c])), 4)
                                 for k in ("without_roles", "roles_no_profile", "roles_profile")}
    first = sets[sorted(sets)[0]] if sets else None
    cost = record["cost"]
    record["pass"] = {
        "clinician_profile": bool(first) and first["profile"]["clinician_accuracy"] >= TARGETS["clinician_profile_min"],
        "role_profile": bool(first) and first["profile"]["role_accuracy"] >= TARGETS["role_profile_min"],
        "clinician_no_profile": bool(first) and first["no_profile"]["clinician_accuracy"] >= TARGETS["clinician_no_profile_min"],
        "added_rtf": cost["speaker_rtf"] is not None and cost["speaker_rtf"] <= TARGETS["added_rtf_max"],
        "added_rss": cost["added_rss_mb"] <= TARGETS["added_rss_mb_max"],
        "added_latency_p95": (cost["per_commit_p95_s"] is not None
                              and cost["per_commit_p95_s"] <= TARGETS["added_latency_p95_max_s"]),
        "one_voice": one is None or one["voices_found"] == 1,
    }
    if "fact_recall" in record:
        fr = record["fact_recall"]
        record["pass"]["fact_recall"] = min(fr["roles_profile"], fr["roles_no_profile"]) >= fr["without_roles"]
    return record


def table(r: dict[str, Any]) -> str:
    lines = [f"{'case':44} {'voices':>6}  {'role':>6} {'clin':>6} {'purity':>6}   {'role':>6} {'clin':>6} {'purity':>6}",
             f"{'':44} {'':>6}  {'(no profile)':>20}   {'(profile)':>20}"]
    for c in r["cases"]:
        a, b = c["no_profile"], c["profile"]
        name = c["set"][:14] + "/" + c["id"]
        lines.append(f"{name:44.44} {a['voices_found']:>3}/{b['voices_found']:<2}  {a['role_accuracy']:6.3f} "
                     f"{a['clinician_accuracy']:6.3f} {a['purity']:6.3f}   {b['role_accuracy']:6.3f} "
                     f"{b['clinician_accuracy']:6.3f} {b['purity']:6.3f}")
    for name, s in r["sets"].items():
        a, b = s["no_profile"], s["profile"]
        label = f"ALL {name} (time-weighted)"
        lines.append(f"{label:44.44} {'':6}  {a['role_accuracy']:6.3f} {a['clinician_accuracy']:6.3f} "
                     f"{a['purity']:6.3f}   {b['role_accuracy']:6.3f} {b['clinician_accuracy']:6.3f} {b['purity']:6.3f}")
    c = r["cost"]
    lines.append(f"cost: streaming RTF {c['asr_rtf']} without speakers, {c['total_rtf']} with (+{c['speaker_rtf']}); "
                 f"per commit p50 {c['per_commit_p50_s']} s, p95 {c['per_commit_p95_s']} s; memory +{c['added_rss_mb']} MB "
                 f"(encoder {c['encoder_load_mb']} MB; peak {c['asr_peak_rss_mb']} → {c['with_speakers_peak_rss_mb']} MB)")
    if r.get("one_voice"):
        o = r["one_voice"]
        lines.append(f"one voice ({o['file']}): {o['voices_found']} voice(s) found in {o['segments']} segments")
    if r.get("fact_recall"):
        f = r["fact_recall"]
        lines.append(f"fact recall from audio: without roles {f['without_roles']:.3f}, roles without profile "
                     f"{f['roles_no_profile']:.3f}, roles with profile {f['roles_profile']:.3f}")
    lines.append("targets: " + ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in r["pass"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speakers", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="folders of consultations (audio + turns.json + yaml)")
    p.add_argument("--profile-audio", type=Path, default=PROFILE_AUDIO, help="the clinician's enrollment recording")
    p.add_argument("--one-voice", type=Path, default=ONE_VOICE, help="a recording of one speaker ('' to skip)")
    p.add_argument("--notes", action=argparse.BooleanOptionalAction, default=True,
                   help="also draft notes with and without roles (fact recall; the LLM)")
    p.add_argument("--llm", help="embedded LLM id or model directory for the notes")
    p.add_argument("--json", type=Path, help="where to write the JSON record (default benchmarks/results/)")
    args = p.parse_args(argv)
    try:
        folders = args.folders or default_folders()
        one = args.one_voice if str(args.one_voice) else None
        t0 = time.perf_counter()
        record = run(folders, args.profile_audio, one, args.notes, args.llm)
        record["wall_s"] = round(time.perf_counter() - t0, 1)
    except ScribeError as exc:
        print(f"benchmarks.speakers: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(table(record))
    write_record("speakers", record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
