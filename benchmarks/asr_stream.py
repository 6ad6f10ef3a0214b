"""Streaming vs offline transcription of one file, in one run.

    python -m benchmarks.asr_stream AUDIO REFERENCE.txt [--model DIR] [--json OUT]

Baseline: faster-whisper's offline ``transcribe`` of the whole file with the same
model (beam 5, its default fallback and conditioning). Candidate: the streaming
transcriber fed by a real-time replay of the file on the wall clock, exactly as the
microphone would feed it. Reports WER and CER of both (lower-case, punctuation removed,
æøå kept), the WER ratio, RTF (decode compute time / audio time), commit latency
(``emitted_at - end`` per committed segment) p50/p95 and peak RSS; prints a table and
writes JSON with the machine's fingerprint.
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

from asr.engine import AsrConfig, AsrEngine
from asr.errors import ScribeError
from asr.evaluation import error_rates
from asr.pipeline import run_stream
from asr.sources import FileSource
from asr.types import words_text
from hardware.fingerprint import fingerprint
from hardware.memory import PeakRss

TARGETS = {"wer_ratio_max": 1.10, "rtf_max": 0.3, "latency_p50_max_s": 2.0, "latency_p95_max_s": 3.5}


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def run(audio_path: Path, reference_path: Path, model: str | None, realtime: bool = True) -> dict[str, Any]:
    reference = reference_path.read_text(encoding="utf-8")
    engine = AsrEngine(AsrConfig(model=model))
    source = FileSource(audio_path, realtime=realtime)
    audio = source.audio
    duration = source.duration

    with PeakRss() as mem_offline:
        t0 = time.perf_counter()
        offline_words = engine.transcribe_offline(audio)
        offline_s = time.perf_counter() - t0
    offline_text = words_text(offline_words)

    with PeakRss() as mem_stream:
        result = run_stream(source, engine.transcriber)
    stream_text = result.transcript.text

    off = error_rates(reference, offline_text)
    st = error_rates(reference, stream_text)
    lat = result.latencies
    record: dict[str, Any] = {
        "benchmark": "asr_stream",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "audio": audio_path.name,
        "audio_s": round(duration, 3),
        "model": engine.model_id,
        "model_dir": str(engine.model_dir),
        "device": engine.device,
        "compute_type": engine.compute_type,
        "streaming_options": {
            "realtime": realtime,
            **{k: getattr(engine.config.streaming, k) for k in ("min_chunk_s", "max_buffer_s", "prompt_chars")},
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
            "latency_p50_s": _pct(lat, 50), "latency_p95_s": _pct(lat, 95),
            "latency_max_s": max(lat) if lat else None, "peak_rss_mb": mem_stream.peak_mb,
        },
        "wer_ratio": st.wer / off.wer if off.wer > 0 else None,
        "targets": TARGETS,
        "machine": fingerprint(),
    }
    s = record["streaming"]
    record["pass"] = {
        "wer_ratio": record["wer_ratio"] is not None and record["wer_ratio"] <= TARGETS["wer_ratio_max"],
        "rtf": s["rtf"] <= TARGETS["rtf_max"],
        "latency_p50": s["latency_p50_s"] is not None and s["latency_p50_s"] <= TARGETS["latency_p50_max_s"],
        "latency_p95": s["latency_p95_s"] is not None and s["latency_p95_s"] <= TARGETS["latency_p95_max_s"],
    }
    result.transcript.clear()
    return record


def table(r: dict[str, Any]) -> str:
    o, s = r["offline"], r["streaming"]

    def f(v: Any, fmt: str = "{:.3f}") -> str:
        return "—" if v is None else fmt.format(v)

    rows = [
        ("", "offline (baseline)", "streaming (real-time)"),
        ("WER", f(o["wer"], "{:.1%}"), f(s["wer"], "{:.1%}")),
        ("CER", f(o["cer"], "{:.1%}"), f(s["cer"], "{:.1%}")),
        ("RTF", f(o["rtf"]), f(s["rtf"])),
        ("processing s", f(o["processing_s"], "{:.1f}"), f(s["processing_s"], "{:.1f}")),
        ("commit latency p50 s", "—", f(s["latency_p50_s"], "{:.2f}")),
        ("commit latency p95 s", "—", f(s["latency_p95_s"], "{:.2f}")),
        ("peak RSS MB", f(o["peak_rss_mb"], "{:.0f}"), f(s["peak_rss_mb"], "{:.0f}")),
        ("segments", "—", str(s["segments"])),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(width[i]) for i, c in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in width))
    passed = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in r["pass"].items())
    lines.append(
        f"WER ratio streaming/offline: {f(r['wer_ratio'])} (target ≤ {TARGETS['wer_ratio_max']}); {passed}"
    )
    lines.append(
        f"{r['audio']} ({r['audio_s']:.1f} s), {r['model']} on {r['device']}/{r['compute_type']}, "
        f"{r['machine']['cpu']}, {r['machine']['cores_logical']} threads"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asr_stream", description=__doc__.split("\n\n")[0])
    p.add_argument("audio", type=Path)
    p.add_argument("reference", type=Path, help="the official text of the recording")
    p.add_argument("--model", help="CTranslate2 Whisper directory (default: the embedded model)")
    p.add_argument("--json", type=Path, help="where to write the JSON record (default benchmarks/results/)")
    p.add_argument("--fast", action="store_true", help="replay as fast as possible instead of real time")
    args = p.parse_args(argv)
    try:
        if not args.reference.is_file():
            raise ScribeError(f"reference text not found: {args.reference}")
        record = run(args.audio, args.reference, args.model, realtime=not args.fast)
    except ScribeError as exc:
        print(f"asr_stream: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(table(record))
    out = args.json or Path(__file__).parent / "results" / f"asr_stream-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
