"""Structured calls (medication, vital-sign and allergy records) with and without the
JSON-schema constraint, over labelled consultations, in one run.

    python -m benchmarks.structured_calls [CONSULTATIONS_DIR] [--llm ID|GGUF] [--engine auto]
                                          [--show] [--json OUT]

Every utterance of every consultation (oracle turns) that has a record cue (a drug, a dose,
a measurement, an allergy: :func:`summarize.draft.records.has_record_cue`) gets the drafter's
structured call twice: constrained by the schema (llama.cpp's grammar) and not constrained
(the same prompt; the answer validated the same way). Reported per consultation and in
total: calls, valid on the first answer, valid after the one retry, fallbacks (still
invalid), records found, records dropped by grounding (a drug or number not said), and
seconds. ``--show`` prints each utterance's rendered records, to read them.

Prints a table and writes JSON with the machine's fingerprint.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.output import write_record

TARGET_VALID_CONSTRAINED = 1.0


def default_folder() -> Path:
    from benchmarks.note_quality import default_consultations

    return default_consultations()


def run(folder: Path, llm: str | None, engine_name: str, show: bool) -> dict[str, Any]:
    from benchmarks.note_quality import load_case
    from summarize.draft import lines, records
    from summarize.draft.drafter import DraftOptions, NoteDrafter
    from summarize.llm.config import LlmConfig
    from summarize.llm.registry import create_engine
    from summarize.templates.template import load_template

    engine = create_engine(LlmConfig(engine=engine_name, model=llm))
    rows: list[dict[str, Any]] = []
    try:
        for path in sorted(folder.glob("*.yaml")):
            case = load_case(path)
            template = load_template(case["specialty"])
            units = [u for u in lines.units(case["utterances"])
                     if records.has_record_cue(records.unit_text(u.utterance, u.question))]
            row: dict[str, Any] = {"id": case["id"], "units": len(units)}
            for constrain in (True, False):
                drafter = NoteDrafter(template, engine, DraftOptions())
                found = 0
                t0 = time.perf_counter()
                for unit in units:
                    rec = drafter.records_for(unit, constrain=constrain)
                    if rec is None:
                        continue
                    found += len(rec.medications) + len(rec.vitals) + len(rec.allergies)
                    if show and constrain:
                        ids = [s.id for s in template.sections]
                        print(f"  [{case['id']}] {unit.utterance.speaker}: {unit.utterance.text[:110]}",
                              file=sys.stderr)
                        for sid, text in records.rendered_lines(rec, unit.utterance.speaker, ids, template.language):
                            print(f"      → {sid}: {text}", file=sys.stderr)
                key = "constrained" if constrain else "unconstrained"
                row[key] = {**drafter.structured.as_dict(), "records": found,
                            "dropped": drafter.timing.records_dropped, "seconds": time.perf_counter() - t0}
            rows.append(row)
            print(f"… {case['id']}: {len(units)} structured calls × 2", file=sys.stderr, flush=True)
    finally:
        engine.close()
    total: dict[str, Any] = {}
    for key in ("constrained", "unconstrained"):
        agg = {k: sum(r[key][k] for r in rows) for k in ("calls", "valid_first", "valid_retry", "fallbacks",
                                                          "records", "dropped", "seconds")}
        agg["valid_rate_first"] = agg["valid_first"] / agg["calls"] if agg["calls"] else None
        agg["valid_rate"] = (agg["valid_first"] + agg["valid_retry"]) / agg["calls"] if agg["calls"] else None
        total[key] = agg
    rate = total["constrained"]["valid_rate_first"]
    return {"benchmark": "structured_calls", "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "llm": engine.model_id, "engine": type(engine).__name__, "cases": rows, "total": total,
            "target_valid_constrained": TARGET_VALID_CONSTRAINED,
            "pass": None if rate is None else rate >= TARGET_VALID_CONSTRAINED}


def table(r: dict[str, Any]) -> str:
    head = (f"{'consultation':32} {'calls':>5} | {'constrained: 1st / retry / fallback  rec drop   s':>50} | "
            f"{'unconstrained: 1st / retry / fallback  rec drop   s':>52}")
    out = [head]

    def cell(d: dict[str, Any]) -> str:
        return (f"{d['valid_first']:>17} / {d['valid_retry']:>5} / {d['fallbacks']:>8} {d['records']:>4} "
                f"{d['dropped']:>4} {d['seconds']:>4.0f}")

    for row in r["cases"]:
        out.append(f"{row['id']:32} {row['units']:>5} | {cell(row['constrained']):>50} | "
                   f"{cell(row['unconstrained']):>52}")
    t = r["total"]
    out.append(f"{'total':32} {t['constrained']['calls']:>5} | {cell(t['constrained']):>50} | "
               f"{cell(t['unconstrained']):>52}")
    for key in ("constrained", "unconstrained"):
        d = t[key]
        if d["calls"]:
            out.append(f"{key}: valid JSON on the first answer {d['valid_rate_first']:.1%}, after the retry "
                       f"{d['valid_rate']:.1%}, fallbacks {d['fallbacks']}")
    if r["pass"] is not None:
        out.append(f"target: 100 % valid with the constraint: {'ok' if r['pass'] else 'FAIL'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from asr.errors import ScribeError
    from hardware.fingerprint import fingerprint

    p = argparse.ArgumentParser(prog="python -m benchmarks.structured_calls", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, help="consultations (default: the shared set, else the repo's)")
    p.add_argument("--llm", help="embedded LLM id or a GGUF file (default: the embedded default)")
    p.add_argument("--engine", default="auto", help="LLM engine (auto = llama.cpp for the embedded models)")
    p.add_argument("--show", action="store_true", help="print each utterance's rendered records (stderr)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    folder = args.folder or default_folder()
    if not any(folder.glob("*.yaml")):
        print(f"structured_calls: error: no consultations (*.yaml) in {folder}", file=sys.stderr)
        return 2
    try:
        record = run(folder, args.llm, args.engine, args.show)
    except ScribeError as exc:
        print(f"structured_calls: error: {exc}", file=sys.stderr)
        return 1
    record["machine"] = fingerprint()
    print(table(record))
    write_record("structured_calls", record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
