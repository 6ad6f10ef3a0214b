"""Reports for hospital IT (issue #6) and the audit report: JSON for machines, HTML for people.

A :class:`Report` is a title, a verdict with its reasons, a list of :class:`Section` s
(text, a table, figures, and a machine-readable ``data`` payload) and the machine
fingerprint (:func:`hardware.fingerprint.fingerprint`). It is written as

* JSON (:meth:`Report.write_json`): everything but the figures, numpy values, paths and
  datetimes converted, non-finite floats as ``null``;
* one self-contained HTML file (:meth:`Report.write_html`): inline CSS, figures as PNG
  data URIs, no script, no font or link to anything outside the file, every string
  escaped; it prints on A4.

Both writes are atomic (a temporary file in the same folder, fsync, ``os.replace``).

The plots that go into a report's sections are drawn by :mod:`hardware.plots`.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import html
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from asr.errors import ScribeError

logger = logging.getLogger(__name__)

KINDS = ("hardware", "mic", "models", "audit")
#: Verdicts that get a coloured badge (anything else is shown in a neutral colour).
VERDICT_CLASSES = {"ok": "ok", "marginal": "marginal", "unfit": "unfit"}


class ReportError(ScribeError, OSError):
    """A report cannot be written (one line). Also an ``OSError``, so either catch works."""

    exit_code = 2


# ------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Figure:
    """A plot: its title (caption and alt text) and the PNG bytes."""

    title: str
    png: bytes


@dataclass
class Section:
    """One part of a report. ``data`` goes to the JSON only; figures to the HTML only."""

    heading: str
    text: str | None = None
    table: list[dict[str, Any]] | None = None
    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] | None = None


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("ambient-scribe")
    except metadata.PackageNotFoundError:
        return "ukjent versjon"


def _default_fingerprint() -> dict[str, Any]:
    try:
        from hardware.fingerprint import fingerprint

        return fingerprint()
    except Exception as exc:  # a report without a full fingerprint beats no report
        logger.warning("machine fingerprint incomplete: %s: %s", type(exc).__name__, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths, datetimes, enums, dataclasses, sets and
    tuples turned into plain JSON types; non-finite floats become ``None``; other objects
    their ``str``. Mapping keys become strings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Decimal):
        return to_jsonable(float(value))
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Figure):
        return value.title
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy scalar or array
        return to_jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        with contextlib.suppress(Exception):
            return to_jsonable(value.item())
    return str(value)


def _key(k: Any) -> str:
    plain = to_jsonable(k)
    return plain if isinstance(plain, str) else json.dumps(plain)


def fmt_cell(value: Any) -> str:
    """A table cell as text: ``None`` → "–", floats to at most 4 significant digits (whole
    numbers from 10 000 up), booleans "ja"/"nei", lists comma-separated."""
    if hasattr(value, "dtype") and hasattr(value, "item"):
        with contextlib.suppress(Exception):
            value = value.item()
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, float | Decimal):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == 0:
            return "0"
        if abs(v) >= 1e4:
            return f"{v:.0f}"
        text = f"{v:.4g}"
        if "e" in text:  # tiny values: 1.2e-05
            mantissa, exp = text.split("e")
            return f"{mantissa}e{int(exp)}"
        return text
    if isinstance(value, list | tuple):
        return ", ".join(fmt_cell(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt_cell(v)}" for k, v in value.items())
    if isinstance(value, datetime | date | PurePath | enum.Enum):
        return str(to_jsonable(value))
    return str(value)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in mapping.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            rows.extend(_flatten(v, name + "."))
        else:
            rows.append((name, v))
    return rows


# ------------------------------------------------------------------------ the report


class Report:
    """A report of ``kind`` ("hardware", "mic", "models" or "audit").

    Set :attr:`verdict` ("ok" / "marginal" / "unfit" get a green / amber / red badge; any
    other text, e.g. a recommendation, a neutral one) and :attr:`summary` (the reasons, one
    bullet each), then :meth:`add` sections.
    """

    def __init__(
        self, kind: str, title: str, *, fingerprint: dict[str, Any] | None = None
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"report kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self.title = title
        self.fingerprint: dict[str, Any] = (
            dict(fingerprint) if fingerprint is not None else _default_fingerprint()
        )
        self.created: str = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.verdict: str | None = None
        self.summary: list[str] = []
        self.sections: list[Section] = []

    def add(self, section: Section) -> Section:
        """Append ``section``; returns it (so a caller can keep adding figures)."""
        if not isinstance(section, Section):
            raise TypeError(f"expected a Section, got {type(section).__name__}")
        self.sections.append(section)
        return section

    # -------------------------------------------------------------------- JSON

    def to_json(self) -> dict[str, Any]:
        """The report without figure images (their titles only); ``json.dumps``-able."""
        return {
            "kind": self.kind,
            "title": self.title,
            "created": self.created,
            "verdict": self.verdict,
            "summary": [str(s) for s in self.summary],
            "fingerprint": to_jsonable(self.fingerprint),
            "sections": [
                {
                    "heading": s.heading,
                    "text": s.text,
                    "table": to_jsonable(s.table) if s.table is not None else None,
                    "data": to_jsonable(s.data) if s.data is not None else None,
                    "figures": [f.title for f in s.figures],
                }
                for s in self.sections
            ],
        }

    def write_json(self, path: Path) -> Path:
        """Write :meth:`to_json` (UTF-8, indent 2) atomically; returns ``path``."""
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=2, allow_nan=False)
        return write_atomic(Path(path), text + "\n")

    # -------------------------------------------------------------------- HTML

    def html(self) -> str:
        """The report as one self-contained HTML page."""
        e = _esc
        out = [
            "<!DOCTYPE html>",
            '<html lang="nb"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(self.title)}</title>",
            f"<style>{_CSS}</style></head><body><main>",
            f"<header><h1>{e(self.title)}</h1>",
            f'<p class="meta">{e(self.kind)} · {e(self.created)}</p></header>',
        ]
        if self.verdict is not None or self.summary:
            out.append('<section class="conclusion"><h2>Konklusjon</h2>')
            if self.verdict is not None:
                cls = VERDICT_CLASSES.get(str(self.verdict).strip().lower(), "info")
                out.append(f'<p class="verdict"><span class="badge {cls}">'
                           f"{e(self.verdict)}</span></p>")
            if self.summary:
                out.append("<ul>" + "".join(f"<li>{e(s)}</li>" for s in self.summary) + "</ul>")
            out.append("</section>")
        for s in self.sections:
            out.append(_section_html(s))
        out.append('<section class="machine"><h2>Maskin</h2>')
        rows = _flatten(self.fingerprint)
        if rows:
            out.append('<table class="kv"><tbody>')
            out.extend(f"<tr><th>{e(k)}</th><td>{e(fmt_cell(v))}</td></tr>" for k, v in rows)
            out.append("</tbody></table>")
        else:
            out.append('<p class="note">–</p>')
        out.append("</section>")
        out.append(f"<footer>Laget av ambient-scribe {e(_version())} {e(self.created)}</footer>")
        out.append("</main></body></html>")
        return "\n".join(out) + "\n"

    def write_html(self, path: Path) -> Path:
        """Write :meth:`html` atomically; returns ``path``."""
        return write_atomic(Path(path), self.html())


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _section_html(s: Section) -> str:
    e = _esc
    out = [f"<section><h2>{e(s.heading)}</h2>"]
    if s.text:
        for para in s.text.split("\n\n"):
            if para.strip():
                out.append("<p>" + "<br>".join(e(ln) for ln in para.strip().split("\n")) + "</p>")
    if s.table:
        out.append(_table_html(s.table))
    for fig in s.figures:
        uri = "data:image/png;base64," + base64.b64encode(fig.png).decode("ascii")
        # The title is drawn in the image itself; alt text for screen readers and copy.
        out.append(f'<figure><img src="{uri}" alt="{e(fig.title)}"></figure>')
    out.append("</section>")
    return "\n".join(out)


def _is_number(v: Any) -> bool:
    if hasattr(v, "dtype") and hasattr(v, "item"):
        with contextlib.suppress(Exception):
            v = v.item()
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _table_html(rows: list[dict[str, Any]]) -> str:
    e = _esc
    cols = list(rows[0].keys())
    numeric = {
        c: all(_is_number(r.get(c)) or r.get(c) is None for r in rows)
        and any(r.get(c) is not None for r in rows)
        for c in cols
    }
    out = ['<table class="data"><thead><tr>']
    out.extend(f'<th class="{"num" if numeric[c] else "txt"}">{e(c)}</th>' for c in cols)
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(
            f'<td class="{"num" if numeric[c] else "txt"}">{e(fmt_cell(r.get(c)))}</td>'
            for c in cols
        ) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


_CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:#1b1f23;font:15px/1.5 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
main{max-width:960px;margin:0 auto;padding:2rem 1.25rem}
header{border-bottom:2px solid #1f5fa8;margin-bottom:1.25rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
h2{font-size:1.15rem;margin:1.75rem 0 .5rem;padding-bottom:.2rem;border-bottom:1px solid #d0d7de}
p{margin:.4rem 0}
.meta,.note{color:#57606a;font-size:.9rem}
.conclusion ul{margin:.5rem 0 0;padding-left:1.25rem}
.verdict{margin:.5rem 0}
.badge{display:inline-block;padding:.3rem .9rem;border-radius:.4rem;font-weight:600;
font-size:1.1rem;border:1px solid transparent}
.badge.ok{background:#dafbe1;color:#116329;border-color:#4ac26b}
.badge.marginal{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
.badge.unfit{background:#ffebe9;color:#a40e26;border-color:#ff8182}
.badge.info{background:#ddf4ff;color:#0a3069;border-color:#54aeff}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem;max-width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;vertical-align:top}
thead th{background:#f6f8fa;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.txt,th.txt{text-align:left}
table.kv th{text-align:left;background:#f6f8fa;font-weight:600;white-space:nowrap}
table.kv td{word-break:break-word}
figure{margin:.75rem 0 1.25rem}
figure img{display:block;max-width:100%;height:auto;border:1px solid #eaeef2}
footer{margin-top:2rem;padding-top:.5rem;border-top:1px solid #d0d7de;color:#57606a;
font-size:.8rem}
@page{size:A4;margin:15mm}
@media print{
body{font-size:10.5pt}main{max-width:none;padding:0}
.badge{-webkit-print-color-adjust:exact;print-color-adjust:exact}
thead th,table.kv th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
h2{break-after:avoid}figure,table,tr{break-inside:avoid}
}
"""


# ------------------------------------------------------------------------ writing


def write_atomic(path: Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path``: temporary file in the same folder, fsync,
    ``os.replace``. Creates missing parent folders. :class:`ReportError` on failure, and no
    temporary file is left behind."""
    path = Path(path).expanduser()
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def write_reports(
    report: Report, *, json_path: Path | None, html_path: Path | None
) -> list[Path]:
    """Write the JSON and/or HTML report (each skipped when its path is ``None``)."""
    written: list[Path] = []
    if json_path is not None:
        written.append(report.write_json(Path(json_path)))
    if html_path is not None:
        written.append(report.write_html(Path(html_path)))
    return written
