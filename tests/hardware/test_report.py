"""hardware.report and hardware.plots: JSON and self-contained HTML reports, plots, no stray files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from hardware import report as rpt
from hardware.plots import bar_plot, histogram, line_plot, spectrum_plot
from hardware.report import Figure, Report, ReportError, Section, write_reports

ROOT = Path(__file__).resolve().parents[2]
FP = {
    "host_id": "abc123",
    "cpu": "Test CPU <x86>",
    "ram_gb": 15.5,
    "cuda_devices": 0,
    "packages": {"numpy": "2.0", "ctranslate2": None},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
URL_RE = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.I)


@pytest.fixture(scope="module")
def figures() -> dict[str, Figure]:
    x = np.linspace(0.0, 10.0, 101)
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    return {
        "line": line_plot(x, {"RMS": np.sin(x) * 10 - 40, "topp": np.cos(x) * 10 - 30},
                          title="Nivå over tid", xlabel="tid (s)", ylabel="dBFS",
                          hlines={"støygulv": -55}),
        "bar": bar_plot(["base", "small", "large-v3"], [0.12, np.float32(0.4), None],
                        title="RTF per modell", ylabel="RTF", limit=0.5, limit_label="grense"),
        "spectrum": spectrum_plot(freqs, {"stille": -80 + 0 * freqs,
                                          "tale": -50 - 10 * np.log10(1 + freqs / 300)},
                                  title="Spektrum"),
        "hist": histogram([0, 1, 1, 3], title="Flagg per notat", xlabel="flagg"),
        "hist_float": histogram(np.random.default_rng(1).random(30), title="Edit ratio",
                                xlabel="ratio", bins=10),
    }


def full_report(figures: dict[str, Figure]) -> Report:
    r = Report("models", "Modeller <b>x</b> & co", fingerprint=FP)
    r.verdict = "marginal"
    r.summary = ["RTF 0.4 < 0.5 <ok>", "Tokens/s lav"]
    r.add(Section(
        "<b>x</b>",
        text="Første avsnitt\nlinje to\n\nAndre <i>avsnitt</i>",
        table=[
            {"modell": "base", "rtf": np.float64(0.123456), "tok_s": 12345.6, "ok": True,
             "merknad": None},
            {"modell": "small <i>", "rtf": 1.5, "tok_s": np.int64(7), "ok": np.bool_(False)},
        ],
        figures=[figures["line"], figures["bar"]],
        data={"rtf": np.array([0.1, 0.2]), "n": np.int32(3), "p": Path("/x/y"),
              "when": datetime(2025, 3, 3, 8, 0, tzinfo=UTC), "nan": float("nan"),
              "nested": {"t": (1, 2), 5: np.float16(0.5)}},
    ))
    r.add(Section("Spektrum", figures=[figures["spectrum"], figures["hist"]]))
    r.add(Section("Tom"))
    return r


# ------------------------------------------------------------------------ plots


@pytest.mark.parametrize("name", ["line", "bar", "spectrum", "hist", "hist_float"])
def test_plots_are_png(figures: dict[str, Figure], name: str) -> None:
    fig = figures[name]
    assert isinstance(fig, Figure) and fig.title
    assert fig.png.startswith(PNG_MAGIC)
    assert b"IEND" in fig.png[-16:]
    # ~7 x 3.2 inches at ~100 dpi (tight_layout keeps the canvas size).
    width, height = int.from_bytes(fig.png[16:20], "big"), int.from_bytes(fig.png[20:24], "big")
    assert (width, height) == (700, 320)
    assert b"matplotlib.org" not in fig.png  # no Software chunk naming a URL


def test_plots_without_data_still_render() -> None:
    assert line_plot([], {}, title="t", xlabel="x", ylabel="y").png.startswith(PNG_MAGIC)
    assert bar_plot([], [], title="t", ylabel="y").png.startswith(PNG_MAGIC)
    assert spectrum_plot([0, 10, 20], {"a": [1, 2, 3]}, title="t").png.startswith(PNG_MAGIC)
    assert histogram([], title="t", xlabel="x").png.startswith(PNG_MAGIC)
    # A "$" is text, not mathtext (an unbalanced one would raise in the renderer).
    assert line_plot([0, 1], {"$a": [1, 2]}, title="kr $5", xlabel="$", ylabel="y",
                     ).png.startswith(PNG_MAGIC)


def test_plotting_leaves_mplconfigdir_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    histogram([1, 2], title="t", xlabel="x")
    assert "MPLCONFIGDIR" not in os.environ
    monkeypatch.setenv("MPLCONFIGDIR", "/some/where")
    histogram([1, 2], title="t", xlabel="x")
    assert os.environ["MPLCONFIGDIR"] == "/some/where"  # a set value is left alone


def test_no_files_in_home_or_tmp(tmp_path: Path) -> None:
    """In a fresh process with MPLCONFIGDIR unset, importing matplotlib, plotting and
    writing a report leaves nothing in $HOME / XDG folders, and the throw-away config
    folder is gone from $TMPDIR again."""
    home, tmpdir, out = tmp_path / "home", tmp_path / "tmp", tmp_path / "out"
    for d in (home, tmpdir, out):
        d.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k != "MPLCONFIGDIR" and not k.startswith("XDG_")}
    env |= {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "TMPDIR": str(tmpdir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    code = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from hardware.plots import bar_plot, histogram, line_plot, spectrum_plot
        from hardware.report import Report, Section, write_reports
        assert "matplotlib" not in sys.modules
        r = Report("hardware", "t")
        s = r.add(Section("s"))
        s.figures.append(line_plot([0, 1, 2], {{"a": [1, 2, 3]}}, title="l", xlabel="x",
                                   ylabel="y", hlines={{"h": 2}}))
        s.figures.append(bar_plot(["a", "b"], [1, 2], title="b", ylabel="y", limit=1.5))
        s.figures.append(spectrum_plot([0, 100, 1000, 8000], {{"a": [1, 2, 3, 4]}}, title="s"))
        s.figures.append(histogram([1, 2, 2], title="h", xlabel="x"))
        write_reports(r, json_path=Path({str(out / "r.json")!r}),
                      html_path=Path({str(out / "r.html")!r}))
        assert "matplotlib" in sys.modules
        assert "MPLCONFIGDIR" not in os.environ
        # after the first import, drawing never touches the environment (setenv is not
        # thread-safe: the app's worker threads draw while the UI thread reads it)
        changed = []
        os.putenv = lambda *a: changed.append(a)
        os.unsetenv = lambda *a: changed.append(a)
        histogram([1, 2, 2], title="h2", xlabel="x")
        line_plot([0, 1], {{"b": [2, 1]}}, title="l2", xlabel="x", ylabel="y")
        assert changed == [], changed
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []
    assert [str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*")] == []


def test_hardware_report_imports_no_qt_and_no_app() -> None:
    code = (
        "import sys, hardware.report, hardware.plots; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('app', 'PySide6', 'matplotlib')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True).stdout
    assert out.strip() == ""  # matplotlib too: only imported when a plot is drawn


# ------------------------------------------------------------------------ JSON


def test_json_round_trip(tmp_path: Path, figures: dict[str, Figure]) -> None:
    r = full_report(figures)
    path = r.write_json(tmp_path / "sub" / "r.json")
    assert path == tmp_path / "sub" / "r.json"
    raw = path.read_text(encoding="utf-8")
    assert "Første" in raw and "\n  " in raw  # UTF-8 as is, indent 2
    doc = json.loads(raw)
    assert doc == json.loads(json.dumps(r.to_json()))
    assert set(doc) == {"kind", "title", "created", "verdict", "summary", "fingerprint",
                        "sections"}
    assert doc["kind"] == "models" and doc["title"] == "Modeller <b>x</b> & co"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created"])
    assert doc["verdict"] == "marginal" and doc["summary"] == ["RTF 0.4 < 0.5 <ok>",
                                                               "Tokens/s lav"]
    assert doc["fingerprint"] == FP
    s0 = doc["sections"][0]
    assert set(s0) == {"heading", "text", "table", "data", "figures"}
    assert s0["figures"] == ["Nivå over tid", "RTF per modell"]  # titles, no image data
    assert s0["table"][0] == {"modell": "base", "rtf": 0.123456, "tok_s": 12345.6, "ok": True,
                              "merknad": None}
    assert s0["table"][1]["tok_s"] == 7 and s0["table"][1]["ok"] is False
    assert s0["data"] == {"rtf": [0.1, 0.2], "n": 3, "p": "/x/y",
                          "when": "2025-03-03T08:00:00Z", "nan": None,
                          "nested": {"t": [1, 2], "5": 0.5}}
    assert doc["sections"][2] == {"heading": "Tom", "text": None, "table": None, "data": None,
                                  "figures": []}
    assert "base64" not in raw and "iVBOR" not in raw


def test_default_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    import hardware.fingerprint

    monkeypatch.setattr(hardware.fingerprint, "fingerprint", lambda: {"cpu": "fake"})
    assert Report("hardware", "t").fingerprint == {"cpu": "fake"}

    def broken() -> dict[str, object]:
        raise RuntimeError("no psutil")

    monkeypatch.setattr(hardware.fingerprint, "fingerprint", broken)
    assert Report("mic", "t").fingerprint == {"error": "RuntimeError: no psutil"}


def test_kind_is_checked() -> None:
    for kind in ("hardware", "mic", "models", "audit"):
        assert Report(kind, "t", fingerprint={}).kind == kind
    with pytest.raises(ValueError, match="report kind"):
        Report("other", "t", fingerprint={})


def test_add_returns_the_section() -> None:
    r = Report("mic", "t", fingerprint={})
    s = Section("a")
    assert r.add(s) is s and r.sections == [s]
    s.figures.append(Figure("f", PNG_MAGIC))
    assert r.to_json()["sections"][0]["figures"] == ["f"]


# ------------------------------------------------------------------------ HTML


def test_html_is_self_contained_and_escaped(tmp_path: Path, figures: dict[str, Figure]) -> None:
    r = full_report(figures)
    path = r.write_html(tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    assert page == r.html()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<img src="data:image/png;base64,') == 4
    assert "http://" not in page and "https://" not in page and not URL_RE.search(page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "url(" not in page and "@font-face" not in page
    # Every caller string escaped: headings, title, text, table cells, summary, fingerprint.
    assert "<h2>&lt;b&gt;x&lt;/b&gt;</h2>" in page
    assert "<b>x</b>" not in page and "<i>" not in page and "<x86>" not in page
    assert "<title>Modeller &lt;b&gt;x&lt;/b&gt; &amp; co</title>" in page
    assert "RTF 0.4 &lt; 0.5 &lt;ok&gt;" in page
    assert "Andre &lt;i&gt;avsnitt&lt;/i&gt;" in page and "small &lt;i&gt;" in page
    assert "<p>Første avsnitt<br>linje to</p>" in page
    # Verdict badge, table formatting, fingerprint table and footer.
    assert '<span class="badge marginal">marginal</span>' in page
    assert ">0.1235<" in page and ">12346<" in page and ">7<" in page and ">–<" in page
    assert ">ja<" in page and ">nei<" in page
    assert "<h2>Maskin</h2>" in page and page.index("Maskin") > page.index("Spektrum")
    assert "Test CPU &lt;x86&gt;" in page and "packages.numpy" in page
    assert re.search(r"Laget av ambient-scribe \S+ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</footer>",
                     page)
    assert "@page{size:A4" in page and "max-width:960px" in page


@pytest.mark.parametrize(("verdict", "cls"), [("ok", "ok"), ("Unfit", "unfit"),
                                              ("Anbefalt: small", "info")])
def test_verdict_badge_colour(verdict: str, cls: str) -> None:
    r = Report("hardware", "t", fingerprint={})
    r.verdict = verdict
    assert f'<span class="badge {cls}">{verdict}</span>' in r.html()


def test_no_verdict_no_conclusion() -> None:
    page = Report("audit", "t", fingerprint={}).html()
    assert "Konklusjon" not in page and "badge" not in page.split("</style>")[1]


def test_cell_formatting() -> None:
    f = rpt.fmt_cell
    assert [f(None), f(0.0), f(1 / 3), f(123.456), f(1234.5), f(123456.7), f(2.5e-5)] == [
        "–", "0", "0.3333", "123.5", "1234", "123457", "2.5e-5"]
    assert [f(np.float32(0.5)), f(np.int64(3)), f(float("nan")), f(True), f(7)] == [
        "0.5", "3", "–", "ja", "7"]


# ------------------------------------------------------------------------ writing


def test_write_reports_atomic_no_temp_left(tmp_path: Path, figures: dict[str, Figure]) -> None:
    r = full_report(figures)
    out = tmp_path / "out"
    j, h = out / "r.json", out / "r.html"
    j.parent.mkdir()
    j.write_text("old")
    assert write_reports(r, json_path=j, html_path=h) == [j, h]
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]
    assert json.loads(j.read_text())["kind"] == "models"
    assert write_reports(r, json_path=None, html_path=None) == []
    assert write_reports(r, json_path=None, html_path=h) == [h]
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]


def test_write_failure_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = Report("mic", "t", fingerprint={})

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rpt.os, "replace", fail)
    with pytest.raises(ReportError, match="cannot write .*r.html: No space left on device"):
        r.write_html(tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):  # a ReportError is an OSError too
        r.write_json(tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(ReportError):
        r.write_html(tmp_path / "dir.html")
    assert [p.name for p in tmp_path.iterdir()] == ["dir.html"]
