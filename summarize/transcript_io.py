"""Read a transcript file into utterances: plain text (one utterance per line, optional
speaker prefix) or the JSON lines of ``scribe transcribe --json``.

The file is read once into memory; nothing is written anywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


def _int_as_float(cls: type, v: object) -> object:
    """Strict floats refuse 3; a whole number is a number (a boolean is not)."""
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class _WordRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    word: str
    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)
    probability: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)

    _numbers = field_validator("start", "end", "probability", mode="before")(  # type: ignore[var-annotated]
        classmethod(_int_as_float))


class _SegmentRecord(BaseModel):
    """One ``{"type": "segment", ...}`` line, typed strictly: a list as ``text``, a float or
    a string as ``id``, a boolean time are errors, not stringified into the note."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: int = Field(ge=0)
    text: str
    start: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    end: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    speaker: str | None = None
    words: list[_WordRecord] = Field(default_factory=list)

    _numbers = field_validator("start", "end", mode="before")(classmethod(_int_as_float))  # type: ignore[var-annotated]


def _first_problem(exc: ValidationError) -> str:
    e = exc.errors()[0]
    where = ".".join(str(x) for x in e.get("loc", ())) or "line"
    return f"{where}: {e.get('msg', 'invalid')}"


def parse_json_lines(text: str, name: str = "transcript") -> list[Utterance]:
    """The ``{"type": "segment", ...}`` lines of ``scribe transcribe --json`` (other
    record types, such as the summary, are skipped). Each segment is validated (types,
    unique ids); a problem is one :class:`TranscriptInputError` naming ``file:line``."""
    out: list[Utterance] = []
    seen: dict[int, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TranscriptInputError(f"{name}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(rec, dict):
            raise TranscriptInputError(f"{name}:{n}: a JSON line must be an object ({{\"type\": \"segment\", ...}})")
        if rec.get("type", "segment") != "segment":
            continue
        try:
            seg = _SegmentRecord.model_validate(rec)
        except ValidationError as exc:
            raise TranscriptInputError(f"{name}:{n}: not a transcript segment ({_first_problem(exc)})") from None
        if seg.id in seen:
            raise TranscriptInputError(f"{name}:{n}: segment id {seg.id} repeats line {seen[seg.id]}")
        seen[seg.id] = n
        words = tuple(Word(w.word, w.start, w.end, w.probability) for w in seg.words)
        out.append(Utterance(seg.id, seg.text.strip(), seg.start, seg.end, normalize_speaker(seg.speaker), words))
    return out


MAX_TRANSCRIPT_BYTES = 400_000


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


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
    first = next((line for line in text.splitlines() if line.strip()), "").lstrip()
    if first.startswith("[") and _is_json(first):
        raise TranscriptInputError(f"{path.name}:1: a JSON array is not a transcript: use one JSON object per "
                                   "line (scribe transcribe --json) or plain text")
    utterances = parse_json_lines(text, path.name) if first.startswith("{") else parse_text(text)
    utterances = [u for u in utterances if u.text]
    if not utterances:
        raise TranscriptInputError(f"transcript is empty: {path} has no text to draft a note from")
    return utterances
