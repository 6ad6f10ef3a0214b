"""Note quality and drafting speed over labelled consultations, in one run.

    python -m benchmarks.note_quality [CONSULTATIONS_DIR] [--llm NAME|DIR] [--no-audio]
                                      [--no-engines] [--no-incremental] [--speed X] [--json OUT]

For each consultation (``*.yaml`` with turns, small-talk labels, facts and a reference
note, plus ``*.flac`` synthesized audio):

* small-talk precision / recall / F1 per turn (small talk = positive), from the oracle
  turns and from the audio (a turn counts as dropped when every ASR segment overlapping
  it was dropped);
* fact recall (a fact counts when all its keywords occur in the note, case-insensitive),
  small-talk leakage (markers found in the note), unsupported claims (verifier flags),
  ROUGE-L F1 against ``reference_note`` (tokens are ``\\w+`` runs, so æøå are kept),
  tokens/s and time to draft — once from the oracle text and once from the audio;
* stop → draft time of a ~10-minute consultation (consultations concatenated) replayed
  at ``--speed`` × real time with incremental drafting;
* tokens/s of the CTranslate2 engine against the transformers engine (fp32) on the same
  model, same prompt.

Prints a table and writes JSON with the machine's fingerprint.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from asr.errors import ScribeError
from benchmarks.output import write_record
from hardware.fingerprint import fingerprint
from summarize.transcript_io import normalize_speaker
from summarize.types import Utterance

# issue #16's acceptance (the note a clinician would sign) and #3's speed targets
TARGETS = {"smalltalk_f1_min": 0.9, "fact_recall_min": 0.85, "leakage_max": 0, "journal_defects_max": 0.10,
           "edit_rate_max": 0.8, "rouge_l_min": 0.40, "stop_to_draft_max_s": 15.0, "ct2_speedup_min": 2.0}
_TOKEN = re.compile(r"\w+", re.UNICODE)


AUDIO_SUFFIXES = (".flac", ".opus", ".ogg", ".wav", ".mp3")


def default_consultations() -> Path:
    """The labelled consultations: the shared set beside the repository
    (``../shared/data/consultations``, FLAC audio) when it is there, else the same six in
    the repository (``tests/data/consultations``)."""
    root = Path(__file__).resolve().parents[1]
    shared = root.parent / "shared" / "data" / "consultations"
    return shared if any(shared.glob("*.yaml")) else root / "tests" / "data" / "consultations"


def consultation_audio(path: Path) -> Path | None:
    """The synthesized audio of the consultation ``path`` (``<id>.yaml``), in the first
    format found (FLAC in both sets; a user's folder may hold others), or None."""
    return next((a for a in (path.with_suffix(x) for x in AUDIO_SUFFIXES) if a.is_file()), None)


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F1 on lower-cased ``\\w+`` tokens (keeps æøå; rouge-score's tokenizer drops them)."""
    a = _TOKEN.findall(reference.lower())
    b = _TOKEN.findall(candidate.lower())
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(b), lcs / len(a)
    return 2 * p * r / (p + r)


def prf(labels: list[str], dropped: list[bool]) -> dict[str, float]:
    tp = sum(1 for lab, d in zip(labels, dropped, strict=True) if d and lab == "smaprat")
    fp = sum(1 for lab, d in zip(labels, dropped, strict=True) if d and lab != "smaprat")
    fn = sum(1 for lab, d in zip(labels, dropped, strict=True) if not d and lab == "smaprat")
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


def load_case(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    times_path = path.with_suffix(".turns.json")
    times = json.loads(times_path.read_text()) if times_path.exists() else []
    turns = data["turns"]
    utts = []
    for i, t in enumerate(turns):
        start = times[i]["start"] if i < len(times) else None
        end = times[i]["end"] if i < len(times) else None
        utts.append(Utterance(i, t["text"], start, end, normalize_speaker(t.get("speaker"))))
    return {
        "id": data.get("id", path.stem),
        "specialty": data.get("specialty", "allmennmedisin"),
        "utterances": utts,
        "labels": [t["kind"] for t in turns],
        "facts": data.get("facts", []),
        "markers": data.get("smalltalk_markers", []),
        "reference": data.get("reference_note", ""),
        "audio": consultation_audio(path),
    }


def template_for(specialty: str) -> Any:
    from summarize.templates.template import load_template

    return load_template(specialty)


_PRONOUN = re.compile(r"\b(jeg|meg|min|mitt|mine|du|deg|din|ditt|dine|vi|oss|vår|vårt|våre|eg)\b", re.I)
_FILLER_OPEN = re.compile(r"^\W*(ja|nei|altså|vel|ok|okei|eh|ehm|hm|hmm|jo)\b", re.I)
_FILLER_ANY = re.compile(r"\b(liksom|altså)\b", re.I)
_QUOTED = re.compile(r"«[^»]*»|\"[^\"]*\"")
_RETRACTION = re.compile(r"\d[\d,./]*\s*(?:\.\.\.|…|–|-|,)?\s*(?:nei|unnskyld|orsak|altså|eller)\b[^.]{0,20}?\d", re.I)
_NOTE_SENTENCE = re.compile(r"(?<=[.!?»])\s+(?=[«A-ZÆØÅ0-9])|\n+")


def note_sentences(text: str) -> list[str]:
    """The note's sentences (section bodies, one per line or sentence end); a heading
    line ("Anamnese:") is not a sentence."""
    return [x.strip() for x in _NOTE_SENTENCE.split(text)
            if x and x.strip() and not re.fullmatch(r"[\w ,/()-]{1,40}:", x.strip())]


def journal_defects(sentence: str) -> list[str]:
    """What makes a note sentence spoken language rather than journal language (issue #16):
    a first/second-person pronoun outside a quote, an opening filler or "liksom"/"altså",
    a question, a whole sentence of quoted dialogue, a self-correction left in, a fragment
    of under three words with no number."""
    s = sentence.strip()
    bare = _QUOTED.sub(" ", s)
    words = re.findall(r"\w+", s)
    out = []
    if _PRONOUN.search(bare):
        out.append("pronoun")
    if _FILLER_OPEN.match(bare) or _FILLER_ANY.search(bare):
        out.append("filler")
    if s.rstrip("»\"").endswith("?"):
        out.append("question")
    if s.startswith(("«", '"')) and s.rstrip(".").endswith(("»", '"')) and not bare.strip(" .,"):
        out.append("quoted")
    if _RETRACTION.search(s):
        out.append("retraction")
    if len(words) < 3 and not any(ch.isdigit() for ch in s):
        out.append("fragment")
    return out


def defect_share(text: str) -> float:
    """Share of the note's sentences with at least one journal-style defect."""
    sentences = note_sentences(text)
    return sum(bool(journal_defects(x)) for x in sentences) / len(sentences) if sentences else 0.0


def edit_rate(reference: str, draft: str) -> float:
    """Word-level edit distance from the draft to the reference over the reference's length
    (``\\w+`` tokens, lower case): the edits a clinician makes to reach their note."""
    import jiwer

    ref = " ".join(_TOKEN.findall(reference.lower()))
    hyp = " ".join(_TOKEN.findall(draft.lower()))
    if not ref:
        return 0.0
    return float(jiwer.wer(ref, hyp or "tom"))


def note_metrics(case: dict[str, Any], result: Any, template: Any) -> dict[str, Any]:
    text = "\n".join(f"{s.title}: {s.text}" for s in result.draft.sections)
    low = text.lower()
    facts = case["facts"]
    found = [all(k.lower() in low for k in f["keywords"]) for f in facts]
    leaks = [m for m in case["markers"] if m.lower() in low]
    unsupported = [f for f in result.draft.flags if f.kind.startswith("unsupported") or f.kind == "no_evidence"]
    return {
        "fact_recall": sum(found) / len(found) if found else 1.0,
        "facts_missing": [i for i, ok in enumerate(found) if not ok],  # indices: no patient-like text in results
        "leakage": len(leaks),
        "unsupported_claims": len(unsupported),
        "rouge_l": rouge_l(case["reference"], text),
        "journal_defects": defect_share("\n".join(s.text for s in result.draft.sections)),
        "edit_rate": edit_rate(case["reference"], "\n".join(s.text for s in result.draft.sections)),
        "extractive": result.draft.extractive,
        "draft_s": result.timing.get("draft_s"),
        "tokens": result.timing.get("tokens"),
        "tokens_per_s": result.timing.get("tokens_per_s"),
        "structured": result.timing.get("structured"),
        "structured_s": result.timing.get("structured_s"),
    }


def measured(consultation: Any, case: dict[str, Any], template: Any) -> dict[str, Any]:
    """Draft the consultation (through the engine, as every front end does), measure the
    note, and end the consultation (wiped, no audit line: nothing was delivered)."""
    try:
        return note_metrics(case, consultation.draft(), template)
    finally:
        consultation.end(audit=False)


def oracle_consultation(scribe: Any, template: Any, utterances: list[Utterance]) -> Any:
    """A consultation fed the labelled transcript (speakers kept), recording stopped."""
    c = scribe.consultation(template, live=False)
    c.start()
    c.add_utterances(utterances)
    c.stop()
    return c


def audio_consultation(scribe: Any, template: Any, case: dict[str, Any]) -> tuple[Any, float]:
    """A consultation fed the case's audio file as fast as Whisper goes; (it, seconds)."""
    from asr.sources import FileSource

    c = scribe.consultation(template, FileSource(case["audio"]), live=False)
    t0 = time.perf_counter()
    c.record()
    return c, time.perf_counter() - t0


def audio_turn_drops(case: dict[str, Any], utts: list[Utterance], dropped_ids: set[int]) -> list[bool]:
    """Per turn: dropped when every ASR segment overlapping it was dropped (no segment: kept)."""
    out = []
    for t in case["utterances"]:
        over = [u for u in utts if u.start is not None and u.end > t.start and u.start < t.end]
        out.append(bool(over) and all(u.id in dropped_ids for u in over))
    return out


def ten_minute_case(cases: list[dict[str, Any]], minutes: float = 10.0) -> list[Utterance]:
    """Consultations one after another (times shifted, ids renumbered) until ``minutes``."""
    out: list[Utterance] = []
    offset = 0.0
    while not out or (out[-1].end or 0) < minutes * 60:
        for c in cases:
            for u in c["utterances"]:
                out.append(Utterance(len(out), u.text, (u.start or 0) + offset, (u.end or 0) + offset, u.speaker))
            offset = (out[-1].end or 0) + 2.0
            if offset >= minutes * 60:
                break
    return out


def stop_to_draft(utts: list[Utterance], template: Any, scribe: Any, speed: float) -> dict[str, Any]:
    """Replay ``utts`` at their end times (``speed`` × real time) into a live consultation
    (incremental drafting while "recording"), then Stop → draft."""
    c = scribe.consultation(template, live=True)
    c.start()
    t0 = time.monotonic()
    try:
        for u in utts:
            wait = (u.end or 0) / speed - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            c.add_utterances([u])
        c.stop()
        drafted_before_stop = c.note.incremental.drafted_utterances
        res = c.draft()
        return {
            "audio_s": utts[-1].end,
            "speed": speed,
            "utterances": len(utts),
            "drafted_before_stop": drafted_before_stop,
            "stop_to_draft_s": res.timing["stop_to_draft_s"],
            "llm_calls": c.note.drafter.timing.llm_calls,
            "extractive": res.draft.extractive,
        }
    finally:
        c.end(audit=False)


def engine_speed(model: str | None, tokens: int = 64) -> dict[str, Any]:
    """Same model, same prompt: CTranslate2 int8 vs transformers fp32 tokens/s."""
    from summarize.llm.base import ChatMessage
    from summarize.llm.config import LlmConfig
    from summarize.llm.registry import create_engine

    msgs = [ChatMessage("system", "Du er en medisinsk sekretær."),
            ChatMessage("user", "Skriv fem korte setninger på bokmål om kontroll av blodtrykk hos fastlegen.")]
    out: dict[str, Any] = {}
    for name in ("ctranslate2", "transformers"):
        eng = create_engine(LlmConfig(engine=name, model=model))
        try:
            eng.generate(msgs, max_tokens=8)  # warm-up
            gen = eng.generate(msgs, max_tokens=tokens)
            out[name] = {"tokens": gen.tokens, "seconds": gen.seconds, "tokens_per_s": gen.tokens_per_second,
                         "model": eng.model_id}
        finally:
            eng.close()
    tr = out["transformers"]["tokens_per_s"]
    out["speedup"] = out["ctranslate2"]["tokens_per_s"] / tr if tr else None
    return out


def run(folder: Path, llm: str | None, audio: bool, engines: bool, incremental: bool, speed: float,
        only: list[str] | None = None, audio_only: list[str] | None = None,
        asr_model: str | None = None, llm_engine: str = "auto") -> dict[str, Any]:
    """``asr_model``: embedded id or CTranslate2 Whisper directory for the audio path
    (default: the embedded model); ``scribe bench models`` compares several."""
    from app.settings import load_settings
    from asr.engine import AsrConfig, AsrEngine
    from summarize.consultation.engine import Scribe
    from summarize.draft.smalltalk import SmallTalkFilter
    from summarize.llm.config import LlmConfig
    from summarize.llm.registry import create_engine

    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ScribeError(f"no consultations (*.yaml) in {folder}")
    cases = [load_case(p) for p in files]
    all_cases = cases
    if only:
        cases = [c for c in cases if c["id"] in only]
    engine = create_engine(LlmConfig(engine=llm_engine, model=llm))
    asr = AsrEngine(AsrConfig(model=asr_model)) if audio else None
    scribe = Scribe(load_settings(), asr=asr, llm=engine)  # the engine every front end drives
    st = SmallTalkFilter()
    per_case = []
    all_labels: list[str] = []
    all_drop: list[bool] = []
    audio_labels: list[str] = []
    audio_drop: list[bool] = []
    for case in cases:
        print(f"… {case['id']}", file=sys.stderr, flush=True)
        template = template_for(case["specialty"])
        f = st.filter(case["utterances"])
        dropped = {d.id for d in f.dropped}
        drops = [u.id in dropped for u in case["utterances"]]
        all_labels += case["labels"]
        all_drop += drops
        row: dict[str, Any] = {"id": case["id"], "template": template.id,
                               "smalltalk": prf(case["labels"], drops)}
        row["oracle"] = measured(oracle_consultation(scribe, template, case["utterances"]), case, template)
        if asr is not None and case["audio"] is not None and (not audio_only or case["id"] in audio_only):
            c, asr_s = audio_consultation(scribe, template, case)
            utts = c.utterances()
            adrops = audio_turn_drops(case, utts, {d.id for d in st.filter(utts).dropped})
            audio_labels += case["labels"]
            audio_drop += adrops
            m = measured(c, case, template)
            m["asr_s"] = asr_s
            m["smalltalk"] = prf(case["labels"], adrops)
            row["audio"] = m
        per_case.append(row)
    record: dict[str, Any] = {
        "benchmark": "note_quality",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "llm": engine.model_id,
        "llm_engine": engine.name,
        "asr": asr.model_id if asr else None,
        "cases": per_case,
        "smalltalk": prf(all_labels, all_drop),
        "smalltalk_audio": prf(audio_labels, audio_drop) if audio_labels else None,
        "targets": TARGETS,
        "machine": fingerprint(),
    }
    for src in ("oracle", "audio"):
        rows = [r[src] for r in per_case if src in r]
        if rows:
            record[src] = {
                k: sum(r[k] or 0 for r in rows) / len(rows)
                for k in ("fact_recall", "rouge_l", "journal_defects", "edit_rate", "tokens_per_s", "draft_s")
            } | {"leakage": sum(r["leakage"] for r in rows),
                 "unsupported_claims": sum(r["unsupported_claims"] for r in rows)}
    if incremental:
        print("… 10-minute consultation, incremental drafting", file=sys.stderr, flush=True)
        record["incremental"] = stop_to_draft(ten_minute_case(all_cases), template_for("allmennmedisin"), scribe, speed)
    engine.close()
    if engines:
        print("… CTranslate2 vs transformers", file=sys.stderr, flush=True)
        record["engines"] = engine_speed(llm)
    o = record.get("oracle") or {"fact_recall": 0.0, "leakage": 0, "journal_defects": 1.0, "edit_rate": 9.9,
                                 "rouge_l": 0.0}
    record["pass"] = {
        "smalltalk_f1": record["smalltalk"]["f1"] >= TARGETS["smalltalk_f1_min"],
        "fact_recall": o["fact_recall"] >= TARGETS["fact_recall_min"],
        "leakage": o["leakage"] <= TARGETS["leakage_max"],
        "journal_defects": o["journal_defects"] <= TARGETS["journal_defects_max"],
        "edit_rate": o["edit_rate"] <= TARGETS["edit_rate_max"],
        "rouge_l": o["rouge_l"] >= TARGETS["rouge_l_min"],
    }
    if incremental:
        record["pass"]["stop_to_draft"] = record["incremental"]["stop_to_draft_s"] <= TARGETS["stop_to_draft_max_s"]
    if engines and record["engines"]["speedup"] is not None:
        record["pass"]["ct2_speedup"] = record["engines"]["speedup"] >= TARGETS["ct2_speedup_min"]
    return record


def table(r: dict[str, Any]) -> str:
    lines = [f"{'consultation':34} {'ST-F1':>6} {'recall':>6} {'leak':>4} {'unsup':>5} {'ROUGE-L':>7} "
             f"{'defects':>7} {'edits':>5} {'tok/s':>6} {'draft s':>7}   "
             f"audio: {'ST-F1':>5} {'recall':>6} {'leak':>4} {'ROUGE-L':>7}"]
    for c in r["cases"]:
        o = c["oracle"]
        a = c.get("audio")
        line = (f"{c['id']:34} {c['smalltalk']['f1']:6.2f} {o['fact_recall']:6.2f} {o['leakage']:4d} "
                f"{o['unsupported_claims']:5d} {o['rouge_l']:7.3f} {o.get('journal_defects', 0):7.2f} "
                f"{o.get('edit_rate', 0):5.2f} {o['tokens_per_s'] or 0:6.1f} {o['draft_s'] or 0:7.1f}")
        if a:
            line += f"          {a['smalltalk']['f1']:5.2f} {a['fact_recall']:6.2f} {a['leakage']:4d} {a['rouge_l']:7.3f}"
        lines.append(line)
    o = r["oracle"]
    lines.append(f"{'mean / total':34} {r['smalltalk']['f1']:6.2f} {o['fact_recall']:6.2f} {o['leakage']:4d} "
                 f"{o['unsupported_claims']:5d} {o['rouge_l']:7.3f} {o.get('journal_defects', 0):7.2f} "
                 f"{o.get('edit_rate', 0):5.2f} {o['tokens_per_s']:6.1f} {o['draft_s']:7.1f}")
    if r.get("audio"):
        a = r["audio"]
        lines.append(f"from audio: small-talk F1 {r['smalltalk_audio']['f1']:.2f}, fact recall {a['fact_recall']:.2f}, "
                     f"leakage {a['leakage']}, ROUGE-L {a['rouge_l']:.3f}, draft {a['draft_s']:.1f} s")
    if "incremental" in r:
        i = r["incremental"]
        lines.append(f"10-minute case ({i['audio_s']:.0f} s at {i['speed']}× real time, {i['utterances']} utterances, "
                     f"{i['drafted_before_stop']} drafted before Stop; questions are context, not drafted): "
                     f"stop → draft {i['stop_to_draft_s']:.1f} s")
    if "engines" in r:
        e = r["engines"]
        lines.append(f"tokens/s: CTranslate2 int8 {e['ctranslate2']['tokens_per_s']:.1f}, transformers fp32 "
                     f"{e['transformers']['tokens_per_s']:.1f} → speed-up {e['speedup']:.2f}×")
    lines.append("targets: " + ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in r["pass"].items()))
    machine = r["machine"]
    lines.append(f"LLM {r['llm']} ({r.get('llm_engine')}), ASR {r['asr']}, {machine['cpu']}, {machine['cores_logical']} threads")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.note_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", nargs="?", type=Path, default=default_consultations())
    p.add_argument("--llm", help="embedded LLM id or CTranslate2 directory (default: the embedded default)")
    p.add_argument("--engine", default="auto", help="LLM engine (auto = llama.cpp for the embedded models; "
                   "ctranslate2 to compare on the same prompts)")
    p.add_argument("--no-audio", action="store_true", help="only the oracle transcripts")
    p.add_argument("--no-engines", action="store_true", help="skip CTranslate2 vs transformers")
    p.add_argument("--no-incremental", action="store_true", help="skip the 10-minute stop → draft case")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed of the 10-minute case (1 = real time)")
    p.add_argument("--only", nargs="+", metavar="ID", help="only these consultations")
    p.add_argument("--audio-only", nargs="+", metavar="ID", help="the audio path only for these consultations")
    p.add_argument("--json", type=Path, help="where to write the JSON record (default benchmarks/results/)")
    args = p.parse_args(argv)
    print(f"consultations: {args.folder}" + ("" if "shared" in args.folder.parts else
          " (../shared/data/consultations is not here: the repository's copy of the same six)"), file=sys.stderr)
    try:
        record = run(args.folder, args.llm, not args.no_audio, not args.no_engines, not args.no_incremental,
                     args.speed, args.only, args.audio_only, llm_engine=args.engine)
    except ScribeError as exc:
        print(f"note_quality: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(table(record))
    write_record("note_quality", record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
