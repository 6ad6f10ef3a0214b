"""The audit summary: the numbers the trials evaluate, computed from audit records."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from summarize.delivery.audit_record import OUTCOMES, record_time


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
