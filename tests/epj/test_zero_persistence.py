"""Zero persistence, proven: "ingen mellomlagring – alt lagres direkte i EPJ".

A whole session from shared audio (transcribe with the embedded Whisper, draft with the
small embedded LLM, approve, deliver to a real FHIR server) runs in a fresh process whose
HOME, TMPDIR and XDG directories are new, empty folders. Afterwards every file created
or changed under them and under the working directory is listed: only the config and the
audit log may exist (the model cache is read from the shared cache outside), and no file
and no log line may contain any 4-word sequence of what was said or of the stored note.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from summarize.delivery.fhir_resource import decoded_text
from tests.conftest import consultation_clip
from tests.fhir_server import FhirServer

ROOT = Path(__file__).resolve().parents[2]
SMALL_LLM = "qwen2.5-coder-0.5b-instruct-q4km"
PATIENT = "24856012480"  # synthetic, used by no other test


def shingles(text: str, n: int = 4) -> set[str]:
    words = [w.strip(".,;:!?«»\"'()") for w in text.lower().split()]
    words = [w for w in words if w]
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def leaked(blob: str, spoken: set[str]) -> list[str]:
    flat = " ".join(w.strip(".,;:!?«»\"'()") for w in blob.lower().split())
    return sorted(s for s in spoken if s in flat)


def _fresh(root: Path) -> tuple[dict[str, str], dict[str, Path]]:
    home = root / "home"
    dirs = {"HOME": home, "TMPDIR": root / "tmp", "XDG_CONFIG_HOME": root / "xdg-config",
            "XDG_CACHE_HOME": root / "xdg-cache", "XDG_DATA_HOME": root / "xdg-data",
            "XDG_STATE_HOME": root / "xdg-state", "XDG_RUNTIME_DIR": root / "xdg-runtime", "CWD": root / "work"}
    for d in dirs.values():
        d.mkdir(parents=True)
    from asr.models import default_cache_dir

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRIBE_", "XDG_", "PYTHON_KEYRING"))}
    env.update({k: str(v) for k, v in dirs.items() if k != "CWD"})
    env.update({
        "SCRIBE_MODEL_CACHE": str(default_cache_dir()),   # read-only here: assembled by install/earlier runs
        "PYTHONPATH": str(ROOT),
        "PYTHON_KEYRING_BACKEND": "tests.keyrings.FileKeyring",
        "SCRIBE_TEST_KEYRING": str(root / "keyring.json"),  # the OS keyring stands outside the user's files
    })
    env.pop("MPLCONFIGDIR", None)
    return env, dirs


def _files(dirs: dict[str, Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for d in dirs.values() for p in d.rglob("*") if p.is_file()}


@pytest.mark.integration
def test_a_whole_session_leaves_nothing_but_config_and_audit(tmp_path: Path, fhir_server: FhirServer) -> None:
    # the first 120 s (15 turns): the whole 227 s took 259 s on a 2-core AMD EPYC
    (tmp_path / "input").mkdir()
    audio, _, turns = consultation_clip("allmenn-luftveisinfeksjon", 120.0, tmp_path / "input" / "clip.wav")
    env, dirs = _fresh(tmp_path)
    config = dirs["XDG_CONFIG_HOME"] / "ambient-scribe" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[app]\nsink = "fhir"\n\n[fhir]\nbase_url = "{fhir_server.base_url}"\n'
                      'author = "PractitionerRole/lege-1"\nbackoff_s = 0.2\n', encoding="utf-8")
    before = _files(dirs)

    p = subprocess.run(
        [sys.executable, "-m", "app.cli", "note", str(audio), "--template", "allmennmedisin", "--llm", SMALL_LLM,
         "--deliver", "fhir", "--patient", PATIENT, "--approve"],
        env=env, cwd=dirs["CWD"], capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "sendt" in p.stderr and "DocumentReference/" in p.stderr

    # the note is in the EPJ, once, for this patient
    docs = _docs_for(fhir_server, PATIENT)
    assert len(docs) == 1, len(docs)
    note = decoded_text(docs[0])
    assert docs[0]["docStatus"] == "preliminary" and len(note.split()) > 20

    spoken = set().union(*(shingles(t["text"]) for t in turns))
    # what the ASR produced is in the note's kept sentences; the printed draft is stdout (the
    # clinician's screen, not a file): both are patient text that must not be on disk
    patient_text = spoken | shingles(note) | shingles(p.stdout)
    assert len(shingles(note)) > 20

    # files: only the config (unchanged) and the audit log
    after = _files(dirs)
    changed = {f for f, t in after.items() if before.get(f) != t}
    audit = dirs["XDG_DATA_HOME"] / "ambient-scribe" / "audit.jsonl"
    assert changed == {audit}, sorted(str(f.relative_to(tmp_path)) for f in changed)
    assert set(after) == {config, audit}, sorted(str(f.relative_to(tmp_path)) for f in after)
    for f in after:
        assert leaked(f.read_text(encoding="utf-8", errors="replace"), patient_text) == [], f
    assert (audit.stat().st_mode & 0o777) == 0o600

    # logs at the default level carry no patient text
    assert leaked(p.stderr, spoken | shingles(note)) == []

    # the audit line: one session, delivered, PHI-free, and the chain verifies
    [line] = audit.read_text(encoding="utf-8").splitlines()
    rec = json.loads(line)
    assert rec["outcome"] == "delivered" and rec["sink"] == "fhir" and rec["template_id"] == "allmennmedisin"
    assert rec["asr_sha256"] and rec["llm_model"] == SMALL_LLM and rec["audio_s"] > 110
    # the voices were told apart (counted, never stored); no voice profile was made
    assert rec["speakers"]["voices"] >= 1 and set(rec["speakers"]) <= {"voices", "relabels", "profile"}
    v = subprocess.run([sys.executable, "-m", "app.cli", "audit", "verify"], env=env, cwd=dirs["CWD"],
                       capture_output=True, text=True, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr
    assert _files(dirs).keys() == after.keys()  # verifying wrote nothing either


def _docs_for(server: FhirServer, fnr: str) -> list[dict]:
    import httpx

    r = httpx.get(f"{server.base_url}/DocumentReference", params={"_count": "1000"}, timeout=30)
    r.raise_for_status()
    docs = [e["resource"] for e in r.json().get("entry") or []]
    return [d for d in docs if d.get("subject", {}).get("identifier", {}).get("value") == fnr
            and "TESTDOKUMENT" not in decoded_text(d)]


def test_core_dumps_are_disabled_for_the_scribe_process(tmp_path: Path) -> None:
    code = ("import resource, sys; from app.cli import main; main(['templates', 'list']); "
            "sys.stderr.write(repr(resource.getrlimit(resource.RLIMIT_CORE)))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0 and p.stderr.strip().endswith("(0, 0)"), p.stderr[-500:]
