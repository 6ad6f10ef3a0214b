"""``scribe audit``: verify the audit log and report the numbers the trials evaluate.

    scribe audit verify [--log PATH]
    scribe audit report [--log PATH] [--since YYYY-MM-DD] [--html OUT] [--json]

The log is ``--log``, else the setting ``audit.path``, else ``$SCRIBE_AUDIT_LOG`` or the
user data folder: where the app writes it. ``verify`` prints
``audit log PATH: N lines, intact`` and exits 0, or prints one line per
problem on stdout, a one-line summary on stderr, and exits 1. It needs the audit key from
the OS keyring (service ``audit.keyring_service``; never created here: a new key could
not verify anything).
``report`` reads the log without the key (run ``verify`` for integrity) and prints a
summary table, or the summary as JSON (``--json``); ``--html OUT`` also writes a
self-contained HTML report. Other errors print one line ``scribe: error: ...`` and exit
non-zero. The log holds no patient data, so nothing here can print any.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from asr.errors import ScribeError
from summarize.audit import (
    KEYRING_SERVICE,
    AuditError,
    AuditLog,
    audit_key,
    default_audit_path,
    report_html,
    summarize_records,
)


def add_audit_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``audit`` and its actions to the ``scribe`` sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log",
        type=Path,
        metavar="PATH",
        help="the audit log (default: audit.jsonl in the user data folder; $SCRIBE_AUDIT_LOG)",
    )
    a = sub.add_parser("audit", help="verify the audit log (no patient data) and report on it")
    asub = a.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    asub.add_parser(
        "verify", parents=[common], help="detect removed, altered or reordered lines"
    )
    r = asub.add_parser(
        "report", parents=[common], help="edit ratio, Stop-to-Approve time, flags, extractive share"
    )
    r.add_argument("--since", metavar="YYYY-MM-DD", help="only sessions on or after this date")
    r.add_argument("--html", type=Path, metavar="OUT", help="also write an HTML report to OUT")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")


def cmd_audit(args: argparse.Namespace) -> int:
    """Run ``scribe audit ACTION``; the exit code. Never raises for user errors."""
    actions = {"verify": _verify, "report": _report}
    try:
        return actions[args.audit_command](args)
    except ScribeError as exc:
        print(f"scribe: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _audit_settings() -> tuple[str, str]:
    """(``audit.path``, ``audit.keyring_service``) from the settings, where the app writes
    the log; ``("", "ambient-scribe")`` when the settings have no audit section."""
    from app.settings import load_settings

    audit = getattr(load_settings(), "audit", None)
    path = str(getattr(audit, "path", "") or "")
    service = str(getattr(audit, "keyring_service", "") or KEYRING_SERVICE)
    return path, service


def _log_path(args: argparse.Namespace, configured: str = "") -> Path:
    """``--log``, else the configured ``audit.path``, else the default (``$SCRIBE_AUDIT_LOG``)."""
    path: Path | None = getattr(args, "log", None)
    if path is not None:
        return path.expanduser()
    return Path(configured).expanduser() if configured else default_audit_path()


def _verify(args: argparse.Namespace) -> int:
    configured, service = _audit_settings()
    path = _log_path(args, configured)
    if path.is_dir():
        raise AuditError(f"{path} is a directory, not an audit log")
    log = AuditLog(path, lambda: audit_key(service, create=False))
    if not log.exists():
        print(f"audit log {path}: does not exist (no session recorded yet), nothing to verify")
        return 0
    result = log.verify()
    if result.ok:
        print(f"audit log {path}: {result.lines} lines, intact")
        return 0
    for problem in result.problems:
        print(problem)
    print(
        f"audit log {path}: {len(result.problems)} problem(s) in {result.lines} lines; "
        "the log was altered, or lines were removed or moved",
        file=sys.stderr,
    )
    return 1


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise AuditError(f"--since {text!r} is not a date: use YYYY-MM-DD") from None
    return datetime.combine(day, time()).astimezone()  # local midnight


def _report(args: argparse.Namespace) -> int:
    path = _log_path(args, "" if args.log is not None else _audit_settings()[0])
    if path.is_dir():
        raise AuditError(f"{path} is a directory, not an audit log")
    since = _since(args.since)
    log = AuditLog(path, b"unused")  # reading needs no key
    if not log.exists():
        raise AuditError(f"no audit log at {path}: no session has been recorded yet")
    records = log.records(since)
    summary = summarize_records(records)
    if args.html is not None:
        title = "Ambient scribe: audit report" + (f" since {args.since}" if args.since else "")
        _write_atomic(args.html.expanduser(), report_html(summary, records, title=title))
        print(f"report written to {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(summary_text(summary, path, args.since))
    return 0


def _write_atomic(path: Path, text: str) -> None:
    """Temporary file in the same folder, fsync, then ``os.replace``."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise AuditError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _pairs(items: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in items.items()) or "-"


def summary_text(summary: dict[str, Any], path: Path, since: str | None = None) -> str:
    """The summary as a plain-text table for a terminal."""
    lines = [
        f"audit log {path}: {summary['sessions']} sessions"
        + (f" since {since}" if since else "")
        + (f" ({summary['first']} to {summary['last']})" if summary.get("first") else "")
    ]
    lines.append("outcome:     " + _pairs(summary["by_outcome"]))
    ext = summary["extractive"]
    share = "-"
    if ext["n"]:
        share = f"{ext['extractive']} of {ext['n']} ({ext['share'] * 100:.1f} %)"
    lines.append("extractive:  " + share)
    cols = ("n", "mean", "median", "p10", "p90", "min", "max")
    lines.append("")
    lines.append(f"{'':<22}" + "".join(f"{c:>8}" for c in cols))
    for key, label in (
        ("edit_ratio", "edit ratio"),
        ("stop_to_approve_s", "stop to approve (s)"),
        ("flags_per_note", "flags per note"),
    ):
        d = summary[key]
        lines.append(f"{label:<22}" + "".join(f"{_cell(d[c]):>8}" for c in cols))
    lines.append("")
    lines.append("flags:       " + _pairs(summary["flags_by_kind"]))
    lines.append("templates:   " + _pairs(summary["by_template"]))
    lines.append("sinks:       " + _pairs(summary["by_sink"]))
    if summary.get("errors"):
        lines.append("failures:    " + _pairs(summary["errors"]))
    seg = summary["segments"]
    lines.append(f"segments:    kept {seg['kept']}, dropped {seg['dropped']}")
    return "\n".join(lines)
