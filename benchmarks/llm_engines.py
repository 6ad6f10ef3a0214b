"""LLM engines compared on the same model and the same prompt, in one run.

    python -m benchmarks.llm_engines [--llm ID] [--engines llamacpp ctranslate2 transformers]
                                     [--tokens 160] [--json OUT]

Each engine runs in its own process (so its peak RSS is its own) on the same chat-formatted
Norwegian prompt, greedy, with a warm-up call first. Reported per engine: load time, prompt
tokens, time to first token, prefill tok/s (prompt tokens / time to first token), decode
tok/s (generated tokens after the first / the time they took), peak RSS. Then, for
llama.cpp only: what the prefix states save on a line-drafting prompt (the second call
with the same rules and examples), and the ratio of llama.cpp's decode speed to
CTranslate2 int8's (target ≥ 2.5×).

Prints a table and writes JSON with the machine's fingerprint.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.output import write_record

TARGET_DECODE_RATIO = 2.5
PROMPT = (
    "Lege: Hva bringer deg hit i dag?\n"
    "Pasient: Jeg har hatt vondt i brystet når jeg går i bakker, i omtrent tre uker. Det går over "
    "når jeg hviler. Jeg røyker ti sigaretter om dagen, og faren min hadde hjerteinfarkt da han "
    "var femtifem.\n"
    "Lege: Blodtrykket er 150 over 90, pulsen 88. EKG i hvile er normalt. Jeg starter Albyl-E 75 mg "
    "én gang daglig og Nitroglycerin ved behov, og henviser deg til arbeids-EKG."
)


def _messages() -> list[Any]:
    from summarize.llm.base import ChatMessage

    return [ChatMessage("system", "Du er en nøyaktig medisinsk sekretær i norsk helsetjeneste. Skriv "
                        "et kort journalnotat på bokmål med overskriftene Anamnese, Funn, "
                        "Vurdering og Plan. Bruk bare opplysninger fra samtalen."),
            ChatMessage("user", PROMPT)]


def _one(engine: str, llm: str | None, tokens: int) -> dict[str, Any]:
    """Runs inside the child process."""
    from summarize.llm.config import LlmConfig
    from summarize.llm.registry import create_engine

    t0 = time.perf_counter()
    eng = create_engine(LlmConfig(engine=engine, model=llm))
    load_s = time.perf_counter() - t0
    msgs = _messages()
    eng.generate(msgs, max_tokens=4)  # warm-up
    if engine == "llamacpp":
        eng.prefix_cache = False  # measure a full prefill
    first: list[float] = []
    t1 = time.perf_counter()
    gen = eng.generate(msgs, max_tokens=tokens,
                       on_token=lambda _p: first.append(time.perf_counter() - t1) if not first else None)
    ttft = first[0] if first else gen.seconds
    out: dict[str, Any] = {
        "engine": engine, "model": eng.model_id, "load_s": load_s, "prompt_tokens": gen.prompt_tokens,
        "tokens": gen.tokens, "seconds": gen.seconds, "ttft_s": ttft,
        "prefill_tok_s": gen.prompt_tokens / ttft if ttft > 0 else None,
        "decode_tok_s": (gen.tokens - 1) / (gen.seconds - ttft) if gen.seconds > ttft and gen.tokens > 1 else None,
    }
    if engine == "llamacpp":
        out["prefix"] = _prefix_saving(eng)
    eng.close()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _prefix_saving(eng: Any) -> dict[str, Any]:
    """A line-drafting prompt (rules, sections, worked examples) for two utterances, with and
    without the prefix states: seconds of the second call and tokens evaluated."""
    from summarize.draft.lines import Unit, build_messages
    from summarize.templates.template import load_template
    from summarize.types import Utterance

    template = load_template("allmennmedisin")
    utts = [Utterance(0, "Jeg har hatt hoste i to uker og litt feber om kveldene.", 0.0, 4.0, "pasient"),
            Utterance(1, "Lungene er fri ved auskultasjon, CRP er 12.", 4.0, 8.0, "lege")]
    res: dict[str, Any] = {}
    for cached in (False, True):
        eng.prefix_cache = cached
        eng.generate(build_messages(template, Unit(utts[0])), max_tokens=40)
        gen = eng.generate(build_messages(template, Unit(utts[1])), max_tokens=40)
        res["with" if cached else "without"] = {"seconds": gen.seconds, "prompt_tokens": gen.prompt_tokens,
                                                 "evaluated": gen.prompt_tokens - gen.cached_tokens}
    w, wo = res["with"]["seconds"], res["without"]["seconds"]
    res["speedup"] = wo / w if w > 0 else None
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.llm_engines", description=__doc__.split("\n\n")[0])
    p.add_argument("--llm", help="embedded LLM id (default: the embedded default)")
    p.add_argument("--engines", nargs="+", default=["llamacpp", "ctranslate2", "transformers"])
    p.add_argument("--tokens", type=int, default=160)
    p.add_argument("--json", type=Path)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_one(args.child, args.llm, args.tokens)))
        return 0
    from hardware.fingerprint import fingerprint

    rows = []
    for name in args.engines:
        print(f"… {name}", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "benchmarks.llm_engines", "--child", name, "--tokens", str(args.tokens)]
        if args.llm:
            cmd += ["--llm", args.llm]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["failed"]
            rows.append({"engine": name, "error": tail[0]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    by = {r["engine"]: r for r in rows if "error" not in r}
    ratio = None
    if "llamacpp" in by and "ctranslate2" in by and by["ctranslate2"].get("decode_tok_s"):
        ratio = by["llamacpp"]["decode_tok_s"] / by["ctranslate2"]["decode_tok_s"]
    record = {"benchmark": "llm_engines", "time": datetime.now(UTC).isoformat(timespec="seconds"),
              "tokens": args.tokens, "engines": rows, "decode_ratio_llamacpp_ct2": ratio,
              "target_decode_ratio": TARGET_DECODE_RATIO,
              "pass": None if ratio is None else ratio >= TARGET_DECODE_RATIO, "machine": fingerprint()}
    print(f"{'engine':14} {'model':34} {'load s':>6} {'prompt':>6} {'TTFT s':>6} {'prefill t/s':>11} "
          f"{'decode t/s':>10} {'RSS MB':>7}")
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:14} error: {r['error']}")
            continue
        print(f"{r['engine']:14} {r['model']:34} {r['load_s']:6.1f} {r['prompt_tokens']:6d} {r['ttft_s']:6.2f} "
              f"{r['prefill_tok_s'] or 0:11.1f} {r['decode_tok_s'] or 0:10.1f} {r['peak_rss_mb']:7.0f}")
    if "llamacpp" in by and "prefix" in by["llamacpp"]:
        px = by["llamacpp"]["prefix"]
        print(f"prefix states (line drafting, 2nd call): {px['without']['seconds']:.2f} s evaluating "
              f"{px['without']['evaluated']} tokens → {px['with']['seconds']:.2f} s evaluating "
              f"{px['with']['evaluated']} ({px['speedup']:.1f}× faster)")
    if ratio is not None:
        print(f"decode llama.cpp / CTranslate2 int8: {ratio:.2f}× (target ≥ {TARGET_DECODE_RATIO}×: "
              f"{'ok' if record['pass'] else 'FAIL'})")
    write_record("llm_engines", record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
