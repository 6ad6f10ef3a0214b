"""``scribe audit verify|report``, run in-process against the in-memory keyring.

Through ``app.cli.main`` once ``audit`` is registered there; until then through
:func:`app.cli_audit.cmd_audit` with the parser of :func:`app.cli_audit.add_audit_parser`
(the same arguments and output either way).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli_audit import add_audit_parser, audit_report, cmd_audit
from summarize.delivery.audit import AuditLog
from summarize.delivery.audit_keyring import audit_key
from summarize.delivery.audit_record import session_record
from summarize.delivery.audit_summary import summarize_records
from tests.keyrings import MemoryKeyring

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def run(*argv: str) -> int:
    """Run ``scribe audit ...``; the exit code."""
    import app.cli

    if "audit" in getattr(app.cli, "COMMANDS", {}):
        return app.cli.main(["audit", *argv])
    parser = argparse.ArgumentParser(prog="scribe")
    add_audit_parser(parser.add_subparsers(dest="command"))
    return cmd_audit(parser.parse_args(["audit", *argv]))


def make_log(path: Path, n: int = 4) -> None:
    """``n`` sessions, one a day, signed with the (in-memory) keyring's audit key."""
    log = AuditLog(path, audit_key)
    for i in range(n):
        log.append(
            session_record(
                session_id=f"s{i}",
                outcome="delivered" if i % 4 else "discarded",
                ended_at=T0 + timedelta(days=i),
                extractive=i == 1,
                edit_ratio=0.1 * i,
                stop_to_approve_s=30.0 * i,
                flags_by_kind={"no_evidence": i},
                template_id="allmenn",
                template_version="1.0",
                sink="clipboard",
            )
        )


@pytest.fixture(autouse=True)
def no_user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own config file and SCRIBE_* variables must not leak into these tests."""
    import os

    for name in [n for n in os.environ if n.startswith("SCRIBE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SCRIBE_CONFIG", str(tmp_path / "no-config.toml"))


@pytest.fixture()
def log_path(tmp_path: Path, memory_keyring: MemoryKeyring) -> Path:
    path = tmp_path / "audit.jsonl"
    make_log(path)
    return path


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("scribe: error: "), err
    return lines[0]


def test_verify_intact(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("verify", "--log", str(log_path)) == 0
    assert capsys.readouterr().out.strip() == f"audit log {log_path}: 4 lines, intact"


@pytest.mark.parametrize("tamper", ["delete", "edit", "reorder"])
def test_verify_detects_tampering(
    log_path: Path, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = log_path.read_bytes().splitlines()
    if tamper == "delete":
        del lines[1]
        expected = "line 2: sequence 3 after 1 (a line was removed)"
    elif tamper == "edit":
        lines[2] = lines[2].replace(b'"edit_ratio":0.2', b'"edit_ratio":0.0')
        expected = "line 3: HMAC does not match"
    else:
        lines[1], lines[2] = lines[2], lines[1]
        expected = "line 2: sequence 3 after 1 (lines reordered)"
    log_path.write_bytes(b"\n".join(lines) + b"\n")
    assert run("verify", "--log", str(log_path)) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(expected), out
    assert "intact" not in out
    assert len(err.strip().splitlines()) == 1 and "problem(s)" in err


def test_verify_missing_log_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    memory_keyring: MemoryKeyring) -> None:
    assert run("verify", "--log", str(tmp_path / "none.jsonl")) == 0
    assert "does not exist" in capsys.readouterr().out
    assert memory_keyring.passwords == {}  # verifying never creates a key


def test_verify_default_path_from_env(log_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRIBE_AUDIT_LOG", str(log_path))
    assert run("verify") == 0
    assert "4 lines, intact" in capsys.readouterr().out


def test_verify_without_key_is_one_line_error(
    log_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    memory_keyring.passwords.clear()
    code = run("verify", "--log", str(log_path))
    assert code == 2
    line = error_line(capsys.readouterr().err)
    assert "no audit key in the OS keyring: this log cannot be verified here" in line
    assert memory_keyring.passwords == {}


def test_report_text(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("report", "--log", str(log_path)) == 0
    out = capsys.readouterr().out
    assert f"audit log {log_path}: 4 sessions" in out
    assert "delivered 3, failed 0, unknown 0, discarded 1" in out
    assert "1 of 4 (25.0 %)" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("edit ratio"))
    assert row.split()[2:] == ["4", "0.15", "0.15", "0.03", "0.27", "0", "0.3"]
    assert "no_evidence 6" in out and "allmenn@1.0 4" in out


def test_report_json_since_and_html(log_path: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out_html = tmp_path / "out" / "report.html"
    code = run("report", "--log", str(log_path), "--since", "2025-03-05", "--json",
               "--html", str(out_html))
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    expected = summarize_records(AuditLog(log_path, b"x").records()[2:])
    assert summary == expected and summary["sessions"] == 2
    page = out_html.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in page and "since 2025-03-05" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert [p.name for p in out_html.parent.iterdir()] == ["report.html"]  # no temp left


RECORDS = [
    session_record(session_id="a", outcome="delivered", ended_at=T0, extractive=False,
                   edit_ratio=0.1, stop_to_approve_s=30, flags_by_kind={"no_evidence": 1},
                   template_id="allmenn", template_version="1.0", sink="clipboard"),
    session_record(session_id="b", outcome="delivered", ended_at=T0 + timedelta(days=1),
                   extractive=True, edit_ratio=0.3, stop_to_approve_s=60,
                   flags_by_kind={"no_evidence": 2, "uncertain_asr": 1},
                   template_id="psykiatri", template_version="2.1", sink="file"),
    session_record(session_id="c", outcome="failed", ended_at=T0 + timedelta(days=2),
                   extractive=False, flags_by_kind={}, template_id="allmenn",
                   template_version="1.0", sink="fhir", error_kind="http_422"),
    session_record(session_id="d", outcome="discarded", ended_at=T0 + timedelta(days=3)),
]


def test_audit_report_html_is_self_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    report = audit_report(summarize_records(RECORDS), RECORDS, title="Audit <b>& co</b>")
    assert report.kind == "audit"
    page = report.html()
    assert page.count('<img src="data:image/png;base64,') == 4  # 3 histograms + share bar
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I)
    assert "<link" not in page and "<script" not in page
    assert "Audit &lt;b&gt;&amp; co&lt;/b&gt;" in page and "<b>&" not in page
    assert "psykiatri@2.1" in page and "http_422" in page and "1 of 3 (33.3 %)" in page
    assert "MPLCONFIGDIR" not in os.environ  # the temporary config dir is gone again
    doc = json.loads(json.dumps(report.to_json()))  # the same report is JSON-able
    assert doc["kind"] == "audit" and doc["sections"][1]["data"]["edit_ratio"]["n"] == 2


def test_audit_report_without_data_has_no_images() -> None:
    only_discarded = [RECORDS[-1]]
    page = audit_report(summarize_records(only_discarded), only_discarded).html()
    assert "<img" not in page and "No data." in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "3 March"], "is not a date: use YYYY-MM-DD"),
        (["--since", "2025-02-30"], "is not a date"),
    ],
)
def test_report_bad_date(log_path: Path, args: list[str], message: str,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run("report", "--log", str(log_path), *args) == 2
    assert message in error_line(capsys.readouterr().err)


def test_report_corrupt_or_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       memory_keyring: MemoryKeyring) -> None:
    bad = tmp_path / "bad.jsonl"
    make_log(bad, 2)
    bad.write_bytes(bad.read_bytes() + b"{not json\n")
    assert run("report", "--log", str(bad)) == 2
    assert "line 3 is not a valid record" in error_line(capsys.readouterr().err)
    assert run("report", "--log", str(tmp_path / "none.jsonl")) == 2
    assert "no audit log at" in error_line(capsys.readouterr().err)


def test_verify_uses_the_configured_keyring_service(
    tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app signs with ``audit.keyring_service``; verify must look for the key there."""
    from app.settings import Settings

    if "audit" not in Settings.model_fields:
        pytest.skip("the settings have no audit section")
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, lambda: audit_key("scribe-trial"))
    log.append(session_record(session_id="s1", outcome="discarded"))
    monkeypatch.setenv("SCRIBE_AUDIT__KEYRING_SERVICE", "scribe-trial")
    monkeypatch.setenv("SCRIBE_AUDIT__PATH", str(path))
    assert run("verify") == 0
    assert capsys.readouterr().out.strip() == f"audit log {path}: 1 lines, intact"
    assert set(memory_keyring.passwords) == {("scribe-trial", "audit-hmac-key")}
