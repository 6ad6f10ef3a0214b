"""The audit record: the whitelisted, PHI-free fields of one session line and their checks.

:func:`session_record` accepts numbers, booleans, timestamps and short identifiers only;
every string must match a strict ASCII pattern of at most three words, so a transcript
sentence (or any four-word run of one) cannot reach the audit log. :func:`_check_record`
is the same gate for a record built by hand, and :func:`record_time` reads back when a
recorded session happened.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

SCHEMA = 1
# "unknown": the EPJ may have stored the note (the connection broke after sending); a later
# "delivered" line of a retry (same note identifier, not stored twice) settles it.
OUTCOMES = ("delivered", "failed", "unknown", "discarded")

_CHAIN_FIELDS = ("seq", "prev", "hmac")
_RECORD_FIELDS = (
    "schema",
    "session_id",
    "outcome",
    "started_at",
    "stopped_at",
    "ended_at",
    "audio_s",
    "template_id",
    "template_version",
    "asr_model",
    "asr_sha256",
    "llm_model",
    "llm_sha256",
    "timings",
    "dropped_segments",
    "kept_segments",
    "flags_by_kind",
    "speakers",
    "extractive",
    "edit_ratio",
    "stop_to_approve_s",
    "sink",
    "delivery_attempts",
    "error_kind",
)
#: Every key an audit line may carry: the session fields, then the chain fields.
AUDIT_FIELDS: tuple[str, ...] = _RECORD_FIELDS + _CHAIN_FIELDS

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+-]{0,199}$")
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_MAX_WORDS = 3  # a value of four or more words could be a transcript shingle
_MAX_MAP = 64  # timings / flag kinds per record


def _check_str(name: str, value: Any, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"audit field {name}: expected a string, got {type(value).__name__}")
    if not pattern.match(value) or len(value.split()) > _MAX_WORDS:
        # The value itself is not echoed: it may be exactly what must not be logged.
        raise ValueError(
            f"audit field {name}: not a short identifier ({len(value)} characters); "
            "free text is never recorded"
        )
    return value


def _check_number(name: str, value: Any, digits: int, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"audit field {name}: expected a finite number")
    if value < 0 or (upper is not None and value > upper):
        raise ValueError(f"audit field {name}: {value} is out of range")
    return round(float(value), digits)


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"audit field {name}: expected a count (an integer >= 0)")
    return value


def _timestamp(name: str, value: Any) -> str:
    if not isinstance(value, datetime):
        raise ValueError(f"audit field {name}: expected a datetime")
    # A naive datetime is taken as local time, as datetime.now() gives it.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _counts(name: str, value: Mapping[str, int] | Iterable[tuple[str, int]]) -> dict[str, int]:
    items = value.items() if isinstance(value, Mapping) else value
    out: dict[str, int] = {}
    for item in items:
        try:
            kind, n = item
        except (TypeError, ValueError):
            raise ValueError(f"audit field {name}: expected (kind, count) pairs") from None
        kind = _check_str(f"{name} kind", kind, _CODE_RE)
        out[kind] = out.get(kind, 0) + _check_count(f"{name}[{kind}]", n)
    if len(out) > _MAX_MAP:
        raise ValueError(f"audit field {name}: more than {_MAX_MAP} kinds")
    return dict(sorted(out.items()))


def session_record(
    *,
    session_id: str,
    outcome: str,
    started_at: datetime | None = None,
    stopped_at: datetime | None = None,
    ended_at: datetime | None = None,
    audio_s: float | None = None,
    template_id: str | None = None,
    template_version: str | None = None,
    asr_model: str | None = None,
    asr_sha256: str | None = None,
    llm_model: str | None = None,
    llm_sha256: str | None = None,
    timings: dict[str, float] | None = None,
    dropped_segments: int = 0,
    kept_segments: int = 0,
    flags_by_kind: Mapping[str, int] | Iterable[tuple[str, int]] | None = None,
    speakers: Mapping[str, int] | None = None,
    extractive: bool | None = None,
    edit_ratio: float | None = None,
    stop_to_approve_s: float | None = None,
    sink: str | None = None,
    delivery_attempts: int | None = None,
    error_kind: str | None = None,
) -> dict[str, Any]:
    """The audit record of one session: whitelisted keys, no patient data.

    ``None`` values are left out. ``ended_at`` defaults to now (the record is made when
    the session ends). Timestamps become ISO-8601 UTC (``…Z``, whole seconds); numbers are
    rounded. ``flags_by_kind`` is recorded whenever given, ``{}`` included (a draft
    without flags), so "flags per note" counts exactly the sessions that had a draft.
    Any string that is not a short identifier raises ``ValueError`` (the message never
    repeats the value), so free text cannot be recorded by mistake.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"audit field outcome: must be one of {', '.join(OUTCOMES)}")
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "session_id": _check_str("session_id", session_id, _ID_RE),
        "outcome": outcome,
        "ended_at": _timestamp("ended_at", ended_at or datetime.now(UTC)),
        "dropped_segments": _check_count("dropped_segments", dropped_segments),
        "kept_segments": _check_count("kept_segments", kept_segments),
    }
    if started_at is not None:
        rec["started_at"] = _timestamp("started_at", started_at)
    if stopped_at is not None:
        rec["stopped_at"] = _timestamp("stopped_at", stopped_at)
    if audio_s is not None:
        rec["audio_s"] = _check_number("audio_s", audio_s, 2)
    for name, value in (
        ("template_id", template_id),
        ("template_version", template_version),
        ("asr_model", asr_model),
        ("llm_model", llm_model),
        ("sink", sink),
    ):
        if value is not None:
            rec[name] = _check_str(name, value, _ID_RE)
    for name, value in (("asr_sha256", asr_sha256), ("llm_sha256", llm_sha256)):
        if value is not None:
            rec[name] = _check_str(name, value.lower() if isinstance(value, str) else value,
                                   _SHA_RE)
    if timings is not None:
        if not isinstance(timings, Mapping) or len(timings) > _MAX_MAP:
            raise ValueError(f"audit field timings: expected a mapping of at most {_MAX_MAP}")
        rec["timings"] = {
            _check_str("timings key", k, _CODE_RE): _check_number(f"timings[{k}]", v, 3)
            for k, v in sorted(timings.items())
        }
    if flags_by_kind is not None:
        rec["flags_by_kind"] = _counts("flags_by_kind", flags_by_kind)
    if speakers is not None:  # counts only (voices, relabels, profile used): never an embedding
        rec["speakers"] = _counts("speakers", speakers)
    if extractive is not None:
        if not isinstance(extractive, bool):
            raise ValueError("audit field extractive: expected True or False")
        rec["extractive"] = extractive
    if edit_ratio is not None:
        rec["edit_ratio"] = _check_number("edit_ratio", edit_ratio, 4, upper=1.0)
    if stop_to_approve_s is not None:
        rec["stop_to_approve_s"] = _check_number("stop_to_approve_s", stop_to_approve_s, 2)
    if delivery_attempts is not None:
        rec["delivery_attempts"] = _check_count("delivery_attempts", delivery_attempts)
    if error_kind is not None:
        rec["error_kind"] = _check_str("error_kind", error_kind, _CODE_RE)
    return rec


def _check_record(record: Mapping[str, Any]) -> None:
    """What :meth:`AuditLog.append` accepts: whitelisted keys and only short strings.

    A second gate behind :func:`session_record`, for records built by hand.
    """
    if not isinstance(record, Mapping):
        raise ValueError("an audit record is a dict (see session_record)")
    bad = sorted(set(record) - set(_RECORD_FIELDS))
    if bad:
        raise ValueError(f"not audit record fields: {', '.join(bad)}")
    if record.get("outcome") not in OUTCOMES or "session_id" not in record:
        raise ValueError("an audit record needs session_id and outcome (see session_record)")

    def walk(name: str, value: Any) -> None:
        if isinstance(value, str):
            ok = _ID_RE.match(value) or _SHA_RE.match(value) or _TS_RE.match(value)
            if not ok or len(value.split()) > _MAX_WORDS:
                raise ValueError(f"audit field {name}: not a short identifier")
        elif isinstance(value, Mapping):
            for k, v in value.items():
                _check_str(f"{name} key", k, _CODE_RE)
                walk(f"{name}[{k}]", v)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"audit field {name}: not a finite number")
        elif value is not None and not isinstance(value, bool | int | float):
            raise ValueError(f"audit field {name}: unsupported type {type(value).__name__}")

    for k, v in record.items():
        walk(k, v)


def record_time(record: Mapping[str, Any]) -> datetime | None:
    """When the session happened: ``ended_at``, else ``started_at``/``stopped_at`` (UTC)."""
    for name in ("ended_at", "started_at", "stopped_at"):
        value = record.get(name)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None
