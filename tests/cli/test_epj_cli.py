"""``scribe epj test|secret`` and ``scribe note --deliver`` against a real FHIR server:
IT's connection check, and every bad input refused with one line before anything is sent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest
import yaml

from summarize.delivery.fhir_resource import decoded_text
from summarize.delivery.identifiers import with_check_digits
from tests.cli.test_cli import assert_one_line_error, fresh_env
from tests.conftest import CLIENT, CONSULTATIONS
from tests.fhir_server import Fault, FaultProxy, FhirServer

ROOT = Path(__file__).resolve().parents[2]
PATIENT = "13897248098"


@pytest.fixture()
def env(tmp_path: Path, model_cache: Path) -> dict[str, str]:
    e = fresh_env(tmp_path, model_cache)
    e.update({"PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": "tests.keyrings.FileKeyring",
              "SCRIBE_TEST_KEYRING": str(tmp_path / "keyring.json")})
    return e


def scribe(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def transcript(tmp_path: Path) -> Path:
    said = yaml.safe_load((CONSULTATIONS / "allmenn-hypertensjon.yaml").read_text(encoding="utf-8"))
    f = tmp_path / "input" / "samtale.txt"
    f.parent.mkdir()
    f.write_text("\n".join(f"{t['speaker'].capitalize()}: {t['text']}" for t in said["turns"]), encoding="utf-8")
    return f


def fhir_env(env: dict[str, str], base_url: str, **more: str) -> dict[str, str]:
    e = {**env, "SCRIBE_FHIR__BASE_URL": base_url, "SCRIBE_FHIR__AUTHOR": "PractitionerRole/lege-3",
         "SCRIBE_FHIR__BACKOFF_S": "0"}
    e.update({f"SCRIBE_FHIR__{k.upper()}": v for k, v in more.items()})
    return e


def test_epj_test_sends_a_synthetic_document_and_reads_it_back(env: dict[str, str], fhir_server: FhirServer) -> None:
    synthetic = with_check_digits("138972480")
    assert synthetic
    p = scribe(fhir_env(env, fhir_server.base_url, test_patient=synthetic), "epj", "test", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] and out["synthetic_patient"] and out["reference"].startswith("DocumentReference/")
    text = scribe(fhir_env(env, "http://127.0.0.1:9/fhir", test_patient=synthetic), "epj", "test",
                  "--url", fhir_server.base_url)  # --url wins over the settings
    assert text.returncode == 0 and "EPJ connection OK" in text.stdout, text.stderr


def test_epj_test_bad_input(env: dict[str, str], fhir_server: FhirServer, tmp_path: Path) -> None:
    assert_one_line_error(scribe(env, "epj", "test"), 2, "no test patient")
    assert_one_line_error(scribe(fhir_env(env, "", test_patient=PATIENT), "epj", "test"), 2, "not configured")
    assert_one_line_error(scribe(env, "epj", "test", "--sink", "clipboard"), 2, "no connection to test")
    dead = scribe(fhir_env(env, "http://127.0.0.1:9/fhir", test_patient=PATIENT, retries="0"), "epj", "test")
    assert_one_line_error(dead, 6, "cannot connect")


def test_epj_secret_goes_to_the_keyring_and_the_login_works(env: dict[str, str], fhir_auth_server: FhirServer,
                                                            tmp_path: Path) -> None:
    e = fhir_env(env, fhir_auth_server.base_url, auth="client_credentials", token_url=fhir_auth_server.token_url,
                 client_id=CLIENT["client_id"], test_patient=PATIENT)
    assert_one_line_error(scribe(e, "epj", "test"), 2, "no client secret")
    p = scribe(e, "epj", "secret", stdin=CLIENT["client_secret"] + "\n")
    assert p.returncode == 0 and CLIENT["client_secret"] not in p.stdout + p.stderr
    assert CLIENT["client_secret"] in (tmp_path / "keyring.json").read_text()
    config_dir = Path(e["XDG_CONFIG_HOME"])
    assert not any(CLIENT["client_secret"] in f.read_text(errors="replace") for f in config_dir.rglob("*")
                   if f.is_file())
    ok = scribe(e, "epj", "test")
    assert ok.returncode == 0 and "EPJ connection OK" in ok.stdout, ok.stderr


def test_note_deliver_stores_the_approved_note_and_audits(env: dict[str, str], fhir_server: FhirServer,
                                                          transcript: Path, tmp_path: Path) -> None:
    patient = with_check_digits("018501235")
    assert patient
    e = fhir_env(env, fhir_server.base_url)
    p = scribe(e, "note", "--transcript", str(transcript), "--template", "allmennmedisin", "--no-llm",
               "--deliver", "fhir", "--patient", patient, "--approve")
    assert p.returncode == 0, p.stderr
    ref = p.stderr.split("DocumentReference/")[1].split(")")[0]
    import httpx

    doc = httpx.get(f"{fhir_server.base_url}/DocumentReference/{ref}", timeout=10).json()
    assert doc["subject"]["identifier"]["value"] == patient
    assert decoded_text(doc).split("\n")[0] in p.stdout  # what was printed is what was stored
    audit = Path(e["XDG_DATA_HOME"]) / "ambient-scribe" / "audit.jsonl"
    rec = json.loads(audit.read_text().splitlines()[-1])
    assert rec["outcome"] == "delivered" and rec["extractive"] is True and rec["kept_segments"] > 0
    v = scribe(e, "audit", "verify")
    assert v.returncode == 0, v.stdout + v.stderr


def test_note_deliver_refuses_bad_input_before_anything_is_sent(env: dict[str, str], fhir_server: FhirServer,
                                                                fhir_auth_server: FhirServer, transcript: Path,
                                                                tmp_path: Path) -> None:
    proxy = FaultProxy(fhir_server.base_url.removesuffix("/fhir")).start()
    try:
        base = ["note", "--transcript", str(transcript), "--template", "allmennmedisin", "--no-llm",
                "--deliver", "fhir", "--approve"]
        e = fhir_env(env, proxy.base_url)
        cases = [
            (e, [*base, "--patient", "13897248099"], 2, "check digits"),
            (e, [*base, "--patient", "123"], 2, "11 digits"),
            (e, base, 2, "no patient"),
            ({**e, "SCRIBE_FHIR__AUTHOR": ""}, [*base, "--patient", PATIENT], 2, "no author"),
            ({**e, "SCRIBE_FHIR__BASE_URL": ""}, [*base, "--patient", PATIENT], 2, "not configured"),
            (fhir_env(env, proxy.base_url, ca_bundle=str(tmp_path / "nope.pem")), [*base, "--patient", PATIENT],
             2, "nope.pem: no such file"),
            (fhir_env(env, proxy.base_url, auth="client_credentials", client_id="x",
                      token_url=fhir_auth_server.token_url), [*base, "--patient", PATIENT], 2, "no client secret"),
            (e, ["note", "--transcript", str(transcript), "--template", "allmennmedisin", "--no-llm",
                 "--deliver", "fhir", "--patient", PATIENT], 2, "needs --approve"),
            (e, ["note", "--transcript", str(transcript), "--template", "allmennmedisin", "--no-llm",
                 "--patient", PATIENT], 2, "goes with --deliver"),
            (e, [*base, "--patient", PATIENT, "--deliver", "fax"], 2, "unknown EPJ sink"),
        ]
        for environment, args, code, why in cases:
            assert_one_line_error(scribe(environment, *args), code, why)
        # the token endpoint answers with an error: a login page instead of OAuth2
        proxy_login = FaultProxy(fhir_server.base_url.removesuffix("/fhir")).start()
        proxy_login.faults = deque([Fault("status", 200, "<html>Logg inn</html>")])
        try:
            with_secret = fhir_env(env, proxy.base_url, auth="client_credentials", client_id="x",
                                   token_url=proxy_login.base_url + "/token")
            (tmp_path / "keyring.json").write_text(json.dumps({"ambient-scribe-fhir\0x": "secret"}))
            assert_one_line_error(scribe(with_secret, *base, "--patient", PATIENT), 2, "without JSON")
        finally:
            proxy_login.stop()
        assert proxy.seen == []  # nothing reached the EPJ
    finally:
        proxy.stop()


def test_a_refused_note_is_kept_on_stdout_and_the_exit_is_non_zero(env: dict[str, str], fhir_server: FhirServer,
                                                                   transcript: Path) -> None:
    proxy = FaultProxy(fhir_server.base_url.removesuffix("/fhir")).start()
    proxy.faults = deque([Fault("status", 422, {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "Mangler enhet"}]})])
    try:
        p = scribe(fhir_env(env, proxy.base_url), "note", "--transcript", str(transcript), "--template",
                   "allmennmedisin", "--no-llm", "--deliver", "fhir", "--patient", PATIENT, "--approve")
    finally:
        proxy.stop()
    assert_one_line_error(p, 6, "Mangler enhet")
    assert "NOT stored" in p.stderr and "Anamnese" in p.stdout  # the note is on the screen to copy
    audit = Path(env["XDG_DATA_HOME"]) / "ambient-scribe" / "audit.jsonl"
    rec = json.loads(audit.read_text().splitlines()[-1])
    assert rec["outcome"] == "failed" and rec["error_kind"] == "http_422"


def test_no_delivery_when_the_audit_line_cannot_be_written(env: dict[str, str], fhir_server: FhirServer,
                                                           transcript: Path, tmp_path: Path) -> None:
    """#17 item 7: with no OS keyring the note was delivered (rc 0) and the audit line
    skipped with a warning. Auditing configured and impossible: nothing is sent."""
    import httpx

    patient = with_check_digits("018501236")
    e = fhir_env({**env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}, fhir_server.base_url)
    p = scribe(e, "note", "--transcript", str(transcript), "--template", "allmennmedisin", "--no-llm",
               "--deliver", "fhir", "--patient", patient, "--approve")
    assert p.returncode == 2, p.stderr
    assert_one_line_error(p, 2, "audit line cannot be written")
    assert "audit.enabled = false" in p.stderr and "keyring" in p.stderr
    found = httpx.get(f"{fhir_server.base_url}/DocumentReference", params={"subject:identifier": patient},
                      timeout=10).json()
    assert not found.get("entry")  # nothing reached the EPJ
    assert not (Path(e["XDG_DATA_HOME"]) / "ambient-scribe" / "audit.jsonl").exists()
    # IT switches the audit off explicitly: the note goes out
    ok = scribe({**e, "SCRIBE_AUDIT__ENABLED": "false"}, "note", "--transcript", str(transcript), "--template",
                "allmennmedisin", "--no-llm", "--deliver", "fhir", "--patient", patient, "--approve")
    assert ok.returncode == 0, ok.stderr
    stored = httpx.get(f"{fhir_server.base_url}/DocumentReference", params={"subject:identifier": patient},
                       timeout=10).json()
    assert len(stored.get("entry", [])) == 1  # the search above would have seen it


def test_an_unknown_outcome_says_unknown_and_running_again_stores_the_note_once(
        env: dict[str, str], fhir_server: FhirServer, transcript: Path) -> None:
    """#17 item 1: the proxy forwards the POST (the EPJ stores the note), drops the connection
    and answers the search with 503. The CLI printed "NOT stored", and running again made a
    second copy with a new identifier. Now: "not known", audit "unknown", and the same
    command again stores nothing new (the identifier comes from the patient and the text)."""
    patient = with_check_digits("018501237")
    proxy = FaultProxy(fhir_server.base_url.removesuffix("/fhir")).start()
    proxy.faults = deque([Fault("drop_after_forward"), Fault("status", 503, {}, method="GET")])
    args = ["note", "--transcript", str(transcript), "--template", "allmennmedisin", "--no-llm",
            "--deliver", "fhir", "--patient", patient, "--approve"]
    try:
        e = fhir_env(env, proxy.base_url, retries="0")
        first = scribe(e, *args)
        assert first.returncode == 6, first.stderr
        assert "NOT KNOWN" in first.stderr and "NOT stored" not in first.stderr and "Anamnese" in first.stdout
        audit = Path(env["XDG_DATA_HOME"]) / "ambient-scribe" / "audit.jsonl"
        assert json.loads(audit.read_text().splitlines()[-1])["outcome"] == "unknown"
        again = scribe(e, *args)  # a new process, a new session: the same note
        assert again.returncode == 0, again.stderr
    finally:
        proxy.stop()
    ref = again.stderr.split("DocumentReference/")[1].split(")")[0]
    import httpx

    doc = httpx.get(f"{fhir_server.base_url}/DocumentReference/{ref}", timeout=10).json()
    copies = fhir_server.search(doc["identifier"][0]["value"])
    assert len(copies) == 1  # stored once, by the first run
    assert json.loads(audit.read_text().splitlines()[-1])["outcome"] == "delivered"
