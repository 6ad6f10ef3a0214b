"""``scribe bench hardware`` and ``scribe bench models`` (issue #6).

    scribe bench hardware [--json OUT] [--html OUT] [--clip FILE [--clip-text FILE]]
                          [--asr-model DIR ...] [--llm NAME|DIR ...] [--no-llm] [--quick]
    scribe bench models --dataset DIR [--llm NAME|DIR ...] [--asr-model DIR ...] [--no-audio]
                        [--stop-to-draft [--speed X]] [--json OUT] [--html OUT]

``hardware`` probes the machine (:mod:`hardware.probe`), measures every installed model on
it (:mod:`hardware.model_bench`) and recommends the most accurate configuration within
the limits, or says plainly that the machine is too weak (:mod:`hardware.recommend`).
Installed models: the embedded Whisper, ``asr.model`` from the settings and every
``--asr-model``; the embedded LLMs whose wheels are installed, ``llm.model`` and every
``--llm``.

``models`` runs #3's note-quality measures (:mod:`benchmarks.note_quality`) on a folder of
consultations in the shared format (``*.yaml`` with turns, small-talk labels, facts and a
reference note; ``*.flac`` + ``*.turns.json`` audio optional) for every model pair, so a
hospital can compare candidate models on its own material. Only numbers go into the
reports (fact indices, never fact or transcript text).

Both print a summary on stdout and write JSON (for machines) and a self-contained HTML
report (for people) when asked. Bad input is a one-line error before any model loads.
Run alone: ``python -m app.cli_bench_hw hardware ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from app.argtypes import positive_float
from app.bench_common import add_report_args, check_report_paths
from asr.errors import ConfigError, ScribeError

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- parsers


def add_hardware_parser(bsub: Any) -> None:
    h = bsub.add_parser("hardware", help="probe this machine, benchmark the installed models, recommend a setup")
    add_report_args(h)
    h.add_argument("--clip", type=Path, metavar="FILE",
                   help="recording of Norwegian speech, ≥ 30 s, for ASR speed and WER (default: the shared "
                        "king.mp3 when present)")
    h.add_argument("--clip-text", type=Path, metavar="FILE", help="the text spoken in --clip (for WER)")
    h.add_argument("--asr-model", action="append", default=[], metavar="DIR",
                   help="also measure this CTranslate2 Whisper directory (repeatable)")
    h.add_argument("--llm", action="append", default=[], metavar="NAME|DIR",
                   help="also measure this LLM: imported name or CTranslate2 directory (repeatable)")
    h.add_argument("--no-llm", action="store_true", help="skip the language models")
    h.add_argument("--quick", action="store_true",
                   help="one compute type per device, a 30 s clip and fewer model calls (a smoke test)")


def add_models_parser(bsub: Any) -> None:
    m = bsub.add_parser("models", help="note quality of candidate models on your own consultations")
    m.add_argument("--dataset", type=Path, required=True, metavar="DIR",
                   help="folder of consultations (*.yaml in the shared format, "
                        "optional audio <id>.flac/.opus/.wav/.mp3 + *.turns.json)")
    m.add_argument("--llm", action="append", default=[], metavar="NAME|DIR",
                   help="LLM to compare (repeatable; default: llm.model from the settings)")
    m.add_argument("--asr-model", action="append", default=[], metavar="DIR",
                   help="Whisper model for the audio (repeatable; default: asr.model from the settings)")
    m.add_argument("--no-audio", action="store_true", help="draft from the turns' text, do not transcribe")
    m.add_argument("--stop-to-draft", action="store_true",
                   help="also replay a 10-minute consultation into incremental drafting (takes 746 s / --speed)")
    m.add_argument("--speed", type=positive_float, default=1.0, help="replay speed of --stop-to-draft (default 1 = real time)")
    add_report_args(m)


# --------------------------------------------------------------------------- helpers


def progress_factory() -> Any:
    from app.cli_llm_models import progress_factory

    return progress_factory(sys.stderr)


def _fmt(v: Any, spec: str = ".2f") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _round(v: Any, nd: int = 3) -> Any:
    return round(v, nd) if isinstance(v, float) else v


def _nums(values: Any) -> list[float]:
    """Plot values: a missing one becomes NaN (an empty bar)."""
    return [float(v) if isinstance(v, int | float) else float("nan") for v in values]


# --------------------------------------------------------------------------- hardware


def _asr_models(settings: Any, extra: list[str], progress: Any) -> list[str]:
    """The embedded Whisper, ``asr.model`` and ``--asr-model``, each checked (one-line
    error for a bad one) and de-duplicated by directory."""
    from asr.models import DEFAULT_ASR_MODEL, resolve_whisper_model

    specs = [s for s in (DEFAULT_ASR_MODEL, settings.asr.model, *extra) if s]
    dirs = {s: resolve_whisper_model(s, progress_factory=progress)[0] for s in [*extra, *specs]}  # typos first
    out: dict[str, str] = {}
    for spec in specs:
        out.setdefault(str(dirs[spec].resolve()), str(spec))
    return list(out.values())


def _llm_models(settings: Any, extra: list[str], progress: Any) -> list[str]:
    """The installed embedded LLMs, ``llm.model`` (local engines) and ``--llm``, each
    resolved for the engine ``llm.engine`` picks (one-line error for a bad one),
    de-duplicated. A GGUF is used as it is; nothing is converted for llama.cpp."""
    from hardware.model_bench import installed_embedded_llms
    from summarize.llm.models import resolve_gguf_model, resolve_hf_source, resolve_llm_model
    from summarize.llm.registry import auto_engine

    configured = settings.llm.engine.strip().lower()
    specs: list[str] = list(installed_embedded_llms())
    if settings.llm.model:
        if configured == "openai":
            print("note: llm.model is served by the openai engine (a server); only local models are "
                  "measured here", file=sys.stderr)
        else:
            specs.append(settings.llm.model)
    specs += extra

    def resolve(spec: str) -> Path:
        engine = auto_engine(spec) if configured in ("auto", "openai") else configured
        if engine == "llamacpp":
            return resolve_gguf_model(spec, progress_factory=progress)[0]
        if engine == "transformers":
            return resolve_hf_source(spec, progress_factory=progress)
        return resolve_llm_model(spec, progress_factory=progress)[0]

    # the user's --llm first: a typo fails before an embedded model is assembled
    paths = {s: resolve(s) for s in [*extra, *specs]}
    out: dict[str, str] = {}
    for spec in specs:
        out.setdefault(str(paths[spec].resolve()), spec)
    return list(out.values())


def run_hardware(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Probe, measure and recommend; returns (the report, the raw results)."""
    from app.settings import load_settings
    from asr.engine import AsrConfig
    from hardware import model_bench as mb
    from hardware.probe import probe
    from hardware.recommend import recommend

    t_start = time.perf_counter()
    settings = load_settings()
    check_report_paths(args.json, args.html)
    if args.clip_text is not None and args.clip is None:
        raise ConfigError("--clip-text goes with --clip")
    if args.clip is not None:
        clip_path, text_path = args.clip, args.clip_text
    else:
        found = mb.default_clip()
        if found is None:
            raise ConfigError(f"no test recording found: {mb.CLIP_HINT}")
        clip_path, text_path = found
    clip = mb.load_clip(clip_path, text_path, max_s=mb.QUICK_CLIP_S if args.quick else None)
    progress = progress_factory()
    asr_models = _asr_models(settings, args.asr_model, progress)
    llm_models = [] if args.no_llm else _llm_models(settings, args.llm, progress)

    machine = probe()
    plan = mb.asr_plan(asr_models, machine["compute_types"], quick=args.quick)
    base = AsrConfig.from_settings(settings.asr)
    print(f"measuring {len(plan)} ASR configuration(s) on {clip.name} ({clip.duration_s:.0f} s) and "
          f"{len(llm_models)} LLM(s) …", file=sys.stderr, flush=True)
    asr_rows = [mb.bench_asr(m, dev, ct, clip, base, progress_factory=progress) for m, dev, ct in plan]
    llm_base = settings.llm.model_copy(update={"engine": "auto"}) if settings.llm.engine == "openai" \
        else settings.llm
    llm_rows = [mb.bench_llm(spec, llm_base, quick=args.quick) for spec in llm_models]
    rec = recommend(asr_rows, llm_rows)
    wall = time.perf_counter() - t_start
    report = hardware_report(machine, clip.info(), asr_rows, llm_rows, rec,
                             run={"quick": bool(args.quick), "wall_s": round(wall, 1)})
    return report, {"probe": machine, "asr": asr_rows, "llm": llm_rows, "recommendation": rec, "wall_s": wall}


def hardware_report(machine: dict[str, Any], clip: dict[str, Any], asr_rows: list[dict[str, Any]],
                    llm_rows: list[dict[str, Any]], rec: Any, run: dict[str, Any] | None = None) -> Any:
    """The hardware report: Maskin, ASR, LLM, Anbefaling; verdict = the recommendation."""
    from hardware.model_bench import GEN_TOKENS, LINE_CALLS, LINE_WARMUP
    from hardware.plots import bar_plot
    from hardware.probe import probe_table
    from hardware.recommend import RTF_MAX, STOP_TO_DRAFT_MAX_S, TEN_MINUTE
    from hardware.report import Report, Section

    report = Report("hardware", "Maskinvaretest for ambient-scribe")
    report.verdict = rec.statement
    report.summary = list(rec.reasons)
    cpu = machine["cpu"]
    report.add(Section(
        "Maskin",
        text=f"{cpu.get('model') or 'ukjent CPU'}, {cpu.get('cores_physical')} kjerner / "
             f"{cpu.get('threads_logical')} tråder, {machine['memory'].get('total_gb')} GB RAM, "
             f"{len(machine['cuda'])} CUDA-enhet(er).",
        table=probe_table(machine),
        data={"probe": machine},
    ))

    asr_table = [{
        "Konfigurasjon": r["label"],
        "Lastetid s": _round(r.get("load_s"), 2),
        "RTF (strømming)": _round(r.get("rtf")),
        "WER": _round(r.get("wer")),
        "CER": _round(r.get("cer")),
        "Størrelsesrang": r.get("size_rank"),
        "Topp-RSS MB": _round(r.get("peak_rss_mb"), 0),
        "Modellens minne MB": _round(r.get("model_rss_mb"), 0),
        "Topp-VRAM MB": _round(r.get("peak_vram_mb"), 0),
        "Feil": r.get("error") or "",
    } for r in asr_rows]
    ok = [r for r in asr_rows if r.get("rtf") is not None]
    wer_note = ("WER/CER mot teksten til hele opptaket." if clip.get("reference_text")
                else "WER ikke målt (ingen tekst, eller klippet er kortet ned); valget bygger på modellstørrelse.")
    report.add(Section(
        "ASR",
        text=f"Strømmende transkripsjon av {clip['name']} ({clip['duration_s']:.0f} s) så fort maskinen klarer: "
             f"RTF = regnetid / lydtid (grense {RTF_MAX}). {wer_note} Minne: topp for prosessen og det modellen "
             "la til.",
        table=asr_table,
        figures=[bar_plot([r["label"] for r in ok], [r["rtf"] for r in ok], title="RTF per ASR-konfigurasjon",
                          ylabel="RTF", limit=RTF_MAX, limit_label=f"grense {RTF_MAX}")] if ok else [],
        data={"asr_results": asr_rows, "clip": clip},
    ))

    if llm_rows:
        llm_table = []
        for r in llm_rows:
            p = rec.llm_projections.get(r["label"], {})
            llm_table.append({
                "Modell": r["label"],
                "Parametre (mrd.)": r.get("params_b"),
                "Lastetid s": _round(r.get("load_s"), 1),
                "Prefill tok/s": _round(r.get("prefill_tokens_per_s"), 1),
                "Generering tok/s": _round(r.get("gen_tokens_per_s"), 1),
                "s per ytring": _round(r.get("per_call_s"), 2),
                "Helt notat s (projisert)": _round(p.get("full_draft_s"), 0),
                "Stopp → utkast s (projisert)": _round(p.get("stop_to_draft_s"), 1),
                "Topp-RSS MB": _round(r.get("peak_rss_mb"), 0),
                "Topp-VRAM MB": _round(r.get("peak_vram_mb"), 0),
                "Feil": r.get("error") or "",
            })
        ok_l = [r for r in llm_rows if r.get("gen_tokens_per_s") is not None]
        figures = []
        if ok_l:
            figures.append(bar_plot([r["label"] for r in ok_l], [r["gen_tokens_per_s"] for r in ok_l],
                                    title="Generering, tokens/s per modell", ylabel="tokens/s"))
            figures.append(bar_plot([r["label"] for r in ok_l], _nums(r.get("prefill_tokens_per_s") for r in ok_l),
                                    title="Prefill, tokens/s per modell", ylabel="tokens/s"))
        projected = [r for r in llm_rows if r["label"] in rec.llm_projections]
        if projected:
            figures.append(bar_plot([r["label"] for r in projected],
                                    [rec.llm_projections[r["label"]]["stop_to_draft_s"] for r in projected],
                                    title="Stopp → utkast, 10-minutters konsultasjon (projisert)", ylabel="s",
                                    limit=STOP_TO_DRAFT_MAX_S, limit_label=f"grense {STOP_TO_DRAFT_MAX_S:.0f} s"))
        report.add(Section(
            "LLM",
            text=(f"Prefill: utkasterens helnotat-prompt med ett utdata-token. Generering: {GEN_TOKENS} tokens, "
                  "målt fra første token. s per ytring: snitt av utkasterens egne linje-kall på "
                  f"{LINE_CALLS} representative ytringer etter {LINE_WARMUP} oppvarmingskall. "
                  "Tidene for et helt notat og for stopp → utkast er PROJEKSJONER fra disse målte kall-tidene "
                  f"for en standard 10-minutters konsultasjon ({TEN_MINUTE.audio_s:.0f} s, {TEN_MINUTE.utterances} "
                  f"ytringer, {TEN_MINUTE.drafted} med eget kall), ikke målinger av en hel konsultasjon; "
                  "under opptaket bruker talegjenkjenningen en andel av CPU-en lik sin RTF."),
            table=llm_table,
            figures=figures,
            data={"llm_results": llm_rows, "projections": rec.llm_projections,
                  "profile": dataclasses.asdict(TEN_MINUTE), "projected": True},
        ))
    else:
        report.add(Section("LLM", text="Språkmodellene ble ikke målt (--no-llm).", data={"llm_results": []}))

    report.add(Section(
        "Anbefaling",
        text=(f"Regler: den mest nøyaktige talegjenkjenningen (lavest WER på klippet, ellers største modell) "
              f"med strømmende RTF ≤ {RTF_MAX}, og den største språkmodellen med projisert stopp → utkast ≤ "
              f"{STOP_TO_DRAFT_MAX_S:.0f} s. Begrunnelse:\n" + "\n".join(rec.reasons)),
        data={"recommendation": rec.to_dict(),
              "limits": {"rtf_max": RTF_MAX, "stop_to_draft_max_s": STOP_TO_DRAFT_MAX_S,
                         "profile": dataclasses.asdict(TEN_MINUTE)},
              "run": run or {}},
    ))
    return report


def _print_hardware(raw: dict[str, Any]) -> None:
    out = sys.stdout
    cpu = raw["probe"]["cpu"]
    print(f"{cpu.get('model')}: {cpu.get('cores_physical')} cores / {cpu.get('threads_logical')} threads, "
          f"{', '.join(cpu.get('instruction_sets_present') or []) or 'instruction sets unknown'}; "
          f"{raw['probe']['memory'].get('total_gb')} GB RAM; CUDA devices: {len(raw['probe']['cuda'])}", file=out)
    print(f"{'ASR configuration':46} {'load s':>6} {'RTF':>6} {'WER':>6} {'RSS MB':>7}", file=out)
    for r in raw["asr"]:
        print(f"{r['label']:46} {_fmt(r.get('load_s'), '.1f'):>6} {_fmt(r.get('rtf'), '.3f'):>6} "
              f"{_fmt(r.get('wer'), '.1%'):>6} {_fmt(r.get('peak_rss_mb'), '.0f'):>7}"
              + (f"  error: {r['error']}" if r.get("error") else ""), file=out)
    rec = raw["recommendation"]
    if raw["llm"]:
        print(f"{'LLM':46} {'load s':>6} {'pre t/s':>7} {'gen t/s':>7} {'s/call':>6} {'note s*':>7} "
              f"{'stop s*':>7} {'RSS MB':>7}", file=out)
        for r in raw["llm"]:
            p = rec.llm_projections.get(r["label"], {})
            print(f"{r['label']:46} {_fmt(r.get('load_s'), '.1f'):>6} {_fmt(r.get('prefill_tokens_per_s'), '.0f'):>7} "
                  f"{_fmt(r.get('gen_tokens_per_s'), '.1f'):>7} {_fmt(r.get('per_call_s'), '.2f'):>6} "
                  f"{_fmt(p.get('full_draft_s'), '.0f'):>7} {_fmt(p.get('stop_to_draft_s'), '.1f'):>7} "
                  f"{_fmt(r.get('peak_rss_mb'), '.0f'):>7}" + (f"  error: {r['error']}" if r.get("error") else ""),
                  file=out)
        print("* projected for a standard 10-minute consultation from the measured per-call times", file=out)
    print(rec.statement, file=out)
    print(f"(run took {raw['wall_s']:.0f} s)", file=out)


def cmd_bench_hardware(args: argparse.Namespace) -> int:
    from hardware.report import write_reports

    report, raw = run_hardware(args)
    _print_hardware(raw)
    for p in write_reports(report, json_path=args.json, html_path=args.html):
        print(f"wrote {p}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- models

_KINDS = ("smaprat", "klinisk", "blandet")


def check_dataset(folder: Path) -> list[dict[str, Any]]:
    """Every consultation in ``folder`` checked: ``[{"path", "id", "audio": bool}]``.
    A missing or empty folder, or a malformed file, is a one-line :class:`ConfigError`
    naming the file."""
    import json

    import yaml

    from benchmarks.note_quality import consultation_audio
    from summarize.templates.template import load_template

    if not folder.exists():
        raise ConfigError(f"dataset folder {folder} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: --dataset takes a folder of consultations (*.yaml)")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no consultations (*.yaml) in {folder}: see the shared format "
                          "(turns with speaker, kind and text; facts; reference_note)")
    out = []
    for f in files:
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{f.name} is not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}"
                              ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {f.name}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{f.name} is not a consultation: expected a mapping with 'turns'")
        turns = data.get("turns")
        if not isinstance(turns, list) or not turns:
            raise ConfigError(f"{f.name} is not a consultation: 'turns' must be a non-empty list")
        for i, t in enumerate(turns):
            if not isinstance(t, dict) or not isinstance(t.get("text"), str) or not t["text"].strip():
                raise ConfigError(f"{f.name}: turn {i + 1} has no 'text'")
            if t.get("kind") not in _KINDS:
                raise ConfigError(f"{f.name}: turn {i + 1} has kind {t.get('kind')!r}; use one of {', '.join(_KINDS)}")
        facts = data.get("facts", [])
        if not isinstance(facts, list) or any(
                not isinstance(x, dict) or not isinstance(x.get("keywords"), list) or not x["keywords"] for x in facts):
            raise ConfigError(f"{f.name}: 'facts' must be a list of entries with a non-empty 'keywords' list")
        for key in ("reference_note",):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{f.name}: '{key}' must be text")
        specialty = data.get("specialty", "allmennmedisin")
        try:
            load_template(str(specialty))
        except ScribeError as exc:
            raise ConfigError(f"{f.name}: specialty {specialty!r} has no note template ({exc})") from None
        times = f.with_suffix(".turns.json")
        has_times = False
        if times.exists():
            try:
                tj = json.loads(times.read_text(encoding="utf-8"))
                has_times = isinstance(tj, list) and len(tj) == len(turns) and all(
                    isinstance(x, dict) and isinstance(x.get("start"), int | float)
                    and isinstance(x.get("end"), int | float) for x in tj)
            except (OSError, ValueError):
                has_times = False
            if not has_times:
                raise ConfigError(f"{times.name} is malformed: expected one {{start, end}} per turn "
                                  f"({len(turns)} turns)")
        out.append({"path": f, "id": data.get("id", f.stem),
                    "audio": has_times and consultation_audio(f) is not None})
    return out


def _pair_label(llm: str, asr: str | None) -> str:
    return f"{llm} + {asr}" if asr else f"{llm} (tekst)"


def run_models(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]]]:
    from app.settings import load_settings
    from asr.models import resolve_whisper_model
    from benchmarks import note_quality as nq
    from summarize.llm.models import resolve_llm_model

    settings = load_settings()
    check_report_paths(args.json, args.html)
    if args.speed <= 0:
        raise ConfigError("--speed must be above 0")
    cases = check_dataset(args.dataset)
    audio_ids = [c["id"] for c in cases if c["audio"]] if not args.no_audio else []
    progress = progress_factory()
    asrs: list[tuple[str | None, str | None]] = [(None, None)]
    if audio_ids:  # checked first: cheap, while an embedded LLM may need building
        asrs = []
        for spec in args.asr_model or [settings.asr.model]:
            _, model_id = resolve_whisper_model(spec, progress_factory=progress)
            asrs.append((spec, model_id))
    elif not args.no_audio:
        print("note: no consultation has audio (<id>.flac/.opus/.wav/.mp3 with *.turns.json): drafting from the text only",
              file=sys.stderr)
    llms: list[tuple[str | None, str]] = []
    for spec in args.llm or [settings.llm.model]:
        _, model_id = resolve_llm_model(spec, progress_factory=progress)
        llms.append((spec, model_id))

    from tqdm import tqdm

    pairs = [(lm, am) for lm in llms for am in asrs]
    results = []
    for (lspec, lid), (aspec, aid) in tqdm(pairs, desc="model pairs", unit="pair", file=sys.stderr,
                                           disable=None, leave=False):
        t0 = time.perf_counter()
        record = nq.run(args.dataset, lspec, bool(audio_ids), False, args.stop_to_draft, args.speed,
                        audio_only=audio_ids or None, asr_model=aspec)
        results.append({"label": _pair_label(lid, aid), "llm": lid, "asr": aid, "wall_s": time.perf_counter() - t0,
                        "record": record})
    return models_report(results, args.dataset), results


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if isinstance(v, int | float)]
    return sum(vals) / len(vals) if vals else None


def models_report(results: list[dict[str, Any]], dataset: Path) -> Any:
    from hardware.plots import bar_plot
    from hardware.report import Report, Section

    report = Report("models", f"Modellsammenligning på egne konsultasjoner ({dataset.name})")
    summary_rows = []
    for res in results:
        r = res["record"]
        o = r.get("oracle") or {}
        a = r.get("audio") or {}
        row = {
            "Modellpar": res["label"],
            "Konsultasjoner": len(r["cases"]),
            "Småprat-F1": _round(r["smalltalk"]["f1"]),
            "Faktadekning": _round(o.get("fact_recall")),
            "Lekkasje": o.get("leakage"),
            "Udokumenterte": o.get("unsupported_claims"),
            "ROUGE-L": _round(o.get("rouge_l")),
            "tokens/s": _round(o.get("tokens_per_s"), 1),
            "Utkast s (snitt)": _round(o.get("draft_s"), 1),
        }
        if a:
            row.update({"Småprat-F1 (lyd)": _round((r.get("smalltalk_audio") or {}).get("f1")),
                        "Faktadekning (lyd)": _round(a.get("fact_recall")), "ROUGE-L (lyd)": _round(a.get("rouge_l"))})
        if "incremental" in r:
            row["Stopp → utkast s"] = _round(r["incremental"]["stop_to_draft_s"], 1)
        summary_rows.append(row)
    labels = [res["label"] for res in results]
    recalls = [(res["record"].get("oracle") or {}).get("fact_recall") for res in results]
    figures = [
        bar_plot(labels, _nums(recalls), title="Faktadekning per modellpar (fra teksten)", ylabel="andel fakta"),
        bar_plot(labels, _nums((res["record"].get("oracle") or {}).get("tokens_per_s") for res in results),
                 title="tokens/s per modellpar", ylabel="tokens/s"),
        bar_plot(labels, _nums((res["record"].get("oracle") or {}).get("rouge_l") for res in results),
                 title="ROUGE-L per modellpar", ylabel="ROUGE-L F1"),
    ]
    best = max(((lab, v) for lab, v in zip(labels, recalls, strict=True) if isinstance(v, int | float)),
               key=lambda x: x[1], default=None)
    report.verdict = (f"Highest fact recall: {best[0]} ({best[1]:.2f})" if best else "No model pair was measured")
    report.summary = [
        f"{row['Modellpar']}: fact recall {_fmt(row['Faktadekning'])}, small-talk F1 {_fmt(row['Småprat-F1'])}, "
        f"leakage {row['Lekkasje']}, unsupported {row['Udokumenterte']}, ROUGE-L {_fmt(row['ROUGE-L'], '.3f')}"
        for row in summary_rows
    ]
    report.add(Section(
        "Sammenligning",
        text="#3s mål på hver konsultasjon i mappen: småprat-F1 per replikk, faktadekning (alle nøkkelord i "
             "notatet), lekkasje av småprat, udokumenterte påstander (verifikatorens flagg), ROUGE-L mot "
             "referansenotatet, tokens/s og tid per utkast. Bare tall lagres, aldri tekst fra konsultasjonene.",
        table=summary_rows, figures=figures,
        data={"pairs": [{k: v for k, v in res.items() if k != "record"} for res in results]},
    ))
    for res in results:
        r = res["record"]
        rows = []
        for c in r["cases"]:
            o = c["oracle"]
            row = {"Konsultasjon": c["id"], "Mal": c["template"], "Småprat-F1": _round(c["smalltalk"]["f1"]),
                   "Faktadekning": _round(o["fact_recall"]), "Lekkasje": o["leakage"],
                   "Udokumenterte": o["unsupported_claims"], "ROUGE-L": _round(o["rouge_l"]),
                   "tokens/s": _round(o.get("tokens_per_s"), 1), "Utkast s": _round(o.get("draft_s"), 1),
                   "Uttrekk": "ja" if o.get("extractive") else "nei"}
            if c.get("audio"):
                ca = c["audio"]
                row.update({"Småprat-F1 (lyd)": _round(ca["smalltalk"]["f1"]),
                            "Faktadekning (lyd)": _round(ca["fact_recall"]), "ROUGE-L (lyd)": _round(ca["rouge_l"]),
                            "ASR s": _round(ca.get("asr_s"), 1)})
            rows.append(row)
        report.add(Section(
            res["label"],
            text=f"LLM {res['llm']}" + (f", ASR {res['asr']}" if res["asr"] else ", fra teksten (uten lyd)")
                 + f"; {res['wall_s']:.0f} s.",
            table=rows,
            figures=[bar_plot([c["id"] for c in r["cases"]], [c["oracle"]["fact_recall"] for c in r["cases"]],
                              title=f"Faktadekning per konsultasjon – {res['label']}", ylabel="andel fakta")],
            data={"pair": res["label"], "llm": res["llm"], "asr": res["asr"], "record": r},
        ))
    return report


def cmd_bench_models(args: argparse.Namespace) -> int:
    from hardware.report import write_reports

    report, results = run_models(args)
    print(f"{'model pair':56} {'ST-F1':>6} {'recall':>6} {'leak':>4} {'unsup':>5} {'ROUGE-L':>7} {'tok/s':>6}")
    for res in results:
        r = res["record"]
        o = r.get("oracle") or {}
        print(f"{res['label']:56} {r['smalltalk']['f1']:6.2f} {_fmt(o.get('fact_recall')):>6} "
              f"{_fmt(o.get('leakage')):>4} {_fmt(o.get('unsupported_claims')):>5} "
              f"{_fmt(o.get('rouge_l'), '.3f'):>7} {_fmt(o.get('tokens_per_s'), '.1f'):>6}")
    print(report.verdict)
    for p in write_reports(report, json_path=args.json, html_path=args.html):
        print(f"wrote {p}", file=sys.stderr)
    return 0

