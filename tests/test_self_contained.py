"""The repository stands alone: the tests, the demo and the benchmarks' defaults read data
inside it; a folder beside the repository (``../shared`` on the developers' machines) is
never required."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import CONSULTATIONS, ROOT, SPEECH

OUTSIDE = re.compile(r"""(\.\./shared|/ ?"shared" ?/|parents\[2\] ?/ ?"shared")""")


def test_test_data_is_inside_the_repository() -> None:
    for folder in (SPEECH, CONSULTATIONS):
        assert folder.resolve().is_relative_to(ROOT.resolve())
    assert (SPEECH / "king.mp3").stat().st_size > 1_000_000 and (SPEECH / "king.txt").is_file()
    cases = sorted(CONSULTATIONS.glob("*.yaml"))
    assert len(cases) == 6
    for case in cases:  # every consultation with its audio and turn times
        assert case.with_suffix(".flac").is_file() and case.with_suffix(".turns.json").is_file()
    for readme in (SPEECH / "README.md", CONSULTATIONS / "README.md", ROOT / "NOTICE"):
        assert "Apache" in readme.read_text(encoding="utf-8")  # origin and licence noted


def test_no_test_reads_a_folder_beside_the_repository() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
                 if p.name != Path(__file__).name and OUTSIDE.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders


def test_benchmarks_fall_back_to_the_repository_copy(monkeypatch) -> None:
    from benchmarks import note_quality as nq

    folder = nq.default_consultations()
    assert folder.name == "consultations" and any(folder.glob("*.yaml"))
    case = nq.load_case(CONSULTATIONS / "ortopedi-kne.yaml")
    assert case["audio"] == CONSULTATIONS / "ortopedi-kne.flac"
