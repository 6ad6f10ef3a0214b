"""The llama.cpp engine: the embedded 0.5B GGUF run as it is, constrained JSON, prefix
states, one-line errors for damaged or foreign GGUF files, and structured calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydantic import BaseModel

from summarize.errors import LlmError
from summarize.grounding.numbers import normalize_numbers
from summarize.llm.base import ChatMessage, Generation
from summarize.llm.config import LlmConfig
from summarize.llm.gguf_file import check_gguf, is_gguf
from summarize.llm.registry import auto_engine, create_engine
from summarize.llm.structured import StructuredStats, structured_call

SMALL = "qwen2.5-coder-0.5b-instruct-q4km"
SYSTEM = ChatMessage("system", "Du er en nøyaktig medisinsk sekretær i norsk helsetjeneste. "
                     "Du skriver korte setninger i journalstil på bokmål. " * 6)


class Medication(BaseModel):
    legemiddel: str
    dose_mg: float
    ganger_daglig: int


@pytest.fixture(scope="module")
def small_gguf() -> Path:
    from summarize.llm.models import resolve_gguf_model

    path, model_id = resolve_gguf_model(SMALL)
    assert model_id == SMALL and path.suffix == ".gguf"
    return path


@pytest.fixture(scope="module")
def llama(small_gguf: Path):
    eng = create_engine(LlmConfig(model=SMALL))
    yield eng
    eng.close()


# ------------------------------------------------------------------ engine choice (no model)


def test_auto_engine_picks_by_model(tmp_path: Path) -> None:
    assert auto_engine(None) == "llamacpp"
    assert auto_engine(SMALL) == "llamacpp"
    g = tmp_path / "norsk.gguf"
    g.write_bytes(b"GGUF" + b"\0" * 60)
    assert auto_engine(str(g)) == "llamacpp"
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"x")
    (ct2 / "config.json").write_text("{}")
    assert auto_engine(str(ct2)) == "ctranslate2"
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert auto_engine(str(hf)) == "transformers"
    assert is_gguf(g) and not is_gguf(ct2)


# ------------------------------------------------------------------ bad files: one line, the fix


def test_not_a_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "modell.gguf"
    bad.write_text("<html>404 Not Found</html>")
    with pytest.raises(LlmError, match="not a GGUF file") as exc:
        check_gguf(bad)
    assert "\n" not in str(exc.value)


def test_truncated_gguf(tmp_path: Path, small_gguf: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with small_gguf.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(40_000_000))
    with pytest.raises(LlmError, match="truncated") as exc:
        check_gguf(cut)
    msg = str(exc.value)
    assert "\n" not in msg and "copy the complete file again" in msg
    # the header itself cut short
    head = tmp_path / "head.gguf"
    with small_gguf.open("rb") as src:
        head.write_bytes(src.read(2000))
    with pytest.raises(LlmError, match="truncated"):
        check_gguf(head)


def test_gguf_without_chat_template(tmp_path: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "embedder.gguf"
    w = GGUFWriter(str(path), "bert")
    w.add_tensor("x", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(LlmError, match="no chat template"):
        check_gguf(path)


def test_cli_truncated_gguf_is_one_line(tmp_path: Path, small_gguf: Path) -> None:
    cut = tmp_path / "norsk-llm.gguf"
    with small_gguf.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(30_000_000))
    transcript = tmp_path / "t.txt"
    transcript.write_text("Lege: Blodtrykket er 150/90.\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "note", "--transcript", str(transcript), "--template",
         "allmennmedisin", "--llm", str(cut)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert "truncated" in lines[0] and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ the real 0.5B GGUF


@pytest.mark.integration
def test_generates_streams_and_stops(llama) -> None:
    assert llama.name == "llamacpp" and llama.model_id == SMALL
    pieces: list[str] = []
    msgs = [SYSTEM, ChatMessage("user", "Skriv tre korte setninger om blodtrykk, nummerert 1., 2., 3.")]
    gen = llama.generate(msgs, max_tokens=80, on_token=pieces.append, stop=["3."])
    assert isinstance(gen, Generation) and gen.tokens > 0
    assert "".join(pieces) == gen.text and "3." not in gen.text
    assert gen.first_token_s is not None and 0 < gen.first_token_s <= gen.seconds
    assert llama.count_tokens("Blodtrykk 150/90") > 0


@pytest.mark.integration
def test_json_schema_always_parses(llama) -> None:
    schema = Medication.model_json_schema()
    for text in ("Jeg skriver ut Metoprolol 50 mg to ganger daglig.",
                 "Fortsett med Ramipril, fem milligram én gang om dagen.",
                 "Pasienten bruker Paracet 1000 mg inntil fire ganger daglig ved behov."):
        gen = llama.generate([ChatMessage("user", f"Hent ut legemidlet som JSON: {text}")],
                             max_tokens=80, json_schema=schema)
        Medication.model_validate(json.loads(gen.text))


@pytest.mark.integration
def test_prefix_state_gives_the_same_output(llama, small_gguf: Path) -> None:
    """A restored prefix state must give exactly what a fresh evaluation gives."""
    from summarize.llm.llamacpp import LlamaCppEngine

    fresh = LlamaCppEngine(small_gguf, model_id=SMALL, prefix_cache=False)
    try:
        asks = ["Oppsummer: hoste i to uker.", "Oppsummer: feber i tre dager.",
                "Oppsummer: hoste i to uker."]
        other = [ChatMessage("system", "Svar med ett ord. " * 20), ChatMessage("user", "Farge?")]
        before = llama.cache_stats
        outs = []
        for i, ask in enumerate(asks):
            outs.append(llama.generate([SYSTEM, ChatMessage("user", ask)], max_tokens=30))
            if i == 0:
                llama.generate(other, max_tokens=5)  # another prompt family in between
        after = llama.cache_stats
        assert after["prefix_saves"] > before["prefix_saves"]
        assert outs[2].cached_tokens >= 64  # the shared prefix was not evaluated again
        assert outs[2].text == outs[0].text
        for ask, got in zip(asks, outs, strict=True):
            ref = fresh.generate([SYSTEM, ChatMessage("user", ask)], max_tokens=30)
            assert ref.cached_tokens == 0
            assert got.text == ref.text
    finally:
        fresh.close()


@pytest.mark.integration
def test_one_model_shared_by_threads(llama) -> None:
    """Two engines on one file share one loaded model; concurrent calls are serialised."""
    second = create_engine(LlmConfig(model=SMALL))
    try:
        assert second._loaded is llama._loaded
        results: dict[int, str] = {}

        def run(i: int, eng) -> None:
            results[i] = eng.generate([SYSTEM, ChatMessage("user", f"Skriv tallet {i}.")],
                                      max_tokens=10).text

        threads = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate((llama, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert set(results) == {0, 1} and all(results.values())
    finally:
        second.close()
    assert llama._loaded is not None  # the first engine still works
    assert llama.generate([ChatMessage("user", "Hei")], max_tokens=3).tokens > 0


# ------------------------------------------------------------------ structured calls (fakes)


class _Fake:
    name = "fake"
    model_id = "fake"
    context_length = 1000

    def __init__(self, answers: list[str], constrained: bool) -> None:
        self.answers = list(answers)
        self.constrained_json = constrained
        self.schemas: list[object] = []

    def generate(self, messages, *, max_tokens=512, temperature=0.0, stop=None, on_token=None,
                 json_schema=None) -> Generation:
        self.schemas.append(json_schema)
        return Generation(self.answers.pop(0), 5, 0.1)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass


def test_structured_call_validates_retries_and_falls_back() -> None:
    good = '{"legemiddel": "Metoprolol", "dose_mg": 50, "ganger_daglig": 2}'
    stats = StructuredStats()
    eng = _Fake([good], constrained=True)
    assert structured_call(eng, [ChatMessage("user", "x")], Medication, stats=stats).dose_mg == 50
    assert eng.schemas == [Medication.model_json_schema()]
    eng = _Fake(["Metoprolol 50 mg", "```json\n" + good + "\n```"], constrained=False)
    assert structured_call(eng, [ChatMessage("user", "x")], Medication, stats=stats).legemiddel == "Metoprolol"
    assert eng.schemas == [None, None]  # no constraint where the engine has none
    eng = _Fake(["nei", '{"legemiddel": "X"}'], constrained=True)
    assert structured_call(eng, [ChatMessage("user", "x")], Medication, stats=stats) is None
    assert stats.as_dict() == {"calls": 3, "valid_first": 1, "valid_retry": 1, "fallbacks": 1}


@pytest.mark.integration
def test_drafter_records_on_the_real_model(llama) -> None:
    """The drafter's structured records call on the embedded 0.5B through llama.cpp: every
    answer parses on the first try (constrained), and whatever is kept was said. The
    measurements are read without a call."""
    from summarize.draft import lines, records
    from summarize.draft.drafter import DraftOptions, NoteDrafter
    from summarize.templates.template import load_template
    from summarize.types import Utterance

    said = [
        Utterance(0, "Jeg skriver ut Metoprolol, femti milligram to ganger daglig.", speaker="lege"),
        Utterance(1, "Blodtrykket er hundre og seksti over nitti, og pulsen er åttiåtte.", speaker="lege"),
        Utterance(2, "Jeg tåler ikke penicillin, jeg fikk utslett av det.", speaker="pasient"),
    ]
    drafter = NoteDrafter(load_template("allmennmedisin"), llama, DraftOptions())
    found = [drafter.records_for(u) for u in lines.units(said)]
    assert drafter.structured.as_dict() == {"calls": 2, "valid_first": 2, "valid_retry": 0, "fallbacks": 0}
    assert [(v.name, v.value) for v in found[1].vitals] == [("BT", "160/90"), ("puls", "88")]
    for unit_records, u in zip(found, said, strict=True):
        assert unit_records is not None
        text = " ".join(t for _, t in records.rendered_lines(unit_records, u.speaker, ["anamnese", "funn", "legemidler"]))
        for number in re.findall(r"\d+", text):  # nothing the utterance did not say
            assert number in normalize_numbers(u.text)
