"""The microphone test's grading: ``ok`` / ``marginal`` / ``unfit`` with reasons, in English
or bokmål (:func:`verdict`), and whether a transcript is a reading of the reference passage
at all (:func:`is_reference_mismatch`).

Verdict thresholds (:func:`verdict`; the worst reason decides):

=====================  ==================  =====================
measure                marginal            unfit
=====================  ==================  =====================
no speech              –                   SNR < −3 dB or digital silence
SNR                    < 30 dB             < 20 dB
clipping               > 0.1 %             > 1 %
bandwidth              < 7 kHz             ≤ 5 kHz (telephone band)
DC offset              > 1 % FS            –
dropouts / overruns    ≥ 1                 –
speech level           < −40 dBFS          –
dead channel           yes                 –
WER on the passage     > 25 %              > 40 %
=====================  ==================  =====================

If the transcript looks like another text than the reference (WER > 70 % or fewer than
30 % of the reference's words heard, while the signal itself is not unfit), the reasons
say "the recording does not match the reference text" and the WER is left out of the
verdict: the reading is wrong, not the microphone.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import re
from typing import Any

from hardware.mic_analysis import MicAnalysis

# ------------------------------------------------------------------ thresholds
SNR_OK_DB = 30.0
SNR_MARGINAL_DB = 20.0
CLIP_MARGINAL_PCT = 0.1
CLIP_UNFIT_PCT = 1.0
BANDWIDTH_OK_HZ = 7000.0
BANDWIDTH_TELEPHONE_HZ = 5000.0
BANDWIDTH_NARROW_HZ = 3000.0
DC_MARGINAL_PCT = 1.0
QUIET_DBFS = -40.0
WER_OK = 0.25
WER_MARGINAL = 0.40
MISMATCH_WER = 0.70
MISMATCH_OVERLAP = 0.30
VERDICTS = ("ok", "marginal", "unfit")


# ------------------------------------------------------------------ verdict

_REASONS: dict[str, dict[str, str]] = {
    "en": {
        "digital_silence": "the device delivers only digital silence (muted, or the wrong "
        "input selected)",
        "no_speech": "no speech heard: the recording is no louder than the background "
        "(microphone muted, too far away, or the wrong input selected?)",
        "snr_unfit": "signal-to-noise ratio {snr:.0f} dB is too low (20 dB is the minimum, "
        "30 dB is ok): move the microphone closer or reduce the background noise",
        "snr_marginal": "signal-to-noise ratio {snr:.0f} dB is marginal (30 dB or more is ok)",
        "clip_unfit": "{pct:.1f} % of the samples are clipped (over 1 %): lower the input gain",
        "clip_marginal": "{pct:.2f} % of the samples are clipped (over 0.1 %): lower the "
        "input gain a little",
        "bw_telephone": "effective bandwidth {khz:.1f} kHz: telephone band (the device or its "
        "driver runs at 8 kHz, e.g. a Bluetooth headset in call mode); speech recognition "
        "needs about 7 kHz",
        "bw_narrow": "effective bandwidth only {khz:.1f} kHz: most speech frequencies are "
        "missing (a filter, noise suppression or a faulty microphone?); speech recognition "
        "needs about 7 kHz",
        "bw_marginal": "effective bandwidth {khz:.1f} kHz is narrow (7 kHz or more is ok)",
        "dc": "DC offset {pct:.1f} % of full scale (over 1 %): a faulty microphone or sound "
        "card input",
        "dropouts": "{n} dropout(s) in the recording (gaps of digital silence of 10 ms or more)",
        "xruns": "{n} buffer overrun(s) while recording: the computer did not keep up",
        "quiet": "speech level {db:.0f} dBFS is low (below −40 dBFS): speak closer to the "
        "microphone or raise the input gain",
        "dead_channel": "channel {ch} is silent/dead; the measurements use channel {used}. "
        "The app mixes the channels, which halves the level: fix the cable or choose a mono "
        "input",
        "wer_marginal": "word error rate {wer:.0%} on the reference passage (25 % or less is ok)",
        "wer_unfit": "word error rate {wer:.0%} on the reference passage is too high (over 40 %)",
        "wer_model": "word error rate {wer:.0%} on the reference passage although the signal measures "
        "clean: the ASR model (or the reading) limits accuracy, not the microphone; test again with "
        "the hospital's model (e.g. NB-Whisper large, --model DIR)",
        "mismatch": "the recording does not match the reference text (word error rate "
        "{wer:.0%}): the reading, not the microphone, differs, so the word error rate is "
        "left out of the verdict",
        "ok": "all measurements are within the limits (SNR {snr:.0f} dB, bandwidth "
        "{khz:.1f} kHz, clipping {pct:.2f} %)",
    },
    "nb": {
        "digital_silence": "enheten leverer bare digital stillhet (dempet, eller feil inngang "
        "valgt)",
        "no_speech": "ingen tale hørt: opptaket er ikke sterkere enn bakgrunnen (mikrofonen "
        "dempet, for langt unna eller feil inngang valgt?)",
        "snr_unfit": "signal/støy-forholdet {snr:.0f} dB er for lavt (minst 20 dB, 30 dB er "
        "godt): flytt mikrofonen nærmere eller demp bakgrunnsstøyen",
        "snr_marginal": "signal/støy-forholdet {snr:.0f} dB er i grenseland (30 dB eller mer "
        "er godt)",
        "clip_unfit": "{pct:.1f} % av samplene er klippet (over 1 %): skru ned "
        "inngangsforsterkningen",
        "clip_marginal": "{pct:.2f} % av samplene er klippet (over 0,1 %): skru "
        "inngangsforsterkningen litt ned",
        "bw_telephone": "effektiv båndbredde {khz:.1f} kHz: telefonbånd (enheten eller "
        "driveren går på 8 kHz, f.eks. et Bluetooth-headset i samtalemodus); talegjenkjenning "
        "trenger rundt 7 kHz",
        "bw_narrow": "effektiv båndbredde bare {khz:.1f} kHz: de fleste talefrekvensene "
        "mangler (et filter, støydemping eller en defekt mikrofon?); talegjenkjenning trenger "
        "rundt 7 kHz",
        "bw_marginal": "effektiv båndbredde {khz:.1f} kHz er smal (7 kHz eller mer er godt)",
        "dc": "DC-forskyvning {pct:.1f} % av fullt utslag (over 1 %): feil i mikrofonen eller "
        "lydkortinngangen",
        "dropouts": "{n} utfall i opptaket (hull med digital stillhet på 10 ms eller mer)",
        "xruns": "{n} bufferoverløp under opptaket: maskinen holdt ikke følge",
        "quiet": "talenivået {db:.0f} dBFS er lavt (under −40 dBFS): snakk nærmere mikrofonen "
        "eller skru opp forsterkningen",
        "dead_channel": "kanal {ch} er stille/død; målingene bruker kanal {used}. Programmet "
        "blander kanalene, som halverer nivået: sjekk kabelen eller velg en monoinngang",
        "wer_marginal": "ordfeilrate {wer:.0%} på referanseteksten (25 % eller mindre er godt)",
        "wer_unfit": "ordfeilraten {wer:.0%} på referanseteksten er for høy (over 40 %)",
        "wer_model": "ordfeilrate {wer:.0%} på referanseteksten selv om signalet måler rent: det er "
        "talegjenkjenningsmodellen (eller opplesningen) som begrenser, ikke mikrofonen; test igjen med "
        "sykehusets modell (f.eks. NB-Whisper large)",
        "mismatch": "opptaket stemmer ikke med referanseteksten (ordfeilrate {wer:.0%}): det "
        "er opplesningen, ikke mikrofonen, som avviker, så ordfeilraten telles ikke med i "
        "vurderingen",
        "ok": "alle målinger er innenfor grensene (signal/støy {snr:.0f} dB, båndbredde "
        "{khz:.1f} kHz, klipping {pct:.2f} %)",
    },
}


def _fmt(lang: str, key: str, **kw: Any) -> str:
    table = _REASONS.get(lang, _REASONS["en"])
    text = table[key].format(**kw)
    if lang == "nb":  # decimal comma
        text = re.sub(r"(\d)\.(\d)", r"\1,\2", text)
    return text


def verdict(
    analysis: MicAnalysis,
    wer: float | None = None,
    reference_mismatch: bool = False,
    *,
    lang: str = "en",
) -> tuple[str, list[str]]:
    """``("ok" | "marginal" | "unfit", reasons)``; thresholds in the module doc.

    Reasons are English (``lang="en"``) or bokmål (``lang="nb"``); the worst decides.
    """
    a = analysis
    found: list[tuple[int, str]] = []  # (severity 1 marginal / 2 unfit, text)

    def add(sev: int, key: str, **kw: Any) -> None:
        found.append((sev, _fmt(lang, key, **kw)))

    if a.digital_silence:
        add(2, "digital_silence")
    elif a.no_speech:
        add(2, "no_speech")
    else:
        if a.snr_db < SNR_MARGINAL_DB:
            add(2, "snr_unfit", snr=a.snr_db)
        elif a.snr_db < SNR_OK_DB:
            add(1, "snr_marginal", snr=a.snr_db)
        if a.bandwidth_hz < BANDWIDTH_NARROW_HZ:
            add(2, "bw_narrow", khz=a.bandwidth_hz / 1000)
        elif a.bandwidth_hz <= BANDWIDTH_TELEPHONE_HZ:
            add(2, "bw_telephone", khz=a.bandwidth_hz / 1000)
        elif a.bandwidth_hz < BANDWIDTH_OK_HZ:
            add(1, "bw_marginal", khz=a.bandwidth_hz / 1000)
        if a.speech_level_dbfs < QUIET_DBFS:
            add(1, "quiet", db=a.speech_level_dbfs)
    if a.clipping_pct > CLIP_UNFIT_PCT:
        add(2, "clip_unfit", pct=a.clipping_pct)
    elif a.clipping_pct > CLIP_MARGINAL_PCT:
        add(1, "clip_marginal", pct=a.clipping_pct)
    if abs(a.dc_offset_pct) > DC_MARGINAL_PCT:
        add(1, "dc", pct=a.dc_offset_pct)
    zero_runs = a.dropouts - a.xruns
    if zero_runs > 0:
        add(1, "dropouts", n=zero_runs)
    if a.xruns > 0:
        add(1, "xruns", n=a.xruns)
    for ch in a.dead_channels:
        add(1, "dead_channel", ch=ch, used=a.channel_used)
    signal_clean = not found
    if wer is not None and not a.no_speech:
        if reference_mismatch:
            found.append((0, _fmt(lang, "mismatch", wer=wer)))
        elif signal_clean and wer > WER_OK:
            # every signal measure is fine: the ASR model (or the reading) limits the WER, not
            # the microphone; say so rather than calling the microphone unfit
            add(1, "wer_model", wer=wer)
        elif wer > WER_MARGINAL:
            add(2, "wer_unfit", wer=wer)
        elif wer > WER_OK:
            add(1, "wer_marginal", wer=wer)
    severity = max((s for s, _ in found), default=0)
    reasons = [t for s, t in sorted(found, key=lambda p: -p[0])]
    if severity == 0:
        reasons.insert(
            0, _fmt(lang, "ok", snr=a.snr_db, khz=a.bandwidth_hz / 1000, pct=a.clipping_pct)
        )
    return VERDICTS[severity], reasons


# ------------------------------------------------------------------ the reference passage


def word_overlap(reference: str, hypothesis: str) -> float:
    """Share (0..1) of the reference's distinct words that occur in the hypothesis."""
    from asr.evaluation import normalize_text

    ref = set(normalize_text(reference).split())
    hyp = set(normalize_text(hypothesis).split())
    return len(ref & hyp) / len(ref) if ref else 0.0


def is_reference_mismatch(
    analysis: MicAnalysis, reference: str, hypothesis: str, wer: float
) -> bool:
    """True if the recording is most likely not a reading of ``reference``: the signal
    is usable (not unfit on its own) and the transcript has words, but WER > 70 % or it
    shares fewer than 30 % of the reference's words."""
    if analysis.no_speech or len(hypothesis.split()) < 5:
        return False
    if verdict(analysis)[0] == "unfit":
        return False  # a bad signal explains a bad transcript
    return wer > MISMATCH_WER or word_overlap(reference, hypothesis) < MISMATCH_OVERLAP
