"""Where a benchmark's JSON record goes: ``--json OUT`` or ``benchmarks/results/NAME-<time>.json``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any


def write_record(name: str, record: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``record`` (indented, UTF-8 kept) and print where it went."""
    out = out or Path(__file__).parent / "results" / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(f"wrote {out}")
    return out
