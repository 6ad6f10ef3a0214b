"""The microphone test's outcome (:class:`MicTestResult`) as a report: the verdict, the
numbers with their limits, the level-over-time and spectrum plots, in English or bokmål
(:func:`build_report`), written as JSON and HTML (:func:`write_report_files`).

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hardware.mic_analysis import FRAME_S, MicAnalysis
from hardware.mic_capture import DeviceChoice


@dataclass
class MicTestResult:
    """The outcome of :func:`hardware.mic.run_mic_test`. Holds no audio."""

    analysis: MicAnalysis
    verdict: str
    reasons: list[str]
    wer: float | None = None
    reference_words: int | None = None
    reference_mismatch: bool = False
    hypothesis: str | None = None
    model_id: str | None = None
    source: str = ""
    device: DeviceChoice | None = None
    notes: list[str] = field(default_factory=list)
    report: Any = None  # hardware.report.Report


# ------------------------------------------------------------------ report

_REPORT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Microphone test",
        "recording": "Recording",
        "measurements": "Measurements",
        "channels": "Channels",
        "asr": "Speech recognition of the reference passage",
        "levels": "Level over time (50 ms frames)",
        "spectrum": "Long-term spectrum: speech and background",
        "time": "Time (s)",
        "level": "Level (dBFS)",
        "noise_floor": "noise floor",
        "speech_level": "speech level",
        "speech": "speech",
        "silence": "silence",
        "background": "background",
        "measure": "Measure",
        "value": "Value",
        "limits": "ok / marginal / unfit",
        "no_wer": "Not measured.",
        "hidden": "The transcript is not shown: the recording is not the reference passage.",
        "notes": "Notes",
        "r.noise_floor": "noise floor (dBFS)",
        "r.speech_level": "speech level (dBFS)",
        "r.snr": "SNR (dB)",
        "r.clipping": "clipping (% of samples)",
        "r.dc": "DC offset (% FS)",
        "r.dropouts": "dropouts + overruns",
        "r.bandwidth": "effective bandwidth (Hz)",
        "r.peak": "peak (dBFS)",
        "r.speech_s": "speech time (s)",
        "r.source": "source",
        "r.rate": "sample rate (Hz)",
        "r.channels": "channels",
        "r.used": "channel used",
        "r.speech_rec": "speech recording (s)",
        "r.silence_rec": "silence recording (s)",
        "r.xruns": "buffer overruns",
        "r.wer": "word error rate",
        "r.ref_words": "reference words",
        "r.model": "model",
        "r.matches": "matches the reference",
        "silence recording": "silence recording",
        "quietest 10 % of frames": "quietest 10 % of frames",
    },
    "nb": {
        "title": "Mikrofontest",
        "recording": "Opptak",
        "measurements": "Målinger",
        "channels": "Kanaler",
        "asr": "Talegjenkjenning av referanseteksten",
        "levels": "Nivå over tid (50 ms-rammer)",
        "spectrum": "Langtidsspekter: tale og bakgrunn",
        "time": "Tid (s)",
        "level": "Nivå (dBFS)",
        "noise_floor": "støygulv",
        "speech_level": "talenivå",
        "speech": "tale",
        "silence": "stillhet",
        "background": "bakgrunn",
        "measure": "Måling",
        "value": "Verdi",
        "limits": "godt / grenseland / uegnet",
        "no_wer": "Ikke målt.",
        "hidden": "Transkripsjonen vises ikke: opptaket er ikke referanseteksten.",
        "notes": "Merknader",
        "r.noise_floor": "støygulv (dBFS)",
        "r.speech_level": "talenivå (dBFS)",
        "r.snr": "signal/støy (dB)",
        "r.clipping": "klipping (% av samplene)",
        "r.dc": "DC-forskyvning (% av fullt utslag)",
        "r.dropouts": "utfall + bufferoverløp",
        "r.bandwidth": "effektiv båndbredde (Hz)",
        "r.peak": "toppnivå (dBFS)",
        "r.speech_s": "taletid (s)",
        "r.source": "kilde",
        "r.rate": "samplingsfrekvens (Hz)",
        "r.channels": "kanaler",
        "r.used": "kanal brukt",
        "r.speech_rec": "taleopptak (s)",
        "r.silence_rec": "stillhetsopptak (s)",
        "r.xruns": "bufferoverløp",
        "r.wer": "ordfeilrate",
        "r.ref_words": "ord i referansen",
        "r.model": "modell",
        "r.matches": "stemmer med referansen",
        "silence recording": "stillhetsopptaket",
        "quietest 10 % of frames": "de stilleste 10 % av rammene",
    },
}


def measurement_rows(a: MicAnalysis, lang: str = "en") -> list[tuple[str, Any, str]]:
    """The main numbers as ``(measure, value, limits ok / marginal / unfit)``."""
    t = _REPORT.get(lang, _REPORT["en"])
    return [
        (t["r.noise_floor"], a.noise_floor_dbfs, t.get(a.noise_source, a.noise_source)),
        (t["r.speech_level"], a.speech_level_dbfs, "≥ −40 / < −40"),
        (t["r.snr"], a.snr_db, "≥ 30 / 20–30 / < 20"),
        (t["r.clipping"], a.clipping_pct, "≤ 0.1 / ≤ 1 / > 1"),
        (t["r.dc"], a.dc_offset_pct, "≤ 1 / > 1"),
        (t["r.dropouts"], a.dropouts, "0 / ≥ 1"),
        (t["r.bandwidth"], a.bandwidth_hz, "≥ 7000 / > 5000 / ≤ 5000"),
        (t["r.peak"], a.peak_dbfs, ""),
        (t["r.speech_s"], a.speech_s, ""),
    ]


def build_report(
    result: MicTestResult, *, lang: str = "en", fingerprint: dict[str, Any] | None = None
) -> Any:
    """A :class:`hardware.report.Report` (kind "mic") with the verdict, the numbers, the
    level-over-time plot and the spectrum. The transcript is included only when it is a
    reading of the reference passage (a mismatched recording could be anything, even a
    consultation, and is not copied into a file)."""
    from hardware.plots import line_plot, spectrum_plot
    from hardware.report import Report, Section

    t = _REPORT.get(lang, _REPORT["en"])
    a = result.analysis

    def kv(rows: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        return [{t["measure"]: k, t["value"]: v} for k, v in rows]

    rep = Report("mic", t["title"], fingerprint=fingerprint)
    rep.verdict = result.verdict
    rep.summary = list(result.reasons)
    rep.add(
        Section(
            t["recording"],
            table=kv(
                [
                    (t["r.source"], result.source),
                    (t["r.rate"], a.sample_rate),
                    (t["r.channels"], a.channels),
                    (t["r.used"], a.channel_used),
                    (t["r.speech_rec"], a.duration_s),
                    (t["r.silence_rec"], a.silence_s),
                    (t["r.xruns"], a.xruns),
                ]
            ),
            data={
                "source": result.source,
                "device": asdict(result.device) if result.device else None,
            },
        )
    )
    rows = [
        {t["measure"]: m, t["value"]: v, t["limits"]: lim}
        for m, v, lim in measurement_rows(a, lang)
    ]
    figures = []
    if a.frame_levels_dbfs:
        n = max(len(a.frame_levels_dbfs), len(a.silence_levels_dbfs))
        x = [round(i * FRAME_S, 3) for i in range(n)]
        ys: dict[str, Sequence[float]] = {t["speech"]: a.frame_levels_dbfs}
        if a.silence_levels_dbfs:
            ys[t["silence"]] = a.silence_levels_dbfs
        figures.append(
            line_plot(
                x,
                ys,
                title=t["levels"],
                xlabel=t["time"],
                ylabel=t["level"],
                hlines={
                    t["noise_floor"]: a.noise_floor_dbfs,
                    t["speech_level"]: a.speech_level_dbfs,
                },
            )
        )
    if a.freqs_hz and a.speech_spectrum_db:
        spectra: dict[str, Sequence[float]] = {t["speech"]: a.speech_spectrum_db}
        if a.noise_spectrum_db:
            spectra[t["background"]] = a.noise_spectrum_db
        figures.append(spectrum_plot(a.freqs_hz, spectra, title=t["spectrum"]))
    rep.add(Section(t["measurements"], table=rows, figures=figures, data=a.to_dict()))
    if a.channels > 1:
        rep.add(Section(t["channels"], table=[asdict(s) for s in a.per_channel]))
    if result.reference_words is not None:
        if result.wer is None:
            rep.add(Section(t["asr"], text=t["no_wer"]))
        else:
            data = {
                "wer": result.wer,
                "reference_words": result.reference_words,
                "reference_mismatch": result.reference_mismatch,
                "model": result.model_id,
            }
            text = t["hidden"] if result.reference_mismatch else result.hypothesis
            rep.add(
                Section(
                    t["asr"],
                    text=text,
                    table=kv(
                        [
                            (t["r.wer"], round(result.wer, 4)),
                            (t["r.ref_words"], result.reference_words),
                            (t["r.model"], result.model_id or "–"),
                            (t["r.matches"], not result.reference_mismatch),
                        ]
                    ),
                    data=data,
                )
            )
    if result.notes:
        rep.add(Section(t["notes"], text="\n".join(result.notes)))
    return rep


def write_report_files(
    report: Any, *, json_path: Path | None, html_path: Path | None
) -> list[Path]:
    from hardware.report import write_reports

    return write_reports(report, json_path=json_path, html_path=html_path)
