"""Benchmark the installed models on this machine (issue #6, item 2).

ASR, for each model × device × compute type (:func:`asr_plan`): load time, streaming RTF
on a fixed clip — the real :class:`asr.streaming.StreamingTranscriber` with both its paths
(accurate and tentative, as when live) fed chunk by chunk as fast as possible, as
``benchmarks/asr_stream.py --fast`` (RTF = time spent in
the transcriber / audio time; a fast replay re-decodes at least as often as a live one,
so it does not flatter a slow machine) — WER/CER when the clip's reference text is known
and the whole recording was used, peak RSS (process, and the part the model added) and
peak GPU memory.

LLM, for each model (:func:`bench_llm`): load time, prefill tokens/s (the drafter's
whole-note prompt, one output token), generation tokens/s (a prompt that makes it write,
timed from the first token), peak memory, and the time of the drafter's real "lines"
calls on representative utterances (:data:`UTTERANCES`), from which
:func:`hardware.recommend.project_ten_minute` projects the time to draft a standard
10-minute consultation. Those are projections, not measurements of a 10-minute session;
``benchmarks/note_quality.py`` measures a real one.

Nothing here writes to disk; no transcript or note text is kept in the results.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from asr.errors import ConfigError, ScribeError
from hardware.memory import PeakRss
from hardware.recommend import asr_rank

logger = logging.getLogger(__name__)

MIN_CLIP_S = 30.0
MAX_CLIP_S = 120.0  # a longer clip is cut (and its WER not computed: the text cannot be aligned)
QUICK_CLIP_S = 30.0
CPU_COMPUTE = ("int8", "float32", "int8_float32")  # first two supported ones are measured
CUDA_COMPUTE = ("int8_float16", "float16", "int8")
TYPES_PER_DEVICE = 2
GEN_TOKENS = 64
QUICK_GEN_TOKENS = 24
LINE_WARMUP = 2  # the first call pays the whole prompt, the second caches the shared prefix
LINE_CALLS = 4
QUICK_LINE_CALLS = 1
CLIP_HINT = "pass --clip FILE: a recording of Norwegian speech, at least 30 s (and --clip-text FILE with its text for WER)"

ProgressFactory = Callable[[str, int], Callable[[int], None]]

# Invented utterances (no patient's words) for the "lines" calls: 18 words on average, as
# the drafted utterances of #3's 10-minute case (TEN_MINUTE.mean_words), one an answer to
# the clinician's question, speakers unknown as from live ASR. The first LINE_WARMUP are
# warm-up calls.
UTTERANCES: tuple[tuple[str | None, str], ...] = (
    (None, "Jeg har hatt vondt i halsen og feber i fire dager, og i natt var temperaturen trettiåtte komma sju."),
    ("Bruker du noen faste medisiner?", "Ja, jeg tar Levaxin femti mikrogram hver morgen, og så Paracet når det er verst."),
    (None, "Blodtrykket er hundre og førtiåtte over nittifire i dag, og pulsen er sytti, regelmessig."),
    ("Hvor lenge har kneet vært hovent?",
     "Det hovnet opp dagen etter at jeg vrei det på trening, så det er snart tre uker nå, og det låser seg av og til."),
    (None, "Jeg tror dette er en virusinfeksjon, så du trenger ikke antibiotika nå, "
           "men ta kontakt hvis feberen ikke gir seg i løpet av en uke."),
    (None, "Jeg øker amlodipin til ti milligram, og så tar vi nye blodprøver og ser deg igjen om seks uker."),
    ("Har du hatt brystsmerter?", "Nei, ingen brystsmerter, men jeg blir tung i pusten når jeg går opp trappene hjemme."),
)

# An invented consultation for the prefill prompt (the drafter's whole-note prompt).
_PREFILL_TURNS = (
    ("lege", "Hei, kom inn. Hva kan jeg hjelpe deg med i dag?"),
    ("pasient", "Jeg har hatt hoste og feber i fem dager, og nå har jeg begynt å få vondt på høyre side "
                "av brystet når jeg puster dypt inn."),
    ("lege", "Har du hatt frysninger eller kortpustethet?"),
    ("pasient", "Ja, frysninger de to første nettene, og jeg blir litt tung i pusten når jeg går i trapper."),
    ("lege", "Bruker du noen faste medisiner, og har du noen allergier?"),
    ("pasient", "Jeg bruker Ventoline ved behov for astma, og så er jeg allergisk mot penicillin, fikk utslett "
                "av det som barn."),
    ("lege", "Nå lytter jeg på lungene. Det er knatrelyder basalt på høyre side. Temperaturen er trettiåtte "
             "komma fire, pulsen nittiseks, og metningen er nittifire prosent. CRP er hundre og tolv."),
    ("lege", "Dette ser ut som en lungebetennelse på høyre side. Fordi du ikke tåler penicillin, skriver jeg "
             "ut erytromycin, fem hundre milligram to ganger daglig i sju dager."),
    ("pasient", "Skal jeg være hjemme fra jobb?"),
    ("lege", "Ja, jeg sykmelder deg i en uke. Ta kontakt med en gang hvis du blir tyngre i pusten, og vi tar "
             "ny kontroll med CRP om fem dager."),
)


# --------------------------------------------------------------------------- memory


class PeakMemory(PeakRss):
    """Peak RSS of this process (psutil, sampled on a thread) and, on CUDA, the peak of
    the GPU's used memory (torch ``mem_get_info`` — device-wide, so CTranslate2's own
    allocations count, which ``torch.cuda.max_memory_allocated`` would miss — else
    ``nvidia-smi``). ``model_*`` are the peaks above what was in use at the start."""

    def __init__(self, *, cuda: bool = False, interval_s: float = 0.05) -> None:
        super().__init__(interval_s)
        self._gpu = _gpu_used_mb if cuda else None
        self.base_vram: float | None = None
        self.peak_vram: float | None = None

    def _sample_gpu(self) -> None:
        if self._gpu is None:
            return
        used = self._gpu()
        if used is not None:
            if self.base_vram is None:
                self.base_vram = used
            self.peak_vram = max(self.peak_vram or 0.0, used)

    def _tick(self, n: int) -> None:
        if n % 10 == 0:  # GPU queries are slower: every 0.5 s
            self._sample_gpu()

    def __enter__(self) -> PeakMemory:
        self._sample_gpu()
        super().__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        super().__exit__(et, ev, tb)
        self._sample_gpu()

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_mb

    @property
    def model_rss_mb(self) -> float:
        return max(0.0, (self.peak_bytes - self.base_bytes) / 2**20)

    @property
    def peak_vram_mb(self) -> float | None:
        if self.peak_vram is None or self.base_vram is None:
            return None
        return max(0.0, self.peak_vram - self.base_vram)


def _gpu_used_mb(index: int = 0) -> float | None:
    try:
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info(index)
            return (total - free) / 2**20
    except Exception:
        pass
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits", f"--id={index}"],
                             capture_output=True, text=True, timeout=5, check=False).stdout
        return float(out.strip().splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- the clip


@dataclass
class Clip:
    """The fixed recording every ASR configuration transcribes."""

    name: str
    audio: np.ndarray
    reference: str | None  # only when ``audio`` is the whole recording the text belongs to
    full_duration_s: float

    @property
    def duration_s(self) -> float:
        from asr.types import SAMPLE_RATE

        return len(self.audio) / SAMPLE_RATE

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "duration_s": round(self.duration_s, 2),
                "recording_s": round(self.full_duration_s, 2), "reference_text": self.reference is not None,
                "reference_words": len(self.reference.split()) if self.reference else None}


def shared_dir() -> Path:
    """The shared test data (``$SCRIBE_SHARED_DIR``, else ``../shared`` next to the repo)."""
    env = os.environ.get("SCRIBE_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def default_clip() -> tuple[Path, Path | None] | None:
    """The Norwegian speech recording (king.mp3, 85 s, with its text): the shared copy
    when present, else the one shipped with the demo (``app/demo``)."""
    audio = shared_dir() / "data" / "speech" / "king.mp3"
    if not audio.is_file():
        audio = Path(__file__).resolve().parents[1] / "app" / "demo" / "king.mp3"
    if not audio.is_file():
        return None
    text = audio.with_suffix(".txt")
    return audio, text if text.is_file() else None


def load_clip(path: Path, text_path: Path | None = None, *, max_s: float | None = None) -> Clip:
    """Decode ``path``; a clip shorter than :data:`MIN_CLIP_S` is refused. The first
    ``max_s`` (default :data:`MAX_CLIP_S`) seconds are used; the reference text is kept
    only when the whole recording is used (a cut clip cannot be aligned with it)."""
    from asr.sources import decode_file
    from asr.types import SAMPLE_RATE

    if text_path is not None and not Path(text_path).is_file():
        raise ConfigError(f"clip text not found: {text_path} (--clip-text takes a text file)")
    audio, problem = decode_file(path)
    if problem is not None:
        raise ConfigError(f"{problem}; {CLIP_HINT}")
    duration = len(audio) / SAMPLE_RATE
    if duration < MIN_CLIP_S:
        raise ConfigError(f"the clip {path} is only {duration:.1f} s long; {CLIP_HINT}")
    reference = Path(text_path).read_text(encoding="utf-8").strip() if text_path else None
    limit = min(max_s or MAX_CLIP_S, MAX_CLIP_S)
    if duration > limit + 0.05:
        audio = audio[: int(limit * SAMPLE_RATE)]
        reference = None
    return Clip(Path(path).name, audio, reference or None, duration)


# --------------------------------------------------------------------------- ASR


def _bar(desc: str, total: float, unit: str) -> Any:
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None,
                dynamic_ncols=True)


def asr_plan(models: Sequence[str | None], compute_types: dict[str, list[str]], *, quick: bool = False
             ) -> list[tuple[str | None, str, str]]:
    """(model, device, compute type) to measure: on the CPU the first supported of
    :data:`CPU_COMPUTE`, on CUDA device 0 (the one the app uses) of :data:`CUDA_COMPUTE`,
    at most :data:`TYPES_PER_DEVICE` each (1 when ``quick``)."""
    per = 1 if quick else TYPES_PER_DEVICE
    devices: list[tuple[str, list[str]]] = [
        ("cpu", [t for t in CPU_COMPUTE if t in compute_types.get("cpu", [])][:per])]
    if "cuda:0" in compute_types:
        devices.append(("cuda", [t for t in CUDA_COMPUTE if t in compute_types["cuda:0"]][:per]))
    return [(m, dev, t) for m in models for dev, types in devices for t in types]


def _model_bytes(directory: Path) -> int | None:
    try:
        return (directory / "model.bin").stat().st_size
    except OSError:
        return None


def _evict_whisper(model: Any) -> None:
    """Drop a Whisper model from the loader's per-process cache, so the next
    configuration's memory is its own."""
    from asr import loader

    with loader._lock:
        for key in [k for k, v in loader._loaded.items() if v is model]:
            del loader._loaded[key]


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``),
    so the next model's RSS baseline is not inflated by the previous one's freed memory."""
    gc.collect()
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        if name and "libc" in name:
            ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def bench_asr(
    model: str | None,
    device: str,
    compute_type: str,
    clip: Clip,
    base: Any | None = None,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
) -> dict[str, Any]:
    """One ASR configuration on ``clip`` (see the module docstring). A configuration that
    fails to load or run gives a row with ``error`` (and no RTF) instead of raising."""
    from asr.engine import AsrConfig, AsrEngine
    from asr.evaluation import error_rates
    from asr.pipeline import run_stream
    from asr.sources import ArraySource

    base = base or AsrConfig()
    config = dataclasses.replace(base, model=model, device=device, compute_type=compute_type)
    row: dict[str, Any] = {"label": None, "model": model, "device": device, "compute_type": compute_type,
                           "error": None}
    engine = None
    mem = PeakMemory(cuda=device == "cuda")
    try:
        with mem:
            t0 = time.perf_counter()
            engine = AsrEngine(config, cache_dir=cache_dir, progress_factory=progress_factory)
            row["load_s"] = time.perf_counter() - t0
            row.update(model=engine.model_id, model_dir=str(engine.model_dir))
            row["label"] = f"{engine.model_id} {engine.device}/{engine.compute_type}"
            bar = _bar(f"ASR {row['label']}", round(clip.duration_s, 1), "s")
            try:
                # both paths, as when live (the cheap tentative path costs time too)
                live = functools.partial(engine.transcriber, tentative=True)
                result = run_stream(ArraySource(clip.audio), live,
                                    on_progress=lambda pos: bar.update(round(pos, 1) - bar.n))
            finally:
                bar.close()
        text = result.transcript.text
        segments = len(result.transcript.segments)
        result.transcript.clear()
        if result.error is not None:
            raise result.error
        row.update(audio_s=result.audio_s, processing_s=result.processing_s, rtf=result.rtf, segments=segments)
        if clip.reference:
            rates = error_rates(clip.reference, text)
            row.update(wer=rates.wer, cer=rates.cer, reference_words=rates.reference_words)
        else:
            row.update(wer=None, cer=None, reference_words=None)
    except (ScribeError, RuntimeError, ValueError, OSError) as exc:
        row["error"] = _first_line(exc)
        row["rtf"] = None
        row.setdefault("wer", None)
        logger.warning("ASR %s %s/%s failed: %s", model, device, compute_type, row["error"])
    finally:
        if engine is not None:
            _evict_whisper(engine.model)
        del engine
        release_memory()
    if row["label"] is None:
        row["label"] = f"{model or 'embedded'} {device}/{compute_type}"
    name = str(row.get("model") or model or "")
    size = _model_bytes(Path(row["model_dir"])) if row.get("model_dir") else None
    row.update(size_rank=asr_rank(name, size), model_size_mb=size / 2**20 if size else None,
               peak_rss_mb=mem.peak_rss_mb, model_rss_mb=mem.model_rss_mb, peak_vram_mb=mem.peak_vram_mb)
    return row


# --------------------------------------------------------------------------- LLM


def estimate_params(directory: Path | None, name: str = "") -> tuple[float | None, str]:
    """(billions of parameters, where the figure comes from): the transformers config
    kept next to the model (``hf_config.json`` / ``config.json``: embeddings + per layer
    attention and MLP), else a size in the name ("1.5b"), else ``model.bin``'s size
    (int8: one byte per parameter)."""
    for fname in ("hf_config.json", "source_config.json", "config.json"):
        try:
            cfg = json.loads((directory / fname).read_text()) if directory else {}
        except (OSError, ValueError):
            continue
        cfg = cfg.get("text_config", cfg) if isinstance(cfg, dict) else {}
        h, layers = cfg.get("hidden_size") or cfg.get("n_embd"), cfg.get("num_hidden_layers") or cfg.get("n_layer")
        vocab = cfg.get("vocab_size")
        if not (h and layers and vocab):
            continue
        inter = cfg.get("intermediate_size") or 4 * h
        heads = cfg.get("num_attention_heads") or 1
        kv = cfg.get("num_key_value_heads") or heads
        head_dim = cfg.get("head_dim") or h // heads
        attn = 2 * h * heads * head_dim + 2 * h * kv * head_dim
        mlp = (3 if cfg.get("hidden_act", "silu") in ("silu", "swiglu", "gelu_pytorch_tanh") else 2) * h * inter
        emb = vocab * h * (1 if cfg.get("tie_word_embeddings", False) else 2)
        return round((layers * (attn + mlp) + emb) / 1e9, 3), fname
    m = re.search(r"(\d+(?:\.\d+)?)\s*b(?![a-z])", name.lower())
    if m:
        return float(m.group(1)), "name"
    size = _model_bytes(directory) if directory else None
    if size:
        return round(size / 1e9, 3), "model.bin size"
    return None, "unknown"


def installed_embedded_llms() -> list[str]:
    """Embedded LLM ids whose wheels are installed."""
    from summarize.llm.models import EMBEDDED_LLMS

    out = []
    for model_id, spec in EMBEDDED_LLMS.items():
        try:
            from asr.models import locate_part

            for part in spec.gguf.parts:
                locate_part(part)
            out.append(model_id)
        except ScribeError:
            logger.info("embedded LLM %s is not installed", model_id)
    return out


def _representative_units() -> list[Any]:
    from summarize.draft import lines
    from summarize.types import Utterance

    out = []
    for i, (question, text) in enumerate(UTTERANCES):
        q = Utterance(2 * i, question, None, None, None) if question else None
        out.append(lines.Unit(Utterance(2 * i + 1, text, None, None, None), q))
    return out


def _prefill_messages(template: Any) -> list[Any]:
    from summarize.draft.note_prompt import build_messages
    from summarize.types import Utterance

    utts = [Utterance(i, text, None, None, who) for i, (who, text) in enumerate(_PREFILL_TURNS)]
    return build_messages(template, utts)


def _write_messages() -> list[Any]:
    from summarize.llm.base import ChatMessage

    return [ChatMessage("system", "Du er en medisinsk sekretær. Skriv utfyllende på bokmål."),
            ChatMessage("user", "Skriv en lang og detaljert pasientinformasjon om behandling av høyt blodtrykk: "
                                "levevaner, legemidler, bivirkninger og kontroller. Minst 400 ord.")]


def bench_llm(
    spec: str | None,
    base: Any | None = None,
    *,
    quick: bool = False,
    template: Any | None = None,
) -> dict[str, Any]:
    """One LLM (see the module docstring). A model that fails to load or run gives a row
    with ``error`` instead of raising."""
    from summarize.draft.drafter import DraftOptions, NoteDrafter
    from summarize.llm.base import ChatMessage
    from summarize.llm.config import LlmConfig
    from summarize.llm.registry import create_engine

    if template is None:
        from summarize.templates.template import load_template

        template = load_template("allmennmedisin")
    base = base or LlmConfig()
    config = base.model_copy(update={"model": spec})
    n_calls = QUICK_LINE_CALLS if quick else LINE_CALLS
    gen_tokens = QUICK_GEN_TOKENS if quick else GEN_TOKENS
    units = _representative_units()[: LINE_WARMUP + n_calls]
    row: dict[str, Any] = {"label": None, "model": spec, "error": None}
    engine = None
    mem = PeakMemory(cuda=config.device == "cuda" or (config.device == "auto" and _cuda_present()))
    bar = _bar(f"LLM {spec or 'embedded'}", 3 + len(units), "step")
    try:
        with mem:
            t0 = time.perf_counter()
            engine = create_engine(config)
            row["load_s"] = time.perf_counter() - t0
            device, ctype = getattr(engine, "device", config.device), getattr(engine, "compute_type", None)
            row.update(model=engine.model_id, device=device, compute_type=ctype,
                       engine=type(engine).__name__,
                       model_dir=str(getattr(engine, "directory", "") or "") or None,
                       context_length=engine.context_length)
            row["label"] = f"{engine.model_id} {device}/{ctype}"
            bar.set_description(f"LLM {row['label']}")
            bar.update(1)
            # warm-up: a short prompt with no prefix in common with the drafter's prompts
            engine.generate([ChatMessage("user", "Si hei.")], max_tokens=4)
            bar.update(1)
            pre = engine.generate(_prefill_messages(template), max_tokens=1)
            row.update(prefill_tokens=pre.prompt_tokens, prefill_s=pre.seconds,
                       prefill_tokens_per_s=pre.prompt_tokens / pre.seconds if pre.seconds > 0 else None)
            bar.update(1)
            first: list[float] = []
            t1 = time.perf_counter()
            gen = engine.generate(_write_messages(), max_tokens=gen_tokens,
                                  on_token=lambda _piece: first.append(time.perf_counter()) if not first else None)
            t_end = time.perf_counter()
            decode_s = t_end - first[0] if first else gen.seconds
            row.update(gen_tokens=gen.tokens, gen_s=gen.seconds, gen_first_token_s=(first[0] - t1) if first else None,
                       gen_tokens_per_s=(gen.tokens - 1) / decode_s if gen.tokens > 1 and decode_s > 0 else None)
            bar.update(1)
            drafter = NoteDrafter(template, engine, DraftOptions(batch_size=1))
            times: list[float] = []
            tokens: list[int] = []
            for unit in units:
                calls, toks = drafter.timing.llm_calls, drafter.timing.tokens
                t0 = time.perf_counter()
                drafter.draft_units([unit])
                times.append(time.perf_counter() - t0)
                tokens.append(drafter.timing.tokens - toks)
                if drafter.timing.llm_calls != calls + 1:
                    raise RuntimeError("the drafter made no model call")
                bar.update(1)
        measured = times[LINE_WARMUP:]
        row.update(warmup_s=times[:LINE_WARMUP], line_calls_s=measured, line_tokens=tokens[LINE_WARMUP:],
                   per_call_s=sum(measured) / len(measured) if measured else None)
    except (ScribeError, RuntimeError, ValueError, OSError) as exc:
        row["error"] = _first_line(exc)
        row["per_call_s"] = None
        logger.warning("LLM %s failed: %s", spec, row["error"])
    finally:
        bar.close()
        if engine is not None:
            engine.close()
        del engine
        release_memory()
    if row["label"] is None:
        row["label"] = str(spec or "embedded")
    params, source = estimate_params(Path(row["model_dir"]) if row.get("model_dir") else None,
                                     str(row.get("model") or spec or ""))
    row.update(params_b=params, params_source=source, peak_rss_mb=mem.peak_rss_mb, model_rss_mb=mem.model_rss_mb,
               peak_vram_mb=mem.peak_vram_mb)
    return row


def _cuda_present() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False
