"""The end of a session, the same for every front end: deliver, write the audit line, wipe.

:func:`end_session` is what the desktop app and ``scribe note --deliver`` call when a
consultation ends (delivered, failed, discarded). The audit line is built from the
session's statistics *before* the session is wiped, and holds no patient data (see
:mod:`summarize.delivery.audit_record`). A failing audit log never loses a delivered note; it is reported
as a warning without the note.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from summarize.consultation.session import ApprovedNote, Session, flag_counts
from summarize.delivery.sinks import EpjSink, Receipt, SinkError

logger = logging.getLogger(__name__)


def model_checksum(directory: Path | str | None) -> str | None:
    """A model directory's sha256: of its ``SHA256SUMS`` manifest (which names every
    file's digest), else the verified weights' digest from the loader's stamp."""
    if directory is None:
        return None
    d = Path(directory)
    manifest = d / "SHA256SUMS"
    try:
        if manifest.is_file():
            return hashlib.sha256(manifest.read_bytes()).hexdigest()
        for stamp in (".scribe-verified.json", ".scribe-llm-verified.json"):
            if (d / stamp).is_file():
                digest = json.loads((d / stamp).read_text()).get("sha256")
                if isinstance(digest, str) and len(digest) == 64:
                    return digest
    except (OSError, ValueError):
        return None
    return None


def _model_name(name: str | None) -> str | None:
    """A model id fit for the audit log: a directory's name, not its path."""
    if not name:
        return None
    short = Path(str(name)).name if ("/" in str(name) or "\\" in str(name)) else str(name)
    return "-".join(short.split())[:100] or None


@dataclass
class RunInfo:
    """What the front end knows of the models and timings (no patient data)."""

    asr_model: str | None = None
    asr_dir: Path | str | None = None
    llm_model: str | None = None
    llm_dir: Path | str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, asr_engine: Any = None, llm_engine: Any = None, **timings: float | None) -> RunInfo:
        return cls(
            asr_model=getattr(asr_engine, "model_id", None),
            asr_dir=getattr(asr_engine, "model_dir", None),
            llm_model=getattr(llm_engine, "model_id", None),
            llm_dir=getattr(llm_engine, "directory", None),
            timings={k: float(v) for k, v in timings.items() if isinstance(v, (int, float))},
        )


@dataclass
class Delivery:
    """One approved note on its way: kept in memory until it arrived or the clinician gave up."""

    note: ApprovedNote
    sink: EpjSink
    attempts: int = 0
    receipt: Receipt | None = None
    error: SinkError | None = None

    def send(self) -> Receipt:
        """Deliver (again); a :class:`SinkError` leaves the note here for the next try."""
        self.attempts += 1
        try:
            self.receipt = self.sink.deliver(self.note)
        except SinkError as exc:
            self.error = exc
            raise
        self.error = None
        return self.receipt


def audit_record(session: Session, outcome: str, *, delivery: Delivery | None = None,
                 run: RunInfo | None = None) -> dict[str, Any]:
    """The audit line of this session (call before the session is wiped)."""
    from summarize.delivery.audit_record import session_record

    run = run or RunInfo()
    note = delivery.note if delivery else None
    draft = session.draft
    filtered = session.filtered
    template_id = note.template_id if note else draft.template_id if draft else getattr(session.template, "id", None)
    version = note.template_version if note else draft.template_version if draft else \
        getattr(session.template, "version", None)
    error = delivery.error if delivery else None
    sink = getattr(delivery.sink, "name", None) if delivery else None
    return session_record(
        session_id=session.id,
        outcome=outcome,
        started_at=session.started_wall,
        stopped_at=session.stopped_wall,
        ended_at=datetime.now(UTC),
        audio_s=round(session.audio_s, 3) if session.audio_s else None,
        template_id=template_id,
        template_version=str(version) if version is not None else None,
        asr_model=_model_name(run.asr_model),
        asr_sha256=model_checksum(run.asr_dir),
        llm_model=_model_name(run.llm_model or (draft.llm if draft else None)),
        llm_sha256=model_checksum(run.llm_dir),
        timings=run.timings or None,
        dropped_segments=len(filtered.dropped) if filtered else 0,
        kept_segments=len(filtered.kept) if filtered else 0,
        flags_by_kind=dict(note.flags_by_kind) if note else flag_counts(session.flags),
        speakers=dict(session.speaker_counts) or None,
        extractive=note.extractive if note else (draft.extractive if draft else None),
        edit_ratio=note.edit_ratio if note else None,
        stop_to_approve_s=note.stop_to_approve_s if note else None,
        sink=sink,
        delivery_attempts=delivery.attempts if delivery else None,
        error_kind=getattr(error, "kind", None) if error else None,
    )


def end_session(session: Session, outcome: str, *, delivery: Delivery | None = None, run: RunInfo | None = None,
                audit: Any = None) -> dict[str, Any] | None:
    """Write the session's audit line (if ``audit`` is an AuditLog) and wipe the session.

    Returns the written record, or None when there is no audit log or writing failed
    (a warning is logged; the wipe happens regardless).
    """
    written = None
    try:
        if audit is not None:
            written = audit.append(audit_record(session, outcome, delivery=delivery, run=run))
    except Exception as exc:  # the audit must never keep a session in memory or lose a note
        logger.warning("the audit line of this session was not written (%s: %s)", type(exc).__name__,
                       str(exc)[:200] if isinstance(exc, (OSError,)) or type(exc).__name__ == "AuditError" else "")
    finally:
        session.close()
    return written
