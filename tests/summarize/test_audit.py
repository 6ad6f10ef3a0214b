"""The audit log: PHI guard, hash chain + HMAC tamper evidence, report numbers.

Every test uses the in-memory keyring (``memory_keyring``) or a key passed directly, so
the real OS keyring is never touched.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from summarize.delivery.audit import GENESIS, AuditError, AuditLog, default_audit_path
from summarize.delivery.audit_keyring import audit_key
from summarize.delivery.audit_record import AUDIT_FIELDS, session_record
from summarize.delivery.audit_summary import record_values, summarize_records
from tests.keyrings import MemoryKeyring

KEY = bytes(range(32))
SENTENCE = "pasienten har hatt hoste og feber i tre dager"
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def rec(i: int = 0, **kw: Any) -> dict[str, Any]:
    """A realistic record of session ``i``; keyword arguments override fields."""
    args: dict[str, Any] = dict(
        session_id=f"3f2a9c1e-0000-4000-8000-{i:012d}",
        outcome="delivered",
        started_at=T0 + timedelta(hours=i),
        stopped_at=T0 + timedelta(hours=i, minutes=14),
        ended_at=T0 + timedelta(hours=i, minutes=16),
        audio_s=842.25,
        template_id="allmennlege",
        template_version="1.3.0",
        asr_model="whisper-base-ct2",
        asr_sha256="a" * 64,
        llm_model="qwen2.5-coder-1.5b-instruct-q4_k_m",
        llm_sha256="B" * 64,
        timings={"asr_s": 61.2345, "draft_s": 18.5, "verify_s": 0.25},
        dropped_segments=2,
        kept_segments=40,
        flags_by_kind={"no_evidence": 1, "uncertain_asr": 2},
        extractive=False,
        edit_ratio=0.12345,
        stop_to_approve_s=95.456,
        sink="clipboard",
        delivery_attempts=1,
    )
    args.update(kw)
    return session_record(**args)


def write_log(path: Path, n: int, key: bytes = KEY) -> AuditLog:
    log = AuditLog(path, key)
    for i in range(n):
        log.append(rec(i))
    return log


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def put_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(ln + b"\n" for ln in lines))


# ---------------------------------------------------------------------- session_record


def test_session_record_keeps_only_whitelisted_normalised_values() -> None:
    r = rec(0)
    assert set(r) <= set(AUDIT_FIELDS)
    assert r["started_at"] == "2025-03-03T08:00:00Z"
    assert r["audio_s"] == 842.25 and r["edit_ratio"] == 0.1235
    assert r["stop_to_approve_s"] == 95.46
    assert r["timings"] == {"asr_s": 61.234, "draft_s": 18.5, "verify_s": 0.25}
    assert r["llm_sha256"] == "b" * 64  # normalised to lower case
    assert r["flags_by_kind"] == {"no_evidence": 1, "uncertain_asr": 2}
    # None values are left out; pairs with repeated kinds are summed.
    r2 = session_record(session_id="s1", outcome="discarded",
                        flags_by_kind=[("empty", 1), ("empty", 2)])
    assert "template_id" not in r2 and "edit_ratio" not in r2
    assert r2["flags_by_kind"] == {"empty": 3}
    assert r2["ended_at"].endswith("Z")  # defaults to now


@pytest.mark.parametrize(
    "field",
    ["session_id", "template_id", "template_version", "asr_model", "llm_model", "sink"],
)
@pytest.mark.parametrize(
    "text",
    [
        SENTENCE,  # ASCII only: passes the character pattern, stopped by the word limit
        "Pasienten får Albyl-E",  # non-ASCII letters
        "hoste\nfeber",
        "",
    ],
)
def test_free_text_is_rejected_and_not_echoed(field: str, text: str) -> None:
    with pytest.raises(ValueError) as exc:
        rec(0, **{field: text})
    if text:
        assert text not in str(exc.value)


@pytest.mark.parametrize(
    "kw",
    [
        {"timings": {"hoste og feber": 1.0}},
        {"flags_by_kind": {SENTENCE: 1}},
        {"flags_by_kind": {"no_evidence": -1}},
        {"error_kind": "the server said: patient has fever"},
        {"asr_sha256": "not-a-hash"},
        {"outcome": "approved"},
        {"edit_ratio": 1.5},
        {"audio_s": float("nan")},
        {"dropped_segments": True},
        {"extractive": "yes"},
    ],
)
def test_invalid_values_are_rejected(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        rec(0, **kw)


def test_append_rejects_hand_built_records_with_free_text(tmp_path: Path) -> None:
    """append() is a second gate: a dict that bypassed session_record still cannot carry
    free text or unknown keys."""
    log = AuditLog(tmp_path / "audit.jsonl", KEY)
    bad_value = rec(0) | {"sink": SENTENCE}
    bad_key = rec(0) | {"note": "x"}
    chain_key = rec(0) | {"seq": 9}
    for bad in (bad_value, bad_key, chain_key):
        with pytest.raises(ValueError):
            log.append(bad)
    assert not (tmp_path / "audit.jsonl").exists()


# ---------------------------------------------------------------------- append / verify


def test_append_verify_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.jsonl"
    log = AuditLog(path, KEY)
    written = [log.append(rec(i)) for i in range(3)]
    assert [w["seq"] for w in written] == [1, 2, 3]
    assert written[0]["prev"] == GENESIS
    assert all(re.fullmatch(r"[0-9a-f]{64}", w["hmac"]) for w in written)
    assert log.records() == written
    # Every line is the canonical JSON of the written record.
    for line, w in zip(lines_of(path), written, strict=True):
        assert json.loads(line) == w
        assert line == json.dumps(w, sort_keys=True, separators=(",", ":")).encode()
    result = AuditLog(path, KEY).verify()
    assert result.ok and result.lines == 3 and result.problems == []


def test_empty_or_missing_log_verifies_without_the_key(tmp_path: Path) -> None:
    """Nothing to verify must not require (or create) a key."""

    def no_key() -> bytes:
        raise AssertionError("the key was asked for")

    missing = AuditLog(tmp_path / "none.jsonl", no_key).verify()
    (tmp_path / "empty.jsonl").write_bytes(b"")
    empty = AuditLog(tmp_path / "empty.jsonl", no_key).verify()
    assert (missing.ok, missing.lines) == (True, 0)
    assert (empty.ok, empty.lines) == (True, 0)


def test_deleted_middle_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 5)
    lines = lines_of(path)
    put_lines(path, lines[:2] + lines[3:])
    result = log.verify()
    assert not result.ok
    assert result.problems == ["line 3: sequence 4 after 2 (a line was removed)"]


def test_deleted_first_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 3)
    put_lines(path, lines_of(path)[1:])
    result = log.verify()
    assert not result.ok
    assert result.problems[0].startswith("line 1: sequence 2 at the start")


def test_deleted_last_line_is_not_detectable_by_the_chain(tmp_path: Path) -> None:
    """The documented limit of a bare hash chain: a truncated tail is a valid chain.
    The line count drops, which is what an operator can compare against."""
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 3)
    put_lines(path, lines_of(path)[:-1])
    result = log.verify()
    assert result.ok and result.lines == 2


def test_edited_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 4)
    lines = lines_of(path)
    obj = json.loads(lines[1])
    obj["edit_ratio"] = 0.01  # make the scribe look better; still valid JSON
    lines[1] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    put_lines(path, lines)
    result = log.verify()
    assert not result.ok
    assert result.problems[0].startswith("line 2: HMAC does not match")
    assert result.problems[1].startswith("line 3: previous-line hash does not match")
    assert len(result.problems) == 2


def test_whitespace_only_edit_is_detected(tmp_path: Path) -> None:
    """Same JSON content, different bytes: the HMAC still holds, the chain does not."""
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 3)
    lines = lines_of(path)
    lines[0] = json.dumps(json.loads(lines[0]), sort_keys=True).encode()  # ", " and ": "
    put_lines(path, lines)
    problems = log.verify().problems
    assert "line 1: not in canonical form (line altered)" in problems
    assert any(p.startswith("line 2: previous-line hash does not match") for p in problems)


def test_swapped_lines_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 4)
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    put_lines(path, lines)
    result = log.verify()
    assert not result.ok
    assert result.problems[:2] == [
        "line 2: sequence 3 after 1 (lines reordered)",
        "line 3: sequence 2 after 3 (lines reordered)",
    ]
    assert result.problems[2].startswith("line 4: previous-line hash does not match")


def test_line_written_with_another_key_is_detected(tmp_path: Path) -> None:
    """Someone without the key can append a well-formed line, but not a valid HMAC."""
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 2)
    AuditLog(path, b"\x01" * 32).append(rec(9, edit_ratio=0.0))
    result = log.verify()
    assert result.lines == 3
    assert result.problems == [
        "line 3: HMAC does not match (line altered, or written with another key)"
    ]


def test_forged_hmac_field_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 2)
    lines = lines_of(path)
    obj = json.loads(lines[1])
    obj["hmac"] = "0" * 64
    lines[1] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    put_lines(path, lines)
    assert log.verify().problems == [
        "line 2: HMAC does not match (line altered, or written with another key)"
    ]


def test_truncated_last_line_is_reported_and_append_continues(tmp_path: Path) -> None:
    """A write cut off mid-line (power loss) is flagged, and the next append still forms
    its own line and a valid chain from there."""
    path = tmp_path / "audit.jsonl"
    log = write_log(path, 2)
    data = path.read_bytes()
    path.write_bytes(data + data.splitlines()[0][:40])  # a fragment without newline
    written = log.append(rec(3))
    assert written["seq"] == 3
    lines = lines_of(path)
    assert len(lines) == 4 and json.loads(lines[-1]) == written
    result = log.verify()
    assert result.problems == ["line 3: not a valid audit record (damaged or truncated)"]
    with pytest.raises(AuditError, match="line 3"):
        log.records()


def test_two_instances_appending_alternately_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    a, b = AuditLog(path, KEY), AuditLog(path, KEY)
    seqs = [(a if i % 2 else b).append(rec(i))["seq"] for i in range(6)]
    assert seqs == [1, 2, 3, 4, 5, 6]
    result = a.verify()
    assert result.ok and result.lines == 6


def _append_many(path: str, n: int) -> None:
    log = AuditLog(Path(path), KEY)
    for i in range(n):
        log.append(rec(i))


@pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
def test_two_processes_appending_concurrently_keep_one_chain(tmp_path: Path) -> None:
    """The flock around read-last-line + append: without it two writers would both
    chain onto the same line and reuse a sequence number."""
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), 25)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    result = AuditLog(path, KEY).verify()
    assert result.ok, result.problems[:3]
    assert result.lines == 50


def test_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "audit.jsonl"
    write_log(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_key_callable_is_resolved_lazily_and_once(tmp_path: Path) -> None:
    calls: list[int] = []

    def key() -> bytes:
        calls.append(1)
        return KEY

    log = AuditLog(tmp_path / "audit.jsonl", key)
    assert calls == []
    log.append(rec(0))
    log.append(rec(1))
    assert log.verify().ok
    assert calls == [1]


# ---------------------------------------------------------------------- records / since


def test_records_since(tmp_path: Path) -> None:
    log = write_log(tmp_path / "audit.jsonl", 4)  # sessions end 08:16, 09:16, 10:16, 11:16
    since = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
    got = log.records(since=since)
    assert [r["seq"] for r in got] == [3, 4]
    assert len(log.records()) == 4
    assert log.records(since=datetime(2030, 1, 1, tzinfo=UTC)) == []


def test_records_of_a_missing_log_are_empty(tmp_path: Path) -> None:
    assert AuditLog(tmp_path / "none.jsonl", KEY).records() == []


def test_default_path_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIBE_AUDIT_LOG", str(tmp_path / "x.jsonl"))
    assert default_audit_path() == tmp_path / "x.jsonl"
    monkeypatch.delenv("SCRIBE_AUDIT_LOG")
    p = default_audit_path()
    assert p.name == "audit.jsonl" and "ambient-scribe" in p.parts


# ---------------------------------------------------------------------- the key


def test_audit_key_is_created_once_and_stored_base64(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(AuditError, match="no audit key in the OS keyring"):
        audit_key(create=False)
    k1 = audit_key()
    k2 = audit_key(create=False)
    assert k1 == k2 and len(k1) == 32
    stored = memory_keyring.passwords[("ambient-scribe", "audit-hmac-key")]
    import base64

    assert base64.b64decode(stored) == k1


def test_damaged_key_is_not_replaced(memory_keyring: MemoryKeyring) -> None:
    """A fresh key would silently make the existing log unverifiable."""
    memory_keyring.passwords[("ambient-scribe", "audit-hmac-key")] = "c2hvcnQ="
    with pytest.raises(AuditError, match="damaged"):
        audit_key()
    assert memory_keyring.passwords[("ambient-scribe", "audit-hmac-key")] == "c2hvcnQ="


def test_missing_keyring_is_one_line_audit_error(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(AuditError) as exc:
            audit_key()
        log = AuditLog(tmp_path / "audit.jsonl", audit_key)
        with pytest.raises(AuditError):
            log.append(rec(0))
    finally:
        keyring.set_keyring(previous)
    msg = str(exc.value)
    assert msg.startswith("no OS keyring for the audit key (NoKeyringError)")
    assert "\n" not in msg
    assert not (tmp_path / "audit.jsonl").exists()


# ---------------------------------------------------------------------- PHI


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_log_contains_no_transcript_shingles(tmp_path: Path) -> None:
    """The acceptance check: after sessions about this sentence, no 4-word run of it is
    anywhere in the file, even when a caller tries to slip it into a field."""
    transcript = f"Lege: Hva bringer deg hit? Pasient: {SENTENCE}. Lege: Har du tatt Paracet?"
    target = shingles(transcript)
    assert shingles(f'{{"x":"{SENTENCE}"}}') & target  # the check itself would catch it
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, KEY)
    for i in range(3):
        log.append(rec(i))
    for field in ("template_id", "llm_model", "session_id", "sink"):
        with pytest.raises(ValueError):
            log.append(rec(9, **{field: SENTENCE}))
    for words in (SENTENCE.split()[:4], SENTENCE.split()[4:8]):
        with pytest.raises(ValueError):
            log.append(rec(9, asr_model=" ".join(words)))
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 3
    assert not shingles(text) & target


# ---------------------------------------------------------------------- report


KNOWN: list[dict[str, Any]] = [
    session_record(session_id="a", outcome="delivered", ended_at=T0, extractive=False,
                   edit_ratio=0.1, stop_to_approve_s=30, flags_by_kind={"no_evidence": 1},
                   template_id="allmenn", template_version="1.0", sink="clipboard"),
    session_record(session_id="b", outcome="delivered", ended_at=T0 + timedelta(days=1),
                   extractive=True, edit_ratio=0.3, stop_to_approve_s=60,
                   flags_by_kind={"no_evidence": 2, "uncertain_asr": 1},
                   template_id="allmenn", template_version="1.0", sink="clipboard"),
    session_record(session_id="c", outcome="delivered", ended_at=T0 + timedelta(days=2),
                   extractive=False, edit_ratio=0.5, stop_to_approve_s=90, flags_by_kind={},
                   template_id="psykiatri", template_version="2.1", sink="file"),
    session_record(session_id="d", outcome="failed", ended_at=T0 + timedelta(days=3),
                   extractive=False, flags_by_kind={"empty": 1}, template_id="allmenn",
                   template_version="1.0", sink="fhir", error_kind="http_422",
                   delivery_attempts=3, dropped_segments=4, kept_segments=10),
    session_record(session_id="e", outcome="discarded", ended_at=T0 + timedelta(days=4)),
]


def test_summarize_records_known_values() -> None:
    s = summarize_records(KNOWN)
    assert s["sessions"] == 5 and s["delivered"] == 3
    assert s["by_outcome"] == {"delivered": 3, "failed": 1, "unknown": 0, "discarded": 1}
    assert s["first"] == "2025-03-03T08:00:00Z" and s["last"] == "2025-03-07T08:00:00Z"
    assert s["extractive"] == {"n": 4, "extractive": 1, "share": 0.25}
    assert s["edit_ratio"] == {"n": 3, "mean": 0.3, "median": 0.3, "p10": 0.14, "p90": 0.46,
                               "min": 0.1, "max": 0.5}
    assert s["stop_to_approve_s"] == {"n": 3, "mean": 60.0, "median": 60.0, "p10": 36.0,
                                      "p90": 84.0, "min": 30.0, "max": 90.0}
    # Flags per note: a, b, c, d recorded flags (3 of them delivered, d failed): 1, 3, 0, 1.
    assert s["flags_per_note"] == {"n": 4, "mean": 1.25, "median": 1.0, "p10": 0.3,
                                   "p90": 2.4, "min": 0.0, "max": 3.0}
    assert s["flags_by_kind"] == {"no_evidence": 3, "empty": 1, "uncertain_asr": 1}
    assert s["by_template"] == {"(none)": 1, "allmenn@1.0": 3, "psykiatri@2.1": 1}
    assert s["by_sink"] == {"clipboard": 2, "fhir": 1, "file": 1}
    assert s["errors"] == {"http_422": 1}
    assert s["segments"] == {"kept": 10, "dropped": 4}


def test_summarize_no_records() -> None:
    s = summarize_records([])
    assert s["sessions"] == 0 and s["extractive"]["share"] is None
    assert s["edit_ratio"]["n"] == 0 and s["edit_ratio"]["mean"] is None


def test_record_values_are_the_distributions_raw_values() -> None:
    """The histograms of the audit report (app.cli_audit) plot exactly these values."""
    values = record_values(KNOWN)
    assert values == {"edit_ratio": [0.1, 0.3, 0.5], "stop_to_approve_s": [30.0, 60.0, 90.0],
                      "flags_per_note": [1.0, 3.0, 0.0, 1.0]}
    assert record_values([]) == {"edit_ratio": [], "stop_to_approve_s": [],
                                 "flags_per_note": []}


def test_core_renders_no_html() -> None:
    """The HTML report lives outside the core (app.cli_audit + hardware.report)."""
    import summarize.delivery.audit
    import summarize.delivery.audit_summary

    assert not hasattr(summarize.delivery.audit, "report_html")
    assert not hasattr(summarize.delivery.audit_summary, "report_html")


def test_core_module_imports_no_qt_and_no_app() -> None:
    """summarize.delivery.audit and its record, key and summary modules are core code: usable
    headless, from the CLI and from tests; they import neither the app, nor Qt, nor the report
    renderer (hardware/, matplotlib)."""
    code = (
        "import sys, summarize.delivery.audit, summarize.delivery.audit_keyring, "
        "summarize.delivery.audit_record, summarize.delivery.audit_summary; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('app', 'PySide6', 'matplotlib', 'hardware')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=60, check=True).stdout
    assert out.strip() == ""


def test_preflight_checks_key_and_file_and_writes_nothing(tmp_path: Path) -> None:
    from summarize.delivery.audit import AuditError, AuditLog, check_before_delivery

    ok = AuditLog(tmp_path / "logs" / "audit.jsonl", b"k" * 32)
    check_before_delivery(ok)
    assert not (tmp_path / "logs" / "audit.jsonl").exists()  # a check leaves no file
    check_before_delivery(None)  # auditing switched off by IT
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(AuditError, match="not sent because its audit line cannot be written"):
        check_before_delivery(AuditLog(blocked / "audit.jsonl", b"k" * 32))
    with pytest.raises(AuditError, match="audit.enabled = false"):
        check_before_delivery(AuditLog(tmp_path / "a.jsonl", b""))
