"""Is every spoken turn in the record? The streaming transcriber over whole labelled consultations.

    python -m benchmarks.turn_coverage [FOLDER] [--paths accurate,two] [--json OUT]

For each consultation (``*.flac`` + ``*.turns.json``; default the copies in
``tests/data/consultations``) the audio is streamed as fast as it goes (the audio clock: every
chunk is processed, the most decodes a schedule can have) through the embedded Whisper, once
with the accurate path only and once with both paths as live (the cheap tentative decodes
on). A turn is covered when a committed word overlaps it; an uncovered turn is speech lost
from the record after a silence gap. Prints the uncovered turns and the time each run took.

The test suite runs the same check on a part of this (the whole takes about 35 minutes on a
2-core AMD EPYC without AVX-512, 8 on the Intel Xeon CI machines): the full set is here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.output import write_record
from hardware.fingerprint import fingerprint

DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / "tests" / "data" / "consultations"
PATHS = {"accurate": False, "two": True}


def uncovered_turns(engine: Any, flac: Path, *, tentative: bool, seconds: float | None = None) -> dict[str, Any]:
    """Stream ``flac`` (its first ``seconds``, or all) and list the labelled turns that no
    committed word overlaps, as ``"NAME turn N (a-b s)"``; with the run's facts."""
    from asr.pipeline import run_stream
    from asr.sources import FileSource
    from asr.types import SAMPLE_RATE

    turns = json.loads(flac.with_suffix("").with_suffix(".turns.json").read_text(encoding="utf-8"))
    source = FileSource(flac)
    if seconds is not None:
        source.audio = source.audio[: int(seconds * SAMPLE_RATE)]
        turns = [t for t in turns if t["end"] <= seconds]
    t0 = time.perf_counter()
    result = run_stream(source, lambda clock: engine.transcriber(clock, tentative=tentative))
    wall = time.perf_counter() - t0
    spans = [(w.start, w.end) for s in result.transcript.segments for w in s.words]
    missing = [f"{flac.stem} turn {t['turn']} ({t['start']:.1f}-{t['end']:.1f} s)"
               for t in turns if not any(a < t["end"] and b > t["start"] for a, b in spans)]
    result.transcript.clear()
    source.wipe()
    return {"consultation": flac.stem, "turns": len(turns), "uncovered": missing, "audio_s": result.audio_s,
            "last_turn_end": turns[-1]["end"] if turns else 0.0, "error": result.error, "wall_s": wall,
            "tentative_decodes": result.paths.get("tentative", {}).get("decodes", 0)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.turn_coverage", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="labelled consultations")
    p.add_argument("--paths", default="accurate,two", help="accurate, two, or both (comma-separated)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    a = p.parse_args(argv)
    files = sorted(a.folder.glob("*.flac"))
    paths = [x.strip() for x in a.paths.split(",") if x.strip()]
    if not files or any(x not in PATHS for x in paths):
        print(f"turn_coverage: error: no *.flac in {a.folder}" if not files else
              f"turn_coverage: error: --paths takes {', '.join(PATHS)}", file=sys.stderr)
        return 2
    from asr.engine import AsrEngine

    engine = AsrEngine()
    engine.model  # noqa: B018 - loaded before the clock starts
    rows: list[dict[str, Any]] = []
    print(f"{'consultation':34} {'path':9} {'turns':>5} {'uncovered':>9} {'wall s':>7}  RTF")
    for path in paths:
        for flac in files:
            r = uncovered_turns(engine, flac, tentative=PATHS[path])
            r["path"] = path
            rows.append(r)
            print(f"{r['consultation']:34} {path:9} {r['turns']:>5} {len(r['uncovered']):>9} {r['wall_s']:>7.1f}  "
                  f"{r['wall_s'] / max(r['audio_s'], 1e-9):.3f}", flush=True)
    lost = [u for r in rows for u in r["uncovered"]]
    print("uncovered: " + ("; ".join(f"[{r['path']}] {u}" for r in rows for u in r["uncovered"]) or "none"))
    write_record("turn_coverage", {"rows": rows, "machine": fingerprint()}, a.json)
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
