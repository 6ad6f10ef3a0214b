"""The reports' plots: draw a figure for a :class:`hardware.report.Section`.

Plots (:func:`line_plot`, :func:`bar_plot`, :func:`spectrum_plot`, :func:`histogram`)
return a :class:`hardware.report.Figure` with PNG bytes. They draw with ``matplotlib.figure.Figure`` and
the Agg canvas, never ``pyplot`` and never ``matplotlib.use()``, so they are safe inside
the Qt app, and one figure is drawn at a time. If ``MPLCONFIGDIR`` is unset, it points at
a throw-away folder while matplotlib is first imported (:func:`load_matplotlib`), and that
folder is removed right after: matplotlib leaves no font cache or config in the user's home.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from hardware.report import Figure, fmt_cell

FIG_SIZE = (7.0, 3.2)  # inches; 700 × 320 px at FIG_DPI
FIG_DPI = 100
_COLORS = ("#1f5fa8", "#e07b00", "#2e8b57", "#b03a48", "#7b4fa0", "#5f6b73", "#c9a100")

_MPL_LOCK = threading.RLock()
_MPL: tuple[Any, Any] | None = None


def load_matplotlib() -> tuple[Any, Any]:
    """``(matplotlib.figure.Figure, FigureCanvasAgg)``, imported once per process.

    matplotlib reads its config/cache folder once, at import, and builds its font cache
    there. If ``MPLCONFIGDIR`` is unset, it points at a throw-away folder for that first
    import only and is removed right after, so matplotlib leaves nothing in the user's
    home. The environment is changed at most once per process and never while drawing:
    ``setenv`` is not safe while another thread reads the environment, so the app calls
    this on its UI thread before any worker draws (see ``app.gui.mic_dialog``).
    """
    global _MPL
    with _MPL_LOCK:
        if _MPL is not None:
            return _MPL
        tmp: str | None = None
        if not os.environ.get("MPLCONFIGDIR"):
            tmp = tempfile.mkdtemp(prefix="scribe-mpl-")
            os.environ["MPLCONFIGDIR"] = tmp
        try:
            import matplotlib.font_manager  # noqa: F401  (the font cache is built here)
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure as MplFigure

            _MPL = (MplFigure, FigureCanvasAgg)
            return _MPL
        finally:
            if tmp is not None:
                if os.environ.get("MPLCONFIGDIR") == tmp:
                    del os.environ["MPLCONFIGDIR"]
                shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _matplotlib() -> Iterator[tuple[Any, Any]]:
    """:func:`load_matplotlib`'s classes, one figure at a time (matplotlib's text
    rendering shares one FreeType library between threads)."""
    with _MPL_LOCK:
        yield load_matplotlib()


@contextlib.contextmanager
def _axes(title: str) -> Iterator[tuple[Any, list[bytes]]]:
    """A fresh figure's axes; the PNG bytes land in the list once the block ends."""
    out: list[bytes] = []
    with _matplotlib() as (MplFigure, FigureCanvasAgg):
        fig = MplFigure(figsize=FIG_SIZE, dpi=FIG_DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_title(_mpl(title), fontsize=11)
        ax.grid(True, color="#e1e4e8", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        yield ax, out
        fig.tight_layout()
        buf = io.BytesIO()
        # No "Software" chunk: the PNG names no URL and no version.
        fig.savefig(buf, format="png", dpi=FIG_DPI, metadata={"Software": None})
        out.append(buf.getvalue())


def _floats(values: Any) -> list[float]:
    if values is None:
        return []
    if hasattr(values, "tolist"):
        values = values.tolist()
    out = []
    for v in values:
        try:
            out.append(float(v) if v is not None else math.nan)
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _mpl(text: Any) -> str:
    """Text for matplotlib as written: ``$`` is not mathtext, a leading ``_`` is shown."""
    s = str(text).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "Ingen data", ha="center", va="center", transform=ax.transAxes,
            color="#57606a")
    ax.set_xticks([])
    ax.set_yticks([])


def _hline(ax: Any, y: float, label: str, color: str) -> None:
    ax.axhline(y, color=color, linestyle="--", linewidth=1.2,
               label=_mpl(f"{label} ({fmt_cell(y)})"))


def line_plot(
    x: Sequence[float] | Any,
    ys: dict[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    hlines: dict[str, float] | None = None,
) -> Figure:
    """Several named lines over ``x``; optional labelled horizontal reference lines
    (e.g. ``{"noise floor": -55}``). A line shorter or longer than ``x`` is cut to fit."""
    xs = _floats(x)
    with _axes(title) as (ax, out):
        drawn = 0
        for i, (name, values) in enumerate(ys.items()):
            v = _floats(values)
            n = min(len(xs), len(v))
            if n:
                ax.plot(xs[:n], v[:n], label=_mpl(name), color=_COLORS[i % len(_COLORS)],
                        linewidth=1.4)
                drawn += 1
        if not drawn:
            _no_data(ax)
        else:
            for j, (name, y) in enumerate((hlines or {}).items()):
                if y is not None and math.isfinite(float(y)):
                    _hline(ax, float(y), str(name), ("#b03a48", "#7d4e00", "#5f6b73")[j % 3])
            ax.set_xlabel(_mpl(xlabel))
            ax.set_ylabel(_mpl(ylabel))
            if drawn > 1 or hlines:
                ax.legend(fontsize=8, loc="best", frameon=False)
    return Figure(title, out[0])


def bar_plot(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    ylabel: str,
    limit: float | None = None,
    limit_label: str | None = None,
) -> Figure:
    """One bar per label with its value on top; optional horizontal limit line
    (e.g. ``limit=0.5, limit_label="RTF-grense"``). A missing value is an empty bar "–"."""
    names = [str(label) for label in labels]
    v = _floats(values)[: len(names)]
    with _axes(title) as (ax, out):
        if not names:
            _no_data(ax)
        else:
            heights = [h if math.isfinite(h) else 0.0 for h in v]
            pos = list(range(len(names)))
            bars = ax.bar(pos, heights, color=_COLORS[0], width=0.6)
            ax.bar_label(bars, labels=[fmt_cell(h) for h in v], fontsize=8, padding=2)
            long = len(names) * max(len(n) for n in names) > 60  # labels would collide
            ax.set_xticks(pos)
            ax.set_xticklabels([_mpl(n) for n in names], rotation=20 if long else 0,
                               ha="right" if long else "center", fontsize=8 if long else 9)
            ax.grid(False, axis="x")
            ax.set_ylabel(_mpl(ylabel))
            top = max([h for h in heights] + [0.0])
            if limit is not None and math.isfinite(float(limit)):
                _hline(ax, float(limit), limit_label or "grense", "#b03a48")
                ax.legend(fontsize=8, loc="best", frameon=False)
                top = max(top, float(limit))
            if top > 0:
                ax.set_ylim(0, top * 1.15)
            if all(h == int(h) for h in heights) and (limit is None or limit == int(limit)):
                from matplotlib.ticker import MaxNLocator

                ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    return Figure(title, out[0])


def spectrum_plot(freqs_hz: Sequence[float] | Any, levels_db: dict[str, Sequence[float]],
                  *, title: str) -> Figure:
    """Level (dB) over frequency, log x axis from 50 Hz to Nyquist (the highest frequency
    given), one line per named spectrum."""
    f = _floats(freqs_hz)
    finite = [x for x in f if math.isfinite(x)]
    nyquist = max(finite) if finite else 0.0
    with _axes(title) as (ax, out):
        drawn = 0
        for i, (name, values) in enumerate(levels_db.items()):
            pts = [(fx, lv) for fx, lv in zip(f, _floats(values), strict=False)
                   if math.isfinite(fx) and fx >= 50.0]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=_mpl(name),
                        color=_COLORS[i % len(_COLORS)], linewidth=1.2)
                drawn += 1
        if not drawn or nyquist <= 50.0:
            _no_data(ax)
        else:
            from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

            ax.set_xscale("log")
            ax.set_xlim(50.0, nyquist)
            ticks = [t for t in _SPECTRUM_TICKS if 50.0 <= t <= nyquist]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FuncFormatter(_hz))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("Frekvens (Hz)")
            ax.set_ylabel("Nivå (dB)")
            if drawn > 1:
                ax.legend(fontsize=8, loc="best", frameon=False)
    return Figure(title, out[0])


_SPECTRUM_TICKS = (50, 100, 200, 500, 1000, 2000, 4000, 8000, 16000, 24000, 48000)


def _hz(x: float, _pos: Any = None) -> str:
    if x >= 1000:
        k = x / 1000
        return f"{k:.0f}k" if k == int(k) else f"{k:g}k"
    return f"{x:.0f}"


def histogram(
    values: Sequence[float] | Any,
    *,
    title: str,
    xlabel: str,
    bins: int | Sequence[float] | None = None,
    ylabel: str = "Antall",
) -> Figure:
    """A histogram of ``values``. ``bins=None``: one bar per whole number when all values
    are whole numbers (at most 50 apart), else 5–20 equal bins."""
    v = [x for x in _floats(values) if math.isfinite(x)]
    with _axes(title) as (ax, out):
        if not v:
            _no_data(ax)
        else:
            from matplotlib.ticker import MaxNLocator

            whole = False
            if bins is None:
                lo, hi = min(v), max(v)
                whole = all(x == int(x) for x in v) and hi - lo <= 50
                if whole:
                    bins = [b - 0.5 for b in range(int(lo), int(hi) + 2)]
                else:
                    bins = min(20, max(5, len(v)))
            ax.hist(v, bins=bins, color=_COLORS[0], edgecolor="white")
            ax.grid(False, axis="x")
            ax.set_xlabel(_mpl(xlabel))
            ax.set_ylabel(_mpl(ylabel))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            if whole:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return Figure(title, out[0])
