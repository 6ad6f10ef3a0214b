"""Transcript files: plain text with speaker prefixes, JSON lines, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from summarize.errors import TranscriptInputError
from summarize.transcript_io import read_transcript


def test_text_lines_with_speaker_prefixes(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("Lege: Hvordan går det?\n\n  pasient:  Vondt i ryggen.\nPårørende: Han sover dårlig.\nUten prefiks\n",
                 encoding="utf-8")
    u = read_transcript(f)
    assert [(x.id, x.speaker, x.text) for x in u] == [
        (0, "lege", "Hvordan går det?"),
        (1, "pasient", "Vondt i ryggen."),
        (2, "pårørende", "Han sover dårlig."),
        (3, None, "Uten prefiks"),
    ]


def test_json_lines_of_scribe_transcribe(tmp_path: Path) -> None:
    seg = {"type": "segment", "id": 7, "start": 1.0, "end": 2.5, "text": "Metformin 500 mg.", "emitted_at": 3.0,
           "words": [{"word": " Metformin", "start": 1.0, "end": 1.6, "probability": 0.31},
                     {"word": " 500", "start": 1.7, "end": 2.0, "probability": 0.9}]}
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(seg) + "\n" + json.dumps({"type": "summary", "audio_s": 3}) + "\n", encoding="utf-8")
    (u,) = read_transcript(f)
    assert (u.id, u.start, u.end, u.text) == (7, 1.0, 2.5, "Metformin 500 mg.")
    assert u.words[0].probability == pytest.approx(0.31)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("dir", "is a directory"),
        (b"", "empty"),
        (b"\n  \n", "empty"),
        (b"\x00\x01\x02binary", "not a text file"),
        (b"\xff\xfe\xfa bad", "not UTF-8"),
        (b'{"type": "segment", "id": 1}\n', "not a transcript segment"),
        (b'{"type": "segment", "id": 1, \n', "not valid JSON"),
    ],
)
def test_bad_transcripts_give_one_clear_error(tmp_path: Path, content: object, message: str) -> None:
    f = tmp_path / "t.txt"
    if content == "dir":
        f.mkdir()
    elif content is not None:
        f.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(TranscriptInputError, match=message) as exc:
        read_transcript(f)
    assert "\n" not in str(exc.value)


def test_an_absurdly_large_transcript_is_refused_at_once(tmp_path: Path) -> None:
    """#17: a 5 MB single-line transcript ran for over ten minutes; now one line, at once."""
    from summarize.transcript_io import MAX_TRANSCRIPT_BYTES

    big = tmp_path / "stor.txt"
    big.write_text("Pasient: " + "amlodipien hodepine " * 250_000, encoding="utf-8")  # 5 MB
    with pytest.raises(TranscriptInputError, match="at most 400 KB") as err:
        read_transcript(big)
    assert "\n" not in str(err.value)
    ok = tmp_path / "to-timer.txt"  # a long consultation is still read
    ok.write_text("Lege: Hvordan går det med hodepinen?\n" * (150_000 // 37), encoding="utf-8")
    assert ok.stat().st_size < MAX_TRANSCRIPT_BYTES and len(read_transcript(ok)) > 4000


@pytest.mark.parametrize("lines, where, what", [
    ([{"type": "segment", "id": 0, "text": ["Ignorer", "alt"]}], ":1:", "text"),
    ([{"type": "segment", "id": 0, "text": "Hei."}, {"type": "segment", "id": 0, "text": "Igjen."}], ":2:",
     "repeats line 1"),
    ([{"type": "segment", "id": 1.5, "text": "Hei."}], ":1:", "id"),
    ([{"type": "segment", "id": "3", "text": "Hei."}], ":1:", "id"),
    ([{"type": "segment", "id": 0, "text": "Hei.", "start": True}], ":1:", "start"),
    ([{"type": "segment", "id": 0, "text": "Hei.", "start": float("nan")}], ":1:", "start"),
    ([{"type": "segment", "id": 0, "text": "Hei.", "words": [{"word": "Hei", "start": 0, "end": "1"}]}], ":1:",
     "words.0.end"),
    ([{"type": "segment", "id": 0, "text": "Hei."}, ["not", "an", "object"]], ":2:", "must be an object"),
])
def test_json_lines_are_typed_and_every_problem_names_its_line(tmp_path: Path, lines: list, where: str,
                                                              what: str) -> None:
    """#17: a list as text was stringified into the note, duplicate and float ids passed."""
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    with pytest.raises(TranscriptInputError) as err:
        read_transcript(f)
    msg = str(err.value)
    assert f"t.jsonl{where}" in msg and what in msg and "\n" not in msg


def test_a_json_array_first_line_is_refused_not_read_as_plain_text(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text('[{"type": "segment", "id": 0, "text": "Hei."}]\n', encoding="utf-8")
    with pytest.raises(TranscriptInputError, match="t.json:1: a JSON array"):
        read_transcript(f)
    times = tmp_path / "t.txt"  # 'scribe transcribe' text output starts with '[' and stays text
    times.write_text("[00:00.0 → 00:02.0] Hei.\n", encoding="utf-8")
    assert read_transcript(times)[0].text.endswith("Hei.")
    ints = tmp_path / "ok.jsonl"  # whole-number times are numbers
    ints.write_text(json.dumps({"type": "segment", "id": 0, "text": "Hei.", "start": 0, "end": 2,
                                "words": [{"word": "Hei.", "start": 0, "end": 2}]}), encoding="utf-8")
    assert read_transcript(ints)[0].end == 2.0
