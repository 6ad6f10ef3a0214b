"""The recommendation: the most accurate ASR and LLM configuration this machine runs
within the limits, or a plain statement that it is too weak — derived only from the
numbers :mod:`hardware.model_bench` measured, so anyone can re-derive it from the JSON
report (:func:`check_consistency`).

Limits (issue #6): streaming RTF ≤ 0.5 (the transcriber keeps up with speech with room to
spare) and stop → draft ≤ 30 s for a standard 10-minute consultation.

* **ASR**: among configurations (model × device × compute type) with streaming RTF ≤ 0.5,
  the lowest WER on the clip when every one of them has a WER; otherwise (no reference
  text, or a shortened clip) the largest model by :func:`asr_rank` (tiny < base < small <
  medium < large; NB-Whisper above Whisper of the same size). Ties: the larger model, then
  the lower RTF.
* **LLM**: among models whose *projected* stop → draft is ≤ 30 s, the one with the most
  parameters (read from the model's config, else its name or file size); ties: the
  shorter stop → draft.

**Drafting times are projections** (:func:`project_ten_minute`) from the per-call times
measured with the drafter's real "lines" prompts, for the profile of #3's 10-minute
consultation (:data:`TEN_MINUTE`): 746 s of audio, 81 utterances, of which 52 are drafted
(one model call each; small talk and the clinician's questions are not). While recording,
the streaming ASR uses a share of the same CPU equal to its RTF, so a call then takes
``per_call / (1 - RTF)``; after Stop the LLM has the machine to itself. Arrivals are
spread evenly over the recording.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

RTF_MAX = 0.5
STOP_TO_DRAFT_MAX_S = 30.0
WER_TIE = 1e-4  # WERs closer than this are a tie


@dataclass(frozen=True)
class ConsultationProfile:
    """The shape of a standard consultation, for projecting drafting times."""

    audio_s: float
    utterances: int
    kept: int
    drafted: int
    mean_words: float


TEN_MINUTE = ConsultationProfile(audio_s=746.0, utterances=81, kept=65, drafted=52, mean_words=18.2)
"""#3's 10-minute case (``benchmarks.note_quality.ten_minute_case`` over the six shared
consultations): 746 s, 81 utterances, 65 kept after the small-talk filter, 52 drafted
(the other 13 are the clinician's questions, context for the answer after them), a
drafted utterance has 18.2 words on average. See benchmarks/README.md."""


# --------------------------------------------------------------------------- ranking

_SIZES = (("large", 5.0), ("medium", 4.0), ("small", 3.0), ("base", 2.0), ("tiny", 1.0))
# file size of model.bin in fp16 → the size it most likely is (int8 files are half: ranked one lower)
_SIZE_BY_BYTES = ((110e6, 1.0), (300e6, 2.0), (900e6, 3.0), (2.2e9, 4.0))


def asr_rank(name: str, model_bytes: int | float | None = None) -> float:
    """Expected accuracy rank of a Whisper model from its name (or, failing that, the size
    of its ``model.bin``): tiny 1 < base 2 < small 3 < medium 4 < large 5 (turbo 4.5,
    distil −0.25, large-v2 +0.1, large-v3 +0.2); NB-Whisper (the National Library's
    Norwegian fine-tune) +0.5 over Whisper of the same size. 0 when nothing is known."""
    n = name.lower().replace("_", "-")
    rank = 0.0
    for size, value in _SIZES:
        if re.search(rf"(^|[^a-z]){size}([^a-z]|$)", n):
            rank = value
            break
    if not rank and model_bytes:
        rank = next((v for limit, v in _SIZE_BY_BYTES if model_bytes < limit), 5.0)
    if not rank:
        return 0.0
    if "turbo" in n:
        rank = 4.5
    elif rank == 5.0 and re.search(r"v3", n):
        rank += 0.2
    elif rank == 5.0 and re.search(r"v2", n):
        rank += 0.1
    if "distil" in n:
        rank -= 0.25
    if re.search(r"nb-?whisper|nbailab|nb-whisper", n):
        rank += 0.5
    return rank


# --------------------------------------------------------------------------- projection


def project_ten_minute(
    per_call_s: float,
    warmup_s: Sequence[float] = (),
    asr_rtf: float = 0.0,
    profile: ConsultationProfile = TEN_MINUTE,
) -> dict[str, float]:
    """Drafting times of ``profile`` from measured model-call times.

    ``warmup_s``: the first calls of a session (the first pays the whole prompt, the second
    computes the cached prompt prefix); every later call costs ``per_call_s``.

    Returns ``full_draft_s`` (everything drafted after Stop, no incremental drafting),
    ``stop_to_draft_s`` (incremental drafting while recording: the work not finished when
    the recording ends, plus the last utterance) and ``backlog_at_stop_s``.
    """
    n = max(1, profile.drafted)
    warm = list(warmup_s)[:n]
    costs = warm + [per_call_s] * (n - len(warm))
    share = 1.0 - min(max(asr_rtf, 0.0), 0.95)  # the CPU left to the LLM while the ASR runs
    t_end = profile.audio_s
    finish = 0.0
    for k in range(1, n):  # utterance k is committed at t_end * k / n; the last one at Stop
        finish = max(finish, t_end * k / n) + costs[k - 1] / share
    backlog = max(0.0, finish - t_end) * share  # left at Stop, now at full speed
    return {
        "per_call_s": per_call_s,
        "asr_rtf": asr_rtf,
        "full_draft_s": sum(costs),
        "backlog_at_stop_s": backlog,
        "stop_to_draft_s": backlog + costs[-1],
    }


# --------------------------------------------------------------------------- recommendation


@dataclass
class Recommendation:
    asr: dict[str, Any] | None
    llm: dict[str, Any] | None
    too_weak: bool
    statement: str
    reasons: list[str] = field(default_factory=list)
    llm_projections: dict[str, dict[str, float]] = field(default_factory=dict)
    asr_too_weak: bool = False
    llm_too_weak: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["asr"] = _brief(self.asr, ("label", "model", "device", "compute_type", "rtf", "wer", "size_rank"))
        d["llm"] = _brief(self.llm, ("label", "model", "device", "compute_type", "params_b", "per_call_s"))
        return d


def _brief(row: dict[str, Any] | None, keys: Sequence[str]) -> dict[str, Any] | None:
    return None if row is None else {k: row.get(k) for k in keys}


def _ok_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _asr_ok(r: dict[str, Any]) -> bool:
    return not r.get("error") and _ok_num(r.get("rtf"))


def _llm_ok(r: dict[str, Any]) -> bool:
    return not r.get("error") and _ok_num(r.get("per_call_s"))


def choose_asr(asr_results: Sequence[dict[str, Any]], rtf_max: float = RTF_MAX) -> tuple[dict[str, Any] | None, str]:
    """(the chosen configuration or None, how it was chosen)."""
    fit = [r for r in asr_results if _asr_ok(r) and r["rtf"] <= rtf_max]
    if not fit:
        return None, ""
    if all(_ok_num(r.get("wer")) for r in fit):
        best_wer = min(r["wer"] for r in fit)
        tied = [r for r in fit if r["wer"] - best_wer <= WER_TIE]
        how = "lowest WER on the clip"
    else:
        tied = fit
        how = "largest model (WER not measured on this clip)"
    top = max(r.get("size_rank") or 0.0 for r in tied)
    tied = [r for r in tied if (r.get("size_rank") or 0.0) == top]
    return min(tied, key=lambda r: (r["rtf"], r.get("label", ""))), how


def _asr_share(llm: dict[str, Any], asr: dict[str, Any] | None, asr_results: Sequence[dict[str, Any]]) -> float:
    """The ASR's RTF on the LLM's device while recording (0 on different devices)."""
    if asr is None:  # too weak for live ASR: assume the fastest configuration runs anyway
        ok = [r for r in asr_results if _asr_ok(r) and r.get("device") == llm.get("device", "cpu")]
        return min((r["rtf"] for r in ok), default=0.0)
    return float(asr["rtf"]) if asr.get("device") == llm.get("device", "cpu") else 0.0


def recommend(
    asr_results: Sequence[dict[str, Any]],
    llm_results: Sequence[dict[str, Any]],
    *,
    rtf_max: float = RTF_MAX,
    stop_to_draft_max_s: float = STOP_TO_DRAFT_MAX_S,
    profile: ConsultationProfile = TEN_MINUTE,
) -> Recommendation:
    """The most accurate ASR with streaming RTF ≤ ``rtf_max`` and the largest LLM with
    projected stop → draft ≤ ``stop_to_draft_max_s`` (see the module docstring)."""
    reasons: list[str] = []
    asr, how = choose_asr(asr_results, rtf_max)
    ok_asr = [r for r in asr_results if _asr_ok(r)]
    failed_asr = [r for r in asr_results if not _asr_ok(r)]
    weak: list[str] = []
    if asr is not None:
        wer = f", WER {asr['wer']:.1%}" if _ok_num(asr.get("wer")) else ""
        reasons.append(f"ASR: {asr['label']} chosen ({how}): streaming RTF {asr['rtf']:.2f} ≤ {rtf_max}{wer}.")
    elif ok_asr:
        fastest = min(ok_asr, key=lambda r: r["rtf"])
        weak.append(f"live transcription: the fastest ASR configuration ({fastest['label']}) has streaming "
                    f"RTF {fastest['rtf']:.2f}, above the limit of {rtf_max}")
    else:
        first = failed_asr[0].get("error") if failed_asr else "none was measured"
        weak.append(f"live transcription: no ASR configuration could run ({first})")
    for r in ok_asr:
        if r["rtf"] > rtf_max:
            reasons.append(f"ASR: {r['label']} is too slow: streaming RTF {r['rtf']:.2f} > {rtf_max}.")
    for r in failed_asr:
        reasons.append(f"ASR: {r.get('label', '?')} failed: {r.get('error') or 'no RTF measured'}.")

    projections: dict[str, dict[str, float]] = {}
    for r in llm_results:
        if _llm_ok(r):
            projections[r["label"]] = project_ten_minute(
                r["per_call_s"], r.get("warmup_s") or (), _asr_share(r, asr, asr_results), profile)
    ok_llm = [r for r in llm_results if _llm_ok(r)]
    fit = [r for r in ok_llm if projections[r["label"]]["stop_to_draft_s"] <= stop_to_draft_max_s]
    llm = None
    if fit:
        llm = min(fit, key=lambda r: (-(r.get("params_b") or 0.0), projections[r["label"]]["stop_to_draft_s"],
                                      r["label"]))
        p = projections[llm["label"]]
        size = f"{llm['params_b']:.2g} B parameters" if _ok_num(llm.get("params_b")) else "size unknown"
        reasons.append(f"LLM: {llm['label']} chosen (largest model within the limit, {size}): projected "
                       f"stop → draft {p['stop_to_draft_s']:.1f} s ≤ {stop_to_draft_max_s:.0f} s "
                       f"({p['per_call_s']:.2f} s per utterance; a whole note without incremental drafting "
                       f"{p['full_draft_s']:.0f} s).")
    elif ok_llm:
        fastest = min(ok_llm, key=lambda r: projections[r["label"]]["stop_to_draft_s"])
        p = projections[fastest["label"]]
        weak.append(f"drafting: the fastest LLM ({fastest['label']}) needs {p['stop_to_draft_s']:.0f} s from Stop "
                    f"to draft (projected), above the limit of {stop_to_draft_max_s:.0f} s")
    elif llm_results:
        first = next((r.get("error") for r in llm_results if r.get("error")), "no time measured")
        weak.append(f"drafting: no LLM could run ({first})")
    for r in ok_llm:
        s = projections[r["label"]]["stop_to_draft_s"]
        if s > stop_to_draft_max_s:
            reasons.append(f"LLM: {r['label']} is too slow: projected stop → draft {s:.0f} s > "
                           f"{stop_to_draft_max_s:.0f} s.")
    for r in llm_results:
        if not _llm_ok(r):
            reasons.append(f"LLM: {r.get('label', '?')} failed: {r.get('error') or 'no time measured'}.")
    if llm_results:
        reasons.append(
            f"Drafting times are projections from measured per-call times for a standard 10-minute "
            f"consultation ({profile.audio_s:.0f} s, {profile.utterances} utterances, {profile.drafted} drafted), "
            "with the ASR using a share of the CPU equal to its RTF while recording.")

    asr_weak = asr is None
    llm_weak = bool(llm_results) and llm is None
    if weak:
        what = " and ".join(w.split(":", 1)[0] for w in weak)
        statement = f"This machine is too weak for {what}: " + "; ".join(w.split(": ", 1)[1] for w in weak) + "."
    else:
        parts = [f"ASR {asr['label']} (RTF {asr['rtf']:.2f})"] if asr else []
        if llm is not None:
            parts.append(f"LLM {llm['label']} (projected stop → draft "
                         f"{projections[llm['label']]['stop_to_draft_s']:.1f} s)")
        else:
            parts.append("no LLM measured")
        statement = "Recommended on this machine: " + " with ".join(parts) + "."
    return Recommendation(asr=asr, llm=llm, too_weak=bool(weak), statement=statement, reasons=reasons,
                          llm_projections=projections, asr_too_weak=asr_weak, llm_too_weak=llm_weak)


# --------------------------------------------------------------------------- consistency


def _find(report_json: dict[str, Any], key: str) -> Any:
    for s in report_json.get("sections") or []:
        data = s.get("data") or {}
        if key in data:
            return data[key]
    return None


def check_consistency(report_json: dict[str, Any]) -> list[str]:
    """Re-derive the recommendation from the numbers in a hardware report's JSON; the
    problems found (empty when the report agrees with its own numbers)."""
    problems: list[str] = []
    asr_results = _find(report_json, "asr_results")
    llm_results = _find(report_json, "llm_results")
    reported = _find(report_json, "recommendation")
    limits = _find(report_json, "limits") or {}
    if asr_results is None:
        problems.append("no asr_results in the report")
    if reported is None:
        problems.append("no recommendation in the report")
    if problems:
        return problems
    llm_results = llm_results or []
    rtf_max = float(limits.get("rtf_max", RTF_MAX))
    s2d_max = float(limits.get("stop_to_draft_max_s", STOP_TO_DRAFT_MAX_S))
    prof = limits.get("profile")
    profile = ConsultationProfile(**prof) if isinstance(prof, dict) else TEN_MINUTE
    rec = recommend(asr_results, llm_results, rtf_max=rtf_max, stop_to_draft_max_s=s2d_max, profile=profile)

    def label(x: Any) -> Any:
        return x.get("label") if isinstance(x, dict) else None

    if label(reported.get("asr")) != label(rec.asr):
        problems.append(f"ASR choice {label(reported.get('asr'))!r} but the numbers give {label(rec.asr)!r}")
    if label(reported.get("llm")) != label(rec.llm):
        problems.append(f"LLM choice {label(reported.get('llm'))!r} but the numbers give {label(rec.llm)!r}")
    if bool(reported.get("too_weak")) != rec.too_weak:
        problems.append(f"too_weak is {reported.get('too_weak')} but the numbers give {rec.too_weak}")
    if reported.get("statement") != rec.statement:
        problems.append("the statement does not follow from the numbers")
    if report_json.get("verdict") is not None and report_json.get("verdict") != reported.get("statement"):
        problems.append("the report's verdict is not the recommendation's statement")
    chosen = next((r for r in asr_results if r.get("label") == label(reported.get("asr"))), None)
    if reported.get("asr") is not None and (chosen is None or not _asr_ok(chosen) or chosen["rtf"] > rtf_max):
        problems.append(f"the chosen ASR {label(reported.get('asr'))!r} does not meet RTF ≤ {rtf_max} in the numbers")
    for name, proj in (reported.get("llm_projections") or {}).items():
        again = rec.llm_projections.get(name)
        if again is None:
            problems.append(f"projection for {name!r} has no measured per-call time")
            continue
        for k in ("stop_to_draft_s", "full_draft_s"):
            if not _ok_num(proj.get(k)) or abs(proj[k] - again[k]) > 0.05 + 1e-3 * abs(again[k]):
                problems.append(f"{name}: reported {k} {proj.get(k)} but the numbers give {again[k]:.2f}")
    if reported.get("llm") is not None:
        p = rec.llm_projections.get(label(reported["llm"]))
        if p is None or p["stop_to_draft_s"] > s2d_max:
            problems.append(f"the chosen LLM {label(reported['llm'])!r} does not meet stop → draft ≤ {s2d_max} s")
    return problems
