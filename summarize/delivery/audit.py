"""The audit log: one PHI-free, tamper-evident JSON line per consultation session.

Why: the trials have to show whether the scribe helps (how much clinicians edit drafts,
how long from Stop to Approve, how many flags, how often the draft was extractive) and an
operator has to see which template and model versions produced a note. None of that needs
patient data, so none is recorded: :func:`session_record` accepts numbers, booleans,
timestamps and short identifiers only. Every string must match a strict ASCII pattern of
at most three words, so a transcript sentence (or any four-word run of one) cannot reach
the file; a value that does not fit raises ``ValueError`` rather than being cleaned up.

File format (``audit.jsonl``, mode 0600, in a 0700 folder): one canonical JSON object per
line (``sort_keys``, no spaces, UTF-8). :meth:`AuditLog.append` adds three keys:

* ``seq``: 1, 2, 3 … continuing the file;
* ``prev``: the hex SHA-256 of the previous line's exact bytes (without its newline),
  64 zeros on the first line;
* ``hmac``: hex HMAC-SHA256 of the canonical JSON of everything else (``seq`` and
  ``prev`` included), keyed with 32 random bytes kept in the OS keyring
  (:func:`audit_key`), never in the file.

:meth:`AuditLog.verify` therefore detects an edited line (its HMAC fails, and the next
line's ``prev`` no longer matches), a line deleted at the start or in the middle (a gap
in ``seq`` and a broken ``prev``), reordered lines (``seq`` going backwards) and lines
written by someone without the key. Limits, by design of a bare hash chain: deleting the
*last* line(s) leaves a shorter chain that is still valid, and anyone holding the key
(the logged-in user, through the keyring) can rewrite the whole file. Anchoring the tail
(e.g. copying ``verify``'s line count elsewhere) is left to the operator; the log stores
nothing besides the lines themselves.

Appends are serialised between processes with ``fcntl.flock`` (read last line + write)
and each line is written with one ``write`` on an ``O_APPEND`` descriptor, then fsynced.

This module is core code: it never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asr.errors import ScribeError

try:  # POSIX; elsewhere appends are not locked between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

SCHEMA = 1
# "unknown": the EPJ may have stored the note (the connection broke after sending); a later
# "delivered" line of a retry (same note identifier, not stored twice) settles it.
OUTCOMES = ("delivered", "failed", "unknown", "discarded")
GENESIS = "0" * 64
ENV_AUDIT_LOG = "SCRIBE_AUDIT_LOG"
KEYRING_SERVICE = "ambient-scribe"
KEYRING_USER = "audit-hmac-key"
KEY_BYTES = 32

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


class AuditError(ScribeError):
    """The audit log or its key cannot be used (one line; never contains the key)."""

    exit_code = 2


# ------------------------------------------------------------------------ paths and key


def default_audit_path() -> Path:
    """``$SCRIBE_AUDIT_LOG`` or ``audit.jsonl`` in the user's data folder."""
    env = os.environ.get(ENV_AUDIT_LOG, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ambient-scribe", appauthor=False)) / "audit.jsonl"


def _keyring_failure(exc: BaseException) -> AuditError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return AuditError(
        f"no OS keyring for the audit key ({type(exc).__name__}): "
        f"{first or 'the keyring backend failed'}"
    )


def _decode_key(stored: str, service: str, user: str) -> bytes:
    try:
        key = base64.b64decode(stored.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        # Never replaced automatically: a new key would make the existing log unverifiable.
        raise AuditError(
            f"the audit key in the OS keyring (service {service!r}, user {user!r}) is damaged; "
            "restore it from a backup, or move the audit log aside before a new key is made"
        )
    return key


def audit_key(
    service: str = KEYRING_SERVICE, user: str = KEYRING_USER, *, create: bool = True
) -> bytes:
    """The HMAC key of the audit log: 32 random bytes, base64 in the OS keyring.

    Created on first use when ``create`` (appending); verification passes
    ``create=False``, because a key made on the spot could not verify anything. A missing
    or broken keyring raises :class:`AuditError`; the key never appears in a message.
    """
    try:
        import keyring

        stored = keyring.get_password(service, user)
    except Exception as exc:  # NoKeyringError, KeyringError, any backend failure
        raise _keyring_failure(exc) from None
    if stored is not None:
        return _decode_key(stored, service, user)
    if not create:
        raise AuditError("no audit key in the OS keyring: this log cannot be verified here")
    new = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    try:
        keyring.set_password(service, user, new)
        stored = keyring.get_password(service, user)  # another process may have won the race
    except Exception as exc:
        raise _keyring_failure(exc) from None
    if stored is None:
        raise AuditError(
            "no OS keyring for the audit key (the keyring did not keep it): "
            "configure a keyring backend"
        )
    logger.info("audit key created in the OS keyring (service %s)", service)
    return _decode_key(stored, service, user)


# ------------------------------------------------------------------------ the record


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


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _mac(key: bytes, body: Mapping[str, Any]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as crypto_hmac

    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(_canonical(body))
    return h.finalize().hex()


def _mac_ok(key: bytes, body: Mapping[str, Any], mac_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as crypto_hmac

    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(_canonical(body))
    try:
        h.verify(bytes.fromhex(mac_hex))  # constant time
    except (InvalidSignature, ValueError):
        return False
    return True


def check_before_delivery(log: AuditLog | None) -> None:
    """Before a note is delivered: its audit line can be written (``log`` None: auditing
    is switched off). Raises :class:`AuditError` with the fix; the caller sends nothing
    then (an audited installation does not deliver unaudited; IT may switch the log off)."""
    if log is None:
        return
    try:
        log.preflight()
    except AuditError as exc:
        raise AuditError(f"the note is not sent because its audit line cannot be written: {exc} "
                         "(fix it, or set audit.enabled = false if IT has decided so)") from None


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


# ------------------------------------------------------------------------ the log


@dataclass
class VerifyResult:
    """The outcome of :meth:`AuditLog.verify`: each problem is one line for the user."""

    ok: bool
    lines: int
    problems: list[str] = field(default_factory=list)


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return lines


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _seq_of(obj: Mapping[str, Any] | None) -> int | None:
    seq = obj.get("seq") if obj else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


class AuditLog:
    """An append-only, hash-chained, HMAC-signed JSON-lines file (see the module doc)."""

    def __init__(self, path: Path, key: bytes | Callable[[], bytes]) -> None:
        self.path = Path(path).expanduser()
        self._key_source = key
        self._key: bytes | None = None

    def _resolve_key(self) -> bytes:
        if self._key is None:
            key = self._key_source() if callable(self._key_source) else self._key_source
            if not isinstance(key, bytes | bytearray) or not key:
                raise AuditError("the audit key is empty or not bytes")
            self._key = bytes(key)
        return self._key

    # -- writing -----------------------------------------------------------------------
    def preflight(self) -> None:
        """Check, before a note is delivered, that a line can be written: the key is in the
        keyring (created on first use) and the file opens for appending. Writes nothing.
        Raises :class:`AuditError` naming the problem: an audited delivery must not go out
        unaudited (the caller refuses to deliver)."""
        self._resolve_key()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            existed = self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror or exc}") from None
        os.close(fd)
        if not existed:  # leave no empty file behind a check
            with contextlib.suppress(OSError):
                self.path.unlink()

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Sign ``record`` into the chain and append it as one line; the written record.

        Works on a log that fails verification too (the problem stays visible to
        ``verify``); a damaged last line without a newline is closed off first, so the
        new line stays a line of its own.
        """
        _check_record(record)
        key = self._resolve_key()  # before the lock: a keyring may prompt the user
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(
                f"cannot open the audit log {self.path}: {exc.strerror or exc}"
            ) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if hasattr(os, "fchmod") and os.fstat(fd).st_mode & 0o077:
                with contextlib.suppress(OSError):  # not ours: leave it, still append
                    os.fchmod(fd, 0o600)
            last, seq, newline_missing = self._tail()
            out = {k: v for k, v in record.items() if v is not None}
            out["seq"] = seq
            out["prev"] = hashlib.sha256(last).hexdigest() if last is not None else GENESIS
            out["hmac"] = _mac(key, out)
            line = _canonical(out) + b"\n"
            if newline_missing:
                line = b"\n" + line
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise AuditError(
                f"cannot append to the audit log {self.path}: {exc.strerror or exc}"
            ) from None
        finally:
            os.close(fd)  # releases the lock
        if created:
            from summarize.templates.saving import fsync_dir

            fsync_dir(self.path.parent)
        return out

    def _tail(self) -> tuple[bytes | None, int, bool]:
        """(last non-empty line or None, next seq, whether the file lacks a final newline).

        Reads backwards from the end, so an append costs the same on a long log.
        """
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return None, 1, False
            f.seek(size - 1)
            newline_missing = f.read(1) != b"\n"
            pos, chunks, found = size, [], False
            while pos > 0 and not found:
                start = max(0, pos - 8192)
                f.seek(start)
                chunk = f.read(pos - start)
                pos = start
                chunks.append(chunk)
                text = b"".join(reversed(chunks)).rstrip(b"\n")
                found = b"\n" in text
            text = b"".join(reversed(chunks)).rstrip(b"\n")
            last = text.rsplit(b"\n", 1)[-1] if text else None
        if last is None:
            return None, 1, newline_missing
        seq = _seq_of(_parse(last))
        if seq is None:  # damaged last line: continue after the highest readable seq
            seqs = [_seq_of(_parse(ln)) for ln in _split_lines(self.path.read_bytes())]
            seq = max((s for s in seqs if s is not None), default=0)
        return last, seq + 1, newline_missing

    # -- reading -----------------------------------------------------------------------
    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditError(
                f"cannot read the audit log {self.path}: {exc.strerror or exc}"
            ) from None

    def exists(self) -> bool:
        return self.path.is_file()

    def records(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The parsed lines, oldest first (not verified; see :meth:`verify`).

        ``since``: only sessions at or after it (a naive datetime is local time); records
        without any timestamp are then left out. A line that is not a JSON object raises
        :class:`AuditError` naming its line number. A missing log has no records.
        """
        data = self._read()
        if data is None:
            return []
        if since is not None:
            since = since.astimezone(UTC)
        out: list[dict[str, Any]] = []
        for n, line in enumerate(_split_lines(data), 1):
            if not line.strip():
                continue
            obj = _parse(line)
            if obj is None:
                raise AuditError(
                    f"audit log {self.path}: line {n} is not a valid record "
                    "(run 'scribe audit verify')"
                )
            if since is not None:
                when = record_time(obj)
                if when is None or when < since:
                    continue
            out.append(obj)
        return out

    def verify(self) -> VerifyResult:
        """Check every line's HMAC, the hash chain and the sequence numbers.

        The key is only needed when there are lines: an empty or missing log is ok with
        ``lines=0``. Problems name the line (1-based) and what probably happened.
        """
        data = self._read()
        lines = _split_lines(data) if data else []
        if not lines:
            return VerifyResult(True, 0, [])
        key = self._resolve_key()
        parsed = [_parse(ln) if ln.strip() else None for ln in lines]
        all_seqs = {s for s in (_seq_of(p) for p in parsed) if s is not None}
        problems: list[str] = []
        seen: set[bytes] = set()
        prev_line: bytes | None = None
        last_seq = 0
        for n, (line, obj) in enumerate(zip(lines, parsed, strict=True), 1):
            if not line.strip():
                problems.append(f"line {n}: empty line (the file was edited)")
                continue
            if obj is None:
                problems.append(f"line {n}: not a valid audit record (damaged or truncated)")
                prev_line = line
                continue
            body = {k: v for k, v in obj.items() if k != "hmac"}
            mac = obj.get("hmac")
            if not isinstance(mac, str) or not _SHA_RE.match(mac):
                problems.append(f"line {n}: no HMAC (not written by the scribe)")
            elif not _mac_ok(key, body, mac):
                problems.append(
                    f"line {n}: HMAC does not match (line altered, or written with another key)"
                )
            else:
                try:
                    canonical = _canonical(obj) == line
                except ValueError:
                    canonical = False
                if not canonical:
                    problems.append(f"line {n}: not in canonical form (line altered)")
            seq = _seq_of(obj)
            seq_problem = True
            if seq is None:
                problems.append(f"line {n}: no sequence number (not written by the scribe)")
            elif seq == last_seq + 1:
                seq_problem = False
            elif seq <= last_seq:
                why = "a line was copied" if line in seen else "lines reordered"
                problems.append(f"line {n}: sequence {seq} after {last_seq} ({why})")
            else:
                missing = range(last_seq + 1, seq)
                moved = any(s in all_seqs for s in missing)
                where = "at the start" if last_seq == 0 else f"after {last_seq}"
                if moved:
                    why = "lines reordered"
                elif len(missing) == 1:
                    why = "a line was removed"
                else:
                    why = f"{len(missing)} lines were removed"
                problems.append(f"line {n}: sequence {seq} {where} ({why})")
            if seq is not None:
                last_seq = max(last_seq, seq)
            expected_prev = (
                hashlib.sha256(prev_line).hexdigest() if prev_line is not None else GENESIS
            )
            if obj.get("prev") != expected_prev and not seq_problem:
                problems.append(
                    f"line {n}: previous-line hash does not match "
                    "(a line before it was removed, altered or moved)"
                )
            seen.add(line)
            prev_line = line
        return VerifyResult(not problems, len(lines), problems)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]




# ------------------------------------------------------------------------ the summary


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def distribution(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, mean, median, p10, p90, min, max (rounded to 4 decimals; None when n == 0)."""
    v = sorted(float(x) for x in values)
    if not v:
        return dict.fromkeys(("mean", "median", "p10", "p90", "min", "max"), None) | {"n": 0}
    return {
        "n": len(v),
        "mean": round(sum(v) / len(v), 4),
        "median": round(_quantile(v, 0.5), 4),
        "p10": round(_quantile(v, 0.1), 4),
        "p90": round(_quantile(v, 0.9), 4),
        "min": round(v[0], 4),
        "max": round(v[-1], 4),
    }


def _num(record: Mapping[str, Any], key: str) -> float | None:
    v = record.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _flags_total(record: Mapping[str, Any]) -> int | None:
    flags = record.get("flags_by_kind")
    if not isinstance(flags, Mapping):
        return None
    return sum(v for v in flags.values() if isinstance(v, int) and not isinstance(v, bool))


def _template_key(record: Mapping[str, Any]) -> str:
    tid = record.get("template_id")
    if not isinstance(tid, str):
        return "(none)"
    version = record.get("template_version")
    return f"{tid}@{version}" if isinstance(version, str) else tid


def record_values(records: Iterable[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The raw values behind the three distributions of :func:`summarize_records`
    (``edit_ratio``, ``stop_to_approve_s``, ``flags_per_note``), in record order, for
    histograms; a record without the value is left out."""
    records = list(records)
    return {
        "edit_ratio": [v for v in (_num(r, "edit_ratio") for r in records) if v is not None],
        "stop_to_approve_s": [
            v for v in (_num(r, "stop_to_approve_s") for r in records) if v is not None
        ],
        "flags_per_note": [
            float(v) for v in (_flags_total(r) for r in records) if v is not None
        ],
    }


def summarize_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers the trials evaluate, from audit records (e.g. :meth:`AuditLog.records`).

    ``extractive_share`` counts sessions whose draft kind is known; ``flags_per_note``
    the sessions that recorded ``flags_by_kind`` (those with a draft); ``edit_ratio`` and
    ``stop_to_approve_s`` the sessions that recorded them (approved notes).
    """
    times = [t for t in (record_time(r) for r in records) if t is not None]
    by_outcome = Counter(str(r.get("outcome")) for r in records)
    known = [r["extractive"] for r in records if isinstance(r.get("extractive"), bool)]
    n_extractive = sum(1 for x in known if x)
    flags_kind: Counter[str] = Counter()
    for r in records:
        flags = r.get("flags_by_kind")
        if isinstance(flags, Mapping):
            for k, v in flags.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    flags_kind[k] += v
    errors = Counter(
        r["error_kind"] for r in records if isinstance(r.get("error_kind"), str)
    )
    values = record_values(records)
    return {
        "sessions": len(records),
        "first": min(times).strftime("%Y-%m-%dT%H:%M:%SZ") if times else None,
        "last": max(times).strftime("%Y-%m-%dT%H:%M:%SZ") if times else None,
        "by_outcome": {k: by_outcome.get(k, 0) for k in OUTCOMES}
        | {k: v for k, v in sorted(by_outcome.items()) if k not in OUTCOMES},
        "delivered": by_outcome.get("delivered", 0),
        "extractive": {
            "n": len(known),
            "extractive": n_extractive,
            "share": round(n_extractive / len(known), 4) if known else None,
        },
        "edit_ratio": distribution(values["edit_ratio"]),
        "stop_to_approve_s": distribution(values["stop_to_approve_s"]),
        "flags_per_note": distribution(values["flags_per_note"]),
        "flags_by_kind": dict(sorted(flags_kind.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_template": dict(sorted(Counter(_template_key(r) for r in records).items())),
        "by_sink": dict(
            sorted(Counter(r["sink"] for r in records if isinstance(r.get("sink"), str)).items())
        ),
        "errors": dict(sorted(errors.items())),
        "segments": {
            "kept": sum(int(_num(r, "kept_segments") or 0) for r in records),
            "dropped": sum(int(_num(r, "dropped_segments") or 0) for r in records),
        },
    }
