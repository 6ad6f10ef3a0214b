"""The audit log: one PHI-free, tamper-evident JSON line per consultation session.

Why: the trials have to show whether the scribe helps (how much clinicians edit drafts,
how long from Stop to Approve, how many flags, how often the draft was extractive) and an
operator has to see which template and model versions produced a note. None of that needs
patient data, so none is recorded:
:func:`~summarize.delivery.audit_record.session_record` accepts numbers, booleans,
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
  (:func:`~summarize.delivery.audit_keyring.audit_key`), never in the file.

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

This module is the log itself (append, verify, read); the record's fields are checked in
:mod:`summarize.delivery.audit_record`, the key lives in :mod:`summarize.delivery.audit_keyring`
and the trial numbers are computed in :mod:`summarize.delivery.audit_summary`.

This module is core code: it never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asr.errors import ScribeError
from summarize.delivery.audit_record import _SHA_RE, _check_record, record_time

try:  # POSIX; elsewhere appends are not locked between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
ENV_AUDIT_LOG = "SCRIBE_AUDIT_LOG"


class AuditError(ScribeError):
    """The audit log or its key cannot be used (one line; never contains the key)."""

    exit_code = 2


# ------------------------------------------------------------------------ the path


def default_audit_path() -> Path:
    """``$SCRIBE_AUDIT_LOG`` or ``audit.jsonl`` in the user's data folder."""
    env = os.environ.get(ENV_AUDIT_LOG, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ambient-scribe", appauthor=False)) / "audit.jsonl"


# ------------------------------------------------------------------------ the chain


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
