"""Streaming vs offline transcription of one file, in one run.

    python -m benchmarks.asr_stream AUDIO REFERENCE.txt [--model DIR] [--json OUT]

Baseline: faster-whisper's offline ``transcribe`` of the whole file with the same
model (beam 5, its default fallback and conditioning). Candidate: the streaming
transcriber fed by a real-time replay of the file on the wall clock, exactly as the
microphone would feed it. Reports WER and CER of both (lower-case, punctuation removed,
æøå kept), the WER ratio, RTF (decode compute time / audio time) of each path and in
total, display latency (per committed word: from its end in the audio to the first
tentative or committed text on screen that shows it), commit latency (``emitted_at -
end`` per committed segment) p50/p95 and peak RSS; prints a table and writes JSON with
the machine's fingerprint.

``--long 30`` instead replays the file repeated to 30 minutes: peak RSS after 5, 15
and 30 minutes and the RTF of each 5-minute block (flat memory, steady speed).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import difflib
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from asr.agreement import normalize_word
from asr.engine import AsrConfig, AsrEngine
from asr.errors import ScribeError
from asr.evaluation import error_rates
from asr.pipeline import run_stream
from asr.sources import FileSource
from asr.types import SAMPLE_RATE, Segment, Tentative, words_text
from hardware.fingerprint import fingerprint
from hardware.memory import PeakRss

TARGETS = {
    "wer_ratio_max": 1.05,
    "display_p50_max_s": 1.5,
    "display_p95_max_s": 3.0,
    "commit_p95_max_s": 6.0,
    "rtf_max": 0.35,
    "long_rss_growth_max_mb": 50.0,
    "long_rtf_drift_max": 0.15,
}


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def display_latencies(segments: list[Segment], tentatives: list[Tentative]) -> list[float]:
    """For each committed word: the time from its end in the audio to the first event on
    screen that shows it, a tentative text or the committed segment itself.

    A tentative text shows a committed word when the word lies in the audio the tentative
    covered (``start``..``end``, 0.3 s tolerance) and the two align: the tentative's words
    are matched to the committed words of that stretch in order (difflib), so a common
    word elsewhere in the window does not count."""
    words = [(w, seg.emitted_at) for seg in segments for w in seg.words]
    shown = [at for _, at in words]
    keys = [normalize_word(w.word) for w, _ in words]
    starts = [w.start for w, _ in words]
    for t in tentatives:
        tokens = [k for k in (normalize_word(x) for x in t.text.split()) if k]
        if not tokens:
            continue
        lo = bisect.bisect_left(starts, t.start - 0.3)
        hi = lo
        while hi < len(words) and words[hi][0].start < t.end + 0.3:
            hi += 1
        matcher = difflib.SequenceMatcher(a=keys[lo:hi], b=tokens, autojunk=False)
        for block in matcher.get_matching_blocks():
            for i in range(lo + block.a, lo + block.a + block.size):
                shown[i] = min(shown[i], t.emitted_at)
    return [at - w.end for (w, _), at in zip(words, shown, strict=True)]


class _Recorder:
    """Keeps what the benchmark needs of the events: segments and the tentatives' times."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.segments: list[Segment] = []
        self.tentatives: list[Tentative] = []
        self.tentative_count = 0

    def __call__(self, ev: Any) -> None:
        if isinstance(ev, Segment):
            if self.keep:
                self.segments.append(ev)
        elif isinstance(ev, Tentative) and ev.text:
            self.tentative_count += 1
            if self.keep:
                self.tentatives.append(ev)


def _engine(model: str | None, single_path: bool) -> AsrEngine:
    config = AsrConfig(model=model)
    if single_path:  # issue #2's policy: LocalAgreement re-decodes in every utterance, no cheap path
        streaming = dataclasses.replace(config.streaming, tentative_every_s=0.0, agree_after_s=0.0)
        config = dataclasses.replace(config, streaming=streaming, tentative="off")
    return AsrEngine(config)


def run(audio_path: Path, reference_path: Path, model: str | None, realtime: bool = True,
        single_path: bool = False) -> dict[str, Any]:
    reference = reference_path.read_text(encoding="utf-8")
    engine = _engine(model, single_path)
    source = FileSource(audio_path, realtime=realtime)
    audio = source.audio
    duration = source.duration

    with PeakRss() as mem_offline:
        t0 = time.perf_counter()
        offline_words = engine.transcribe_offline(audio)
        offline_s = time.perf_counter() - t0
    offline_text = words_text(offline_words)

    recorder = _Recorder()
    with PeakRss() as mem_stream:
        result = run_stream(source, lambda clock: engine.transcriber(clock), on_event=recorder)
    stream_text = result.transcript.text

    off = error_rates(reference, offline_text)
    st = error_rates(reference, stream_text)
    lat = result.latencies
    display = display_latencies(recorder.segments, recorder.tentatives)
    s = engine.config.streaming
    record: dict[str, Any] = {
        "benchmark": "asr_stream",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "audio": audio_path.name,
        "audio_s": round(duration, 3),
        "model": engine.model_id,
        "model_dir": str(engine.model_dir),
        "device": engine.device,
        "compute_type": engine.compute_type,
        "policy": "single path (issue #2)" if single_path else "two paths",
        "streaming_options": {
            "realtime": realtime,
            **{k: getattr(s, k) for k in ("min_chunk_s", "agree_after_s", "max_buffer_s", "prompt_chars",
                                          "tentative_every_s", "tentative_window_s", "tentative_budget")},
            "tentative": engine.config.tentative,
            "beam_size": engine.config.decode.beam_size,
            "interim_beam_size": engine.config.decode.interim_beam_size,
            "vad_aggressiveness": engine.config.vad.aggressiveness,
            "end_silence_s": engine.config.vad.end_silence_s,
        },
        "offline": {
            "wer": off.wer, "cer": off.cer, "processing_s": offline_s,
            "rtf": offline_s / duration, "peak_rss_mb": mem_offline.peak_mb,
        },
        "streaming": {
            "wer": st.wer, "cer": st.cer, "processing_s": result.processing_s,
            "rtf": result.rtf, "wall_s": result.wall_s, "segments": len(result.transcript.segments),
            "rtf_accurate": result.path_rtf("accurate"), "rtf_tentative": result.path_rtf("tentative"),
            "decodes_accurate": result.paths.get("accurate", {}).get("decodes"),
            "decodes_tentative": result.paths.get("tentative", {}).get("decodes"),
            "tentatives_shown": recorder.tentative_count,
            "latency_p50_s": _pct(lat, 50), "latency_p95_s": _pct(lat, 95),
            "latency_max_s": max(lat) if lat else None,
            "display_p50_s": _pct(display, 50), "display_p95_s": _pct(display, 95),
            "display_max_s": max(display) if display else None,
            "peak_rss_mb": mem_stream.peak_mb,
        },
        "wer_ratio": st.wer / off.wer if off.wer > 0 else None,
        "targets": TARGETS,
        "machine": fingerprint(),
    }
    s_ = record["streaming"]
    record["pass"] = {
        "wer_ratio": record["wer_ratio"] is not None and record["wer_ratio"] <= TARGETS["wer_ratio_max"],
        "display_p50": s_["display_p50_s"] is not None and s_["display_p50_s"] <= TARGETS["display_p50_max_s"],
        "display_p95": s_["display_p95_s"] is not None and s_["display_p95_s"] <= TARGETS["display_p95_max_s"],
        "commit_p95": s_["latency_p95_s"] is not None and s_["latency_p95_s"] <= TARGETS["commit_p95_max_s"],
        "rtf": s_["rtf"] <= TARGETS["rtf_max"],
    }
    result.transcript.clear()
    return record


class _BlockTimer:
    """Wraps a transcriber: compute time spent per block of ``block_s`` audio seconds."""

    def __init__(self, inner: Any, block_s: float) -> None:
        self.inner = inner
        self.block_s = block_s
        self.blocks: dict[int, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _timed(self, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args)
        key = int(self.inner.audio_end // self.block_s)
        self.blocks[key] = self.blocks.get(key, 0.0) + time.perf_counter() - t0
        return out

    def insert_audio_chunk(self, chunk: Any) -> None:
        self._timed(self.inner.insert_audio_chunk, chunk)

    def process_iter(self) -> list[Any]:
        return list(self._timed(self.inner.process_iter))

    def finish(self) -> list[Any]:
        return list(self._timed(self.inner.finish))


def run_long(audio_path: Path, minutes: float, model: str | None, realtime: bool = True,
             block_s: float = 300.0) -> dict[str, Any]:
    """``audio_path`` repeated to ``minutes`` and replayed (real time by default): peak RSS
    after 5, 15 and 30 minutes (scaled to the length) and the RTF of each 5-minute block."""
    engine = _engine(model, single_path=False)
    source = FileSource(audio_path, realtime=realtime)
    one = source.audio
    total = int(minutes * 60 * SAMPLE_RATE)
    source.audio = np.tile(one, total // len(one) + 1)[:total]
    marks = [m * 60 for m in (5, 15, 30) if m <= minutes] or [minutes * 60]
    rss_at: dict[str, float] = {}
    timer: list[_BlockTimer] = []
    recorder = _Recorder(keep=False)

    def make(clock: Any) -> _BlockTimer:
        timer.append(_BlockTimer(engine.transcriber(clock), block_s))
        return timer[0]

    with PeakRss(interval_s=0.5) as mem:
        def progress(audio_s: float) -> None:
            for m in marks:
                key = f"{m / 60:g} min"
                if audio_s >= m and key not in rss_at:
                    rss_at[key] = mem.peak_mb

        result = run_stream(source, make, on_event=recorder, on_progress=progress)
    rss_at.setdefault(f"{marks[-1] / 60:g} min", mem.peak_mb)
    blocks = timer[0].blocks
    n_full = int(result.audio_s // block_s)
    block_rtf = [round(blocks.get(i, 0.0) / block_s, 4) for i in range(n_full)]
    first_rss = rss_at[f"{marks[0] / 60:g} min"]
    last_rss = rss_at[f"{marks[-1] / 60:g} min"]
    record: dict[str, Any] = {
        "benchmark": "asr_stream_long",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "audio": f"{audio_path.name} × {len(source.audio) / len(one):.1f}",
        "audio_s": round(result.audio_s, 1),
        "realtime": realtime,
        "rss_mb_at": {k: round(v, 1) for k, v in rss_at.items()},
        "rss_growth_mb": round(last_rss - first_rss, 1),
        "block_rtf": block_rtf,
        "rtf": result.rtf,
        "rtf_accurate": result.path_rtf("accurate"),
        "rtf_tentative": result.path_rtf("tentative"),
        "segments": len(result.transcript.segments),
        "tentatives_shown": recorder.tentative_count,
        "commit_p95_s": _pct(result.latencies, 95),
        "machine": fingerprint(),
    }
    drift = (block_rtf[-1] - block_rtf[0]) / block_rtf[0] if len(block_rtf) >= 2 and block_rtf[0] > 0 else None
    record["rtf_drift"] = drift
    record["pass"] = {
        "rss_growth": record["rss_growth_mb"] <= TARGETS["long_rss_growth_max_mb"],
        "rtf_drift": drift is not None and drift <= TARGETS["long_rtf_drift_max"],
    }
    result.transcript.clear()
    return record


def _drug_counts(text: str) -> Counter[str]:
    from summarize.grounding.drugs import canonical_drug, drug_mentions

    return Counter(canonical_drug(m.name) for m in drug_mentions(text, fuzzy=False))


def drug_recognition(reference: str, hypothesis: str) -> tuple[int, int]:
    """(drug mentions of the reference that the hypothesis has right, mentions in the
    reference): exact lexicon names (inflections allowed, no fuzzy matching), counted per
    active substance, so "Cipralex" for "escitalopram" counts."""
    ref, hyp = _drug_counts(reference), _drug_counts(hypothesis)
    return sum(min(n, hyp[k]) for k, n in ref.items()), sum(ref.values())


def run_vocabulary(directory: Path, model: str | None) -> dict[str, Any]:
    """Drug-name recognition and WER on labelled consultations (``*.flac`` with ``*.yaml``
    turns), step by step: no vocabulary; the template's vocabulary in Whisper's prompt
    (the shipped setting); plus the post-correction of unsure words (with and without
    the Norwegian word lists). The accurate path only, files read at once."""
    import yaml

    from summarize.grounding.asr_correction import NorwegianWords, TermCorrector
    from summarize.templates.template import load_template

    engine = _engine(model, single_path=False)
    steps = ["no vocabulary", "vocabulary in the prompt", "+ correction", "+ correction without word lists"]
    totals = {k: Counter[str]() for k in steps}
    cases = []
    for yml in sorted(directory.glob("*.yaml")):
        flac = yml.with_suffix(".flac")
        if not flac.is_file():
            continue
        case = yaml.safe_load(yml.read_text(encoding="utf-8"))
        reference = " ".join(t["text"] for t in case["turns"])
        vocabulary = tuple(load_template(case.get("specialty", "allmennmedisin")).vocabulary)
        texts: dict[str, str] = {}
        fixes: dict[str, int] = {}
        source = FileSource(flac)
        for step, vocab in ((steps[0], ()), (steps[1], vocabulary)):
            result = run_stream(source, lambda clock, v=vocab: engine.transcriber(clock, vocabulary=v, tentative=False))
            segments = list(result.transcript.segments)
            texts[step] = " ".join(seg.text for seg in segments)
            source = FileSource(flac)
        for step, words in ((steps[2], None), (steps[3], NorwegianWords([]))):
            corrector = TermCorrector(vocabulary, dictionary=words)
            fixed = [corrector.correct_segment(seg) for seg in segments]
            texts[step] = " ".join(seg.text for seg, _ in fixed)
            fixes[step] = sum(len(c) for _, c in fixed)
        row: dict[str, Any] = {"case": case["id"], "audio_s": round(source.duration, 1)}
        for step in steps:
            ok, n = drug_recognition(reference, texts[step])
            rates = error_rates(reference, texts[step])
            row[step] = {"drugs_right": ok, "drugs": n, "wer": rates.wer, "corrections": fixes.get(step, 0)}
            t = totals[step]
            t["right"] += ok
            t["n"] += n
            t["errors"] += round(rates.wer * rates.reference_words)
            t["words"] += rates.reference_words
            t["corrections"] += fixes.get(step, 0)
        cases.append(row)
    return {
        "benchmark": "asr_vocabulary",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "directory": str(directory),
        "model": engine.model_id,
        "steps": steps,
        "cases": cases,
        "totals": {k: {"drugs_right": v["right"], "drugs": v["n"], "wer": v["errors"] / max(1, v["words"]),
                       "corrections": v["corrections"]} for k, v in totals.items()},
        "machine": fingerprint(),
    }


def vocabulary_table(r: dict[str, Any]) -> str:
    lines = [f"{'case':38s} " + "  ".join(f"{s[:26]:>26s}" for s in r["steps"])]
    for row in [*r["cases"], {"case": "ALL", **r["totals"]}]:
        cells = []
        for s in r["steps"]:
            c = row[s]
            right, n = c.get("drugs_right", 0), c.get("drugs", 0)
            cells.append(f"{right:>3}/{n:<3} WER {c['wer']:.1%} ({c['corrections']} fix)".rjust(26))
        lines.append(f"{row['case']:38s} " + "  ".join(cells))
    lines.append("cells: drug mentions right / drug mentions in the reference, WER, corrections made")
    return "\n".join(lines)


def table(r: dict[str, Any]) -> str:
    o, s = r["offline"], r["streaming"]

    def f(v: Any, fmt: str = "{:.3f}") -> str:
        return "—" if v is None else fmt.format(v)

    rows = [
        ("", "offline (baseline)", f"streaming, real time ({r['policy']})"),
        ("WER", f(o["wer"], "{:.1%}"), f(s["wer"], "{:.1%}")),
        ("CER", f(o["cer"], "{:.1%}"), f(s["cer"], "{:.1%}")),
        ("RTF total", f(o["rtf"]), f(s["rtf"])),
        ("RTF accurate path", "—", f(s["rtf_accurate"])),
        ("RTF tentative path", "—", f(s["rtf_tentative"])),
        ("decodes accurate / tentative", "—", f"{s['decodes_accurate']} / {s['decodes_tentative']}"),
        ("display latency p50 s", "—", f(s["display_p50_s"], "{:.2f}")),
        ("display latency p95 s", "—", f(s["display_p95_s"], "{:.2f}")),
        ("commit latency p50 s", "—", f(s["latency_p50_s"], "{:.2f}")),
        ("commit latency p95 s", "—", f(s["latency_p95_s"], "{:.2f}")),
        ("peak RSS MB", f(o["peak_rss_mb"], "{:.0f}"), f(s["peak_rss_mb"], "{:.0f}")),
        ("segments / tentatives shown", "—", f"{s['segments']} / {s['tentatives_shown']}"),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(width[i]) for i, c in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in width))
    passed = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in r["pass"].items())
    lines.append(f"WER ratio streaming/offline: {f(r['wer_ratio'])} (target ≤ {TARGETS['wer_ratio_max']}); {passed}")
    lines.append(
        f"{r['audio']} ({r['audio_s']:.1f} s), {r['model']} on {r['device']}/{r['compute_type']}, "
        f"{r['machine']['cpu']}, {r['machine']['cores_logical']} threads"
    )
    return "\n".join(lines)


def long_table(r: dict[str, Any]) -> str:
    rss = ", ".join(f"{k} {v:.0f} MB" for k, v in r["rss_mb_at"].items())
    drift = "—" if r["rtf_drift"] is None else f"{r['rtf_drift']:+.1%}"
    passed = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in r["pass"].items())
    return "\n".join([
        f"long run: {r['audio']} = {r['audio_s'] / 60:.1f} min ({'real time' if r['realtime'] else 'fast replay'})",
        f"peak RSS after {rss}; growth {r['rss_growth_mb']:+.1f} MB (target ≤ {TARGETS['long_rss_growth_max_mb']:.0f})",
        f"RTF per 5-min block: {', '.join(f'{x:.3f}' for x in r['block_rtf'])}; last vs first {drift} "
        f"(target within {TARGETS['long_rtf_drift_max']:.0%})",
        f"RTF total {r['rtf']:.3f} (accurate {r['rtf_accurate']:.3f}, tentative {r['rtf_tentative']:.3f}); "
        f"{r['segments']} segments, {r['tentatives_shown']} tentatives; commit p95 {r['commit_p95_s'] or 0:.2f} s",
        passed,
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asr_stream", description=__doc__.split("\n\n")[0])
    p.add_argument("audio", type=Path)
    p.add_argument("reference", type=Path, help="the official text of the recording")
    p.add_argument("--model", help="CTranslate2 Whisper directory (default: the embedded model)")
    p.add_argument("--json", type=Path, help="where to write the JSON record (default benchmarks/results/)")
    p.add_argument("--fast", action="store_true", help="replay as fast as possible instead of real time")
    p.add_argument("--single-path", action="store_true",
                   help="issue #2's policy for comparison (LocalAgreement in every utterance, no cheap path)")
    p.add_argument("--long", type=float, metavar="MIN",
                   help="instead: the file repeated to MIN minutes (30 for the acceptance run); RSS and RTF over time")
    p.add_argument("--vocabulary", type=Path, metavar="DIR",
                   help="instead: drug-name recognition and WER on DIR's labelled consultations, step by step "
                   "(AUDIO and REFERENCE are then ignored; pass - -)")
    args = p.parse_args(argv)
    try:
        if args.vocabulary:
            if not args.vocabulary.is_dir():
                raise ScribeError(f"not a directory: {args.vocabulary}")
            record = run_vocabulary(args.vocabulary, args.model)
            print(vocabulary_table(record))
            return _write(record, args.json, "asr_vocabulary")
        if not args.reference.is_file():
            raise ScribeError(f"reference text not found: {args.reference}")
        if args.long:
            record = run_long(args.audio, args.long, args.model, realtime=not args.fast)
            text = long_table(record)
        else:
            record = run(args.audio, args.reference, args.model, realtime=not args.fast, single_path=args.single_path)
            text = table(record)
    except ScribeError as exc:
        print(f"asr_stream: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text)
    return _write(record, args.json, "asr_stream_long" if args.long else "asr_stream")


def _write(record: dict[str, Any], path: Path | None, name: str) -> int:
    out = path or Path(__file__).parent / "results" / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
