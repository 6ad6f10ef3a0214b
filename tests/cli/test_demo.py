"""`scribe demo` as a new user runs it: a subprocess with a fresh HOME/TMPDIR, the real
embedded Whisper on the bundled real speech, the real small LLM on the bundled fictional
consultation; nothing written to disk."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import fresh_env
from tests.fakes import countries_heard

ROOT = Path(__file__).parents[2]
SMALL_LLM = "qwen2.5-coder-0.5b-instruct-q4km"


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_demo_shows_a_live_transcript_with_its_wer_and_a_labelled_draft(tmp_path: Path) -> None:
    from asr.models import default_cache_dir

    env = fresh_env(tmp_path, default_cache_dir())
    env["SCRIBE_LLM__MODEL"] = SMALL_LLM  # the fast one; the default is the 1.5B (same code)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    p = subprocess.run([sys.executable, "-m", "app.cli", "demo"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=880)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    # labelled as a demo on fictional data, and as a draft the clinician approves
    assert "oppdiktede data" in out and "klinikeren kontrollerer og godkjenner" in out
    # part 1: committed segments with times, the words of the speech, then WER against the official text
    segments = re.findall(r"^\[\d\d:\d\d\.\d → \d\d:\d\d\.\d\] .+$", out, re.M)
    assert len(segments) >= 8
    assert countries_heard(out) >= 4
    wer = re.search(r"Ordfeilrate \(WER\) mot den offisielle teksten: (\d+)%", out)
    assert wer and 10 <= int(wer.group(1)) <= 70
    # part 2: the transcript is named as the source, the template, the note, the dropped small talk
    assert "teksttranskript" in out and "Mal: Allmennmedisin" in out
    note = out.split("UTKAST – DEMO", 1)[1]
    for heading in ("Anamnese:", "Funn:", "Plan:"):
        assert heading in note
    assert re.search(r"BT 148/94", note)  # the measured blood pressure, in journal form
    assert "Utelatt som småprat" in note and "sport" in note and "vær" in note
    # and where to go next
    assert "scribe note OPPTAK.wav" in out and "scribe app" in out
    # nothing on disk: no new file under HOME/TMPDIR/the working directory
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == before
