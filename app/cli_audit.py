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
self-contained HTML report (:func:`audit_report`, written with :mod:`hardware.report` and
:mod:`hardware.plots`: the core in ``summarize/`` only computes the numbers). Other errors print one line
``scribe: error: ...`` and exit non-zero. The log holds no patient data, so nothing here
can print any.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.errors import ScribeError
from summarize.delivery.audit import AuditError, AuditLog, default_audit_path
from summarize.delivery.audit_keyring import KEYRING_SERVICE, audit_key
from summarize.delivery.audit_summary import record_values, summarize_records

if TYPE_CHECKING:
    from hardware.report import Report

REPORT_TITLE = "Ambient scribe: audit report"


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
        from hardware.report import write_reports

        title = REPORT_TITLE + (f" since {args.since}" if args.since else "")
        report = audit_report(summary, records, title=title)
        write_reports(report, json_path=None, html_path=args.html.expanduser())
        print(f"report written to {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(summary_text(summary, path, args.since))
    return 0


_DIST_LABELS = (
    ("edit_ratio", "Edit ratio (draft → approved note, 0 = unchanged)"),
    ("stop_to_approve_s", "Stop to Approve (seconds)"),
    ("flags_per_note", "Flags per note"),
)
_DIST_COLUMNS = ("n", "mean", "median", "p10", "p90", "min", "max")


def _share_text(ext: Mapping[str, Any]) -> str:
    if not ext or not ext.get("n"):
        return "–"
    share = ext.get("share") or 0.0
    return f"{ext.get('extractive', 0)} of {ext['n']} ({share * 100:.1f} %)"


def audit_report(
    summary: dict[str, Any], records: list[dict[str, Any]], *, title: str = REPORT_TITLE
) -> Report:
    """The audit report (kind ``audit``) of ``records``: ``summary`` is
    :func:`summarize_records` of them, the records give the raw values of the histograms.

    Sessions and distributions as tables, a histogram of each distribution, a bar of the
    extractive share, then flags, templates, sinks and failures. No patient data can appear:
    the audit log has none.
    """
    from hardware.plots import bar_plot, histogram
    from hardware.report import Report, Section

    report = Report("audit", title)
    first, last = summary.get("first"), summary.get("last")
    span = f", {first} to {last} (UTC)" if first else ""
    report.add(Section(
        "Sessions",
        text=f"{summary.get('sessions', 0)} sessions{span}. The audit log holds no patient "
        "data: numbers, timestamps and identifiers only.",
        table=[{"outcome": k, "sessions": v} for k, v in summary.get("by_outcome", {}).items()]
        + [{"outcome": "extractive drafts", "sessions": _share_text(summary.get("extractive",
                                                                                {}))}],
        data={k: summary.get(k) for k in ("sessions", "first", "last", "by_outcome",
                                           "delivered", "segments")},
    ))
    report.add(Section(
        "Distributions",
        table=[
            {"": label} | {c: (summary.get(key) or {}).get(c) for c in _DIST_COLUMNS}
            for key, label in _DIST_LABELS
        ],
        data={key: summary.get(key) for key, _ in _DIST_LABELS},
    ))
    values = record_values(records)
    for key, label in _DIST_LABELS:
        data = values[key]
        section = report.add(Section(label, text=None if data else "No data."))
        if data:
            section.figures.append(
                histogram(data, title=f"Histogram: {label}", xlabel=label, ylabel="sessions")
            )
    ext = summary.get("extractive") or {}
    section = report.add(Section("Extractive share", text=_share_text(ext) if ext.get("n")
                                 else "No data.", data=dict(ext) or None))
    if ext.get("n"):
        n_ext, n_all = int(ext.get("extractive", 0)), int(ext["n"])
        section.figures.append(bar_plot(
            ["language model", "extractive"], [n_all - n_ext, n_ext],
            title=f"Extractive share: {_share_text(ext)}", ylabel="sessions",
        ))
    for key, heading, column in (
        ("flags_by_kind", "Flags by kind", "flag"),
        ("by_template", "Sessions per template", "template"),
        ("by_sink", "Sessions per sink", "sink"),
        ("errors", "Failures by kind", "error"),
    ):
        items = summary.get(key) or {}
        if items:
            report.add(Section(heading, table=[{column: k, "count": v} for k, v in items.items()],
                               data=dict(items)))
    return report


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
