"""Read a transcript file into utterances: plain text (one utterance per line, optional
speaker prefix) or the JSON lines of ``scribe transcribe --json``.

The file is read once into memory; nothing is written anywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from asr.types import Word
from summarize.errors import TranscriptInputError
from summarize.types import Utterance

SPEAKERS = {"lege": "lege", "pasient": "pasient", "pårørende": "pårørende", "pårørande": "pårørende",
            "parorende": "pårørende"}


def normalize_speaker(speaker: object) -> str | None:
    """A speaker label as the drafter knows it ("parorende" → "pårørende"); None if unknown."""
    return SPEAKERS.get(str(speaker).strip().lower()) if speaker else None
_PREFIX = re.compile(r"^\s*(lege|pasient|pårørende|pårørande)\s*:\s*", re.IGNORECASE)


def parse_text(text: str) -> list[Utterance]:
    """Each non-empty line is one segment; its id is its 0-based index among them."""
    out: list[Utterance] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        speaker = None
        m = _PREFIX.match(line)
        if m:
            speaker = SPEAKERS[m.group(1).lower()]
            line = line[m.end() :]
        out.append(Utterance(len(out), line.strip(), speaker=speaker))
    return out


def parse_json_lines(text: str, name: str = "transcript") -> list[Utterance]:
    """The ``{"type": "segment", ...}`` lines of ``scribe transcribe --json`` (other
    record types, such as the summary, are skipped)."""
    out: list[Utterance] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TranscriptInputError(f"{name}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or rec.get("type", "segment") != "segment":
            continue
        try:
            words = tuple(
                Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("probability", 1.0)))
                for w in rec.get("words") or ()
            )
            speaker = rec.get("speaker")
            out.append(
                Utterance(
                    int(rec["id"]),
                    str(rec["text"]).strip(),
                    float(rec["start"]) if rec.get("start") is not None else None,
                    float(rec["end"]) if rec.get("end") is not None else None,
                    SPEAKERS.get(str(speaker).lower()) if speaker else None,
                    words,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TranscriptInputError(f"{name}:{n}: not a transcript segment (missing or bad {exc})") from None
    return out


MAX_TRANSCRIPT_BYTES = 400_000


def read_transcript(path: Path) -> list[Utterance]:
    """Read and parse ``path``; a clear :class:`TranscriptInputError` for anything wrong."""
    if not path.exists():
        raise TranscriptInputError(f"transcript not found: {path}")
    if path.is_dir():
        raise TranscriptInputError(f"{path} is a directory, not a transcript file")
    size = path.stat().st_size
    if size > MAX_TRANSCRIPT_BYTES:
        raise TranscriptInputError(
            f"{path} is {size // 1000} KB: a transcript is at most {MAX_TRANSCRIPT_BYTES // 1000} KB "
            "(about five hours of talk; a two-hour consultation is about 150 KB)")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise TranscriptInputError(f"{path} is not a text file (use plain text or scribe transcribe --json output)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TranscriptInputError(f"{path} is not UTF-8 text") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    utterances = parse_json_lines(text, path.name) if first.lstrip().startswith("{") else parse_text(text)
    utterances = [u for u in utterances if u.text]
    if not utterances:
        raise TranscriptInputError(f"transcript is empty: {path} has no text to draft a note from")
    return utterances
