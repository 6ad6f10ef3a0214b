"""Enrolling the clinician's voice: the microphone test's passage, read for ~30 s, becomes a
voice profile (:mod:`asr.speakers.profile`) if the recording is long and clean enough.

The checks (each failure is one line saying what to do, and nothing is stored):

* speech: at least ``MIN_SPEECH_S`` seconds of speech (webrtcvad, long pauses cut out);
  silence and digital zeros have none;
* clipping: at most ``MAX_CLIPPING_PCT`` % of the samples (the microphone test's measure);
* noise: SNR at least ``MIN_SNR_DB`` (the microphone test's measure, P.56 speech level over
  the quietest frames);
* one voice: the recording's 3 s pieces (those within ``QUIET_PIECE_DB`` of the typical
  level: the clinician is the loudest voice at the microphone) are clustered as a consultation's segments are; two
  voices each with at least a quarter of the speech and a silhouette of at least
  ``TWO_VOICES_SILHOUETTE``, or pieces that do not agree with their mean (consistency below
  ``MIN_CONSISTENCY``), mean somebody else spoke too. Two synthetic espeak-ng voices that
  differ only in pitch are not told apart here (their pieces are as alike as one voice's).

The audio is used in memory and dropped; only the averaged embedding is kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from asr.errors import ScribeError
from asr.speakers.cluster import cluster
from asr.speakers.encoder import VoiceEncoder, speech_only
from asr.speakers.profile import VoiceProfile
from asr.types import SAMPLE_RATE
from hardware.mic_analysis import analyze

MIN_SPEECH_S = 15.0
MAX_CLIPPING_PCT = 0.1
MIN_SNR_DB = 15.0
MIN_CONSISTENCY = 0.6
PIECE_S = 3.0
QUIET_PIECE_DB = 8.0
# one real reader's pieces split at up to 0.43 (LibriSpeech readers), two real voices at 0.6-0.8:
# refusing a clean voice is worse than missing a colleague's few words
TWO_VOICES_SILHOUETTE = 0.5
RECORD_S = 35.0


class EnrollmentError(ScribeError):
    """The recording is not good enough for a voice profile (nothing was stored)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class EnrollmentCheck:
    speech_s: float
    snr_db: float
    clipping_pct: float
    consistency: float
    voices: int


def enroll(audio: np.ndarray, encoder: VoiceEncoder, *, now: dt.datetime | None = None) -> VoiceProfile:
    """A profile from a recording (16 kHz mono float32), or :class:`EnrollmentError`."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(audio) == 0 or not np.any(audio):
        raise EnrollmentError("the recording is silent: check that the microphone is on and not muted, then read the passage")
    stats = analyze(audio, SAMPLE_RATE)
    if stats.clipping_pct > MAX_CLIPPING_PCT:
        raise EnrollmentError(f"the recording is clipped ({stats.clipping_pct:.2f} % of samples): "
                              "lower the microphone's input level or speak further from it, then record again")
    speech = speech_only(audio)
    speech_s = len(speech) / SAMPLE_RATE
    if stats.no_speech or speech_s < 2.0:
        raise EnrollmentError("no speech was heard in the recording: read the passage aloud close to the microphone")
    if stats.snr_db < MIN_SNR_DB:
        raise EnrollmentError(f"the recording is too noisy (SNR {stats.snr_db:.0f} dB, at least {MIN_SNR_DB:.0f} needed): "
                              "record in a quiet room")
    if speech_s < MIN_SPEECH_S:
        raise EnrollmentError(f"too little speech ({speech_s:.0f} s, at least {MIN_SPEECH_S:.0f} s needed): "
                              "read the whole passage (about 30 s)")
    check, embedding = _voice(speech, encoder, stats.snr_db, stats.clipping_pct)
    if check.voices > 1 or check.consistency < MIN_CONSISTENCY:
        raise EnrollmentError("more than one voice was heard: record again with only the clinician speaking")
    created = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    return VoiceProfile(embedding, created, check.speech_s, check.snr_db, check.consistency)


def _voice(speech: np.ndarray, encoder: VoiceEncoder, snr_db: float, clipping_pct: float) -> tuple[EnrollmentCheck, np.ndarray]:
    step = int(PIECE_S * SAMPLE_RATE)
    pieces = [speech[i:i + step] for i in range(0, len(speech) - step // 2, step)]
    levels = np.array([10 * np.log10(np.mean(np.square(p, dtype=np.float64)) + 1e-12) for p in pieces])
    # the clinician is the loudest voice at the microphone: pieces far below the typical
    # level (a crowd, applause, a voice across the room) are not theirs
    pieces = [p for p, lv in zip(pieces, levels, strict=True) if lv >= np.median(levels) - QUIET_PIECE_DB]
    embeds = np.stack([encoder.embed(p) for p in pieces])
    weights = np.array([len(p) / SAMPLE_RATE for p in pieces])
    total = float(weights.sum())
    found = cluster(embeds, weights, max_voices=2, min_voice_weight=max(6.0, 0.25 * total),
                    min_silhouette=TWO_VOICES_SILHOUETTE)
    voices = int(found.labels.max()) + 1 if len(found.labels) else 0
    mean = (embeds * weights[:, None]).sum(0)
    mean = (mean / np.linalg.norm(mean)).astype(np.float32)
    consistency = float(np.average(embeds @ mean, weights=weights))
    return EnrollmentCheck(total, snr_db, clipping_pct, consistency, voices), mean
