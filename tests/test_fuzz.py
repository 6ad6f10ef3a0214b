"""Fuzzing the parsers and the verifier (#17): random and mutated transcripts, JSON lines and
templates, from a fixed seed (the same cases on every run, bounded in time). Every case must
end within its deadline with either a result or one clear one-line error, never another
exception."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from asr.errors import ScribeError
from tests.conftest import CONSULTATIONS

SEED = 20261206
CASES = 60
DEADLINE_S = 20.0  # per case; the real cases take milliseconds
NOISE = ["\x00", "\x1b[2J", "\n", "\r", "\t", "\u202e", "\ufeff", "{", "}", "[", "]", "\"", "\\", "…", "æøå",
         "–", "50 … nei, 25", "mg", "x 2", "Lege:", "Pasient:", "{{", "}}", "{%", "%}", "*a", "&a", "---", "%", "😀"]


def _turns() -> list[str]:
    out = []
    for f in sorted(CONSULTATIONS.glob("*.yaml")):
        out += [t["text"] for t in yaml.safe_load(f.read_text(encoding="utf-8"))["turns"]]
    return out


def _mutate(rng: random.Random, text: str, n: int = 6) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, n)):
        op = rng.random()
        pos = rng.randint(0, len(chars))
        if op < 0.4:
            chars[pos:pos] = list(rng.choice(NOISE))
        elif op < 0.7 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.85:
            chars[pos:pos] = list(rng.choice(NOISE) * rng.randint(1, 200))
        else:
            chars[pos:pos] = [chr(rng.randint(1, 0x2FFF))]
    return "".join(chars)


def _within_deadline(fn: Callable[[], Any]) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 (checked by the caller)
            box["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(DEADLINE_S)
    assert not t.is_alive(), "a case did not finish within its deadline"
    if "exc" in box:
        raise box["exc"]
    return box.get("value")


def _one_line_error_or_result(fn: Callable[[], Any]) -> Any:
    try:
        return _within_deadline(fn)
    except ScribeError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and "\x1b" not in msg and "Traceback" not in msg, repr(msg)
        return None


def test_mutated_transcripts_parse_or_fail_in_one_line_and_draft_and_verify(tmp_path: Path) -> None:
    from summarize.draft.note import make_note
    from summarize.templates.template import load_template
    from summarize.transcript_io import read_transcript

    rng = random.Random(SEED)
    turns = _turns()
    template = load_template("allmennmedisin")
    for i in range(CASES):
        lines = [("Lege: " if rng.random() < 0.5 else "Pasient: ") + t for t in rng.sample(turns, rng.randint(1, 12))]
        text = _mutate(rng, "\n".join(lines), n=12)
        path = tmp_path / f"t{i}.txt"
        path.write_bytes(text.encode("utf-8", "surrogatepass") if rng.random() < 0.9 else rng.randbytes(300))
        utts = _one_line_error_or_result(lambda p=path: read_transcript(p))
        if utts:
            result = _within_deadline(lambda u=utts: make_note(u, template, None))  # extractive + verifier
            assert result.draft is not None
            template.render(result.draft)


def test_mutated_json_lines_parse_or_fail_in_one_line(tmp_path: Path) -> None:
    from summarize.transcript_io import read_transcript

    rng = random.Random(SEED + 1)
    values: list[Any] = [None, True, 3, -1, 2.5, float("nan"), "", "tekst", [], ["a"], {}, {"word": 1}, 10**30]
    for i in range(CASES):
        rows = []
        for k in range(rng.randint(1, 6)):
            rec: dict[str, Any] = {"type": "segment", "id": k, "text": rng.choice(_turns()), "start": k, "end": k + 1,
                                   "words": [{"word": "hei", "start": k, "end": k + 0.5, "probability": 0.9}]}
            for _ in range(rng.randint(0, 3)):
                key = rng.choice(["type", "id", "text", "start", "end", "words", "speaker", "extra"])
                rec[key] = rng.choice(values)
            rows.append(json.dumps(rec, allow_nan=True))
        text = _mutate(rng, "\n".join(rows), n=3) if rng.random() < 0.5 else "\n".join(rows)
        path = tmp_path / f"j{i}.jsonl"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _one_line_error_or_result(lambda p=path: read_transcript(p))


@pytest.mark.timeout(900)
def test_mutated_templates_validate_without_crashing(tmp_path: Path) -> None:
    from summarize.templates.discovery import BUILTIN_DIR
    from summarize.templates.template import check_template_text

    rng = random.Random(SEED + 2)
    base = (BUILTIN_DIR / "allmennmedisin.md.j2").read_text(encoding="utf-8")
    head, body = base.split("\n---\n", 1)
    valid = 0
    for i in range(CASES // 2):
        # half the cases mutate only the body lightly (so some stay valid and are rendered)
        text = _mutate(rng, base, n=4) if i % 2 else head + "\n---\n" + _mutate(rng, body, n=1)
        folder = tmp_path / f"m{i}"
        folder.mkdir()
        tpl, problems = _within_deadline(
            lambda t=text, f=folder: check_template_text(t, f / "allmennmedisin.md.j2", [BUILTIN_DIR]))
        for p in problems:
            assert p.message and "\n" not in p.message and "Traceback" not in p.message, p.message
        if tpl is not None:  # valid after the mutation: it renders
            valid += 1
            tpl.render_sample()
    assert 0 < valid < CASES // 2  # both kinds were exercised
