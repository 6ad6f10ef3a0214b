"""One consultation's speakers: embeddings of its committed segments, their voices and roles.

:meth:`SpeakerTracker.add` takes a committed segment with its audio, splits it where the
voice changes (a question and a quick answer committed together), embeds each part and
returns the parts with their ``speaker`` and ``speaker_id``. After each segment all voices are
re-clustered (a few milliseconds for a consultation's few hundred segments), so an early guess
is corrected as the voices become clear: :meth:`labels` says what every segment is now, and
:meth:`add` returns which earlier segments changed. A clinician's relabel (one line, or a whole
voice) overrides the automatic role from then on.

Everything here (embeddings, the segments' text for naming by behaviour) is about the
patient and lives only in this object; :meth:`wipe` clears it in place.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from asr.speakers.cluster import cluster
from asr.speakers.encoder import VoiceEncoder, mean_embedding, speech_only
from asr.speakers.roles import PASIENT, name_voices
from asr.types import SAMPLE_RATE, Segment, words_text

Label = tuple[str | None, int | None]
"""(role, voice id) of one segment."""


@dataclass(frozen=True, slots=True)
class SpeakerOptions:
    """``main_other``: the role of the main voice that is not the clinician (``"pårørende"`` in
    paediatrics). ``min_embed_s``: a segment with less speech is not used to find the voices
    (it only gets the nearest one). ``split_min_s``: speech each side of a split needs.
    ``min_voice_s`` / ``min_voice_share``: a voice needs this much speech (seconds, share of
    all) to count as one; less (a cough, a noisy piece) is merged into the nearest."""

    main_other: str = PASIENT
    min_embed_s: float = 0.8
    split_min_s: float = 1.0
    split_max_candidates: int = 12
    split_window_s: float = 1.0
    split_min_gap_s: float = 0.1
    min_voice_s: float = 6.0
    min_voice_share: float = 0.08
    max_voices: int = 4


@dataclass(slots=True)
class _Item:
    segment: Segment
    embedding: np.ndarray | None
    weight: float


@dataclass(slots=True)
class Assignment:
    """The current answer: a label per segment id, how the clinician was named and how sure."""

    labels: dict[int, Label] = field(default_factory=dict)
    voices: int = 0
    method: str = "none"
    confidence: float = 0.0


class SpeakerTracker:
    """See the module docstring. Thread-safe (one lock)."""

    def __init__(self, encoder: VoiceEncoder, profile: np.ndarray | None = None,
                 options: SpeakerOptions | None = None) -> None:
        self.encoder = encoder
        self.profile = None if profile is None else np.asarray(profile, dtype=np.float32)
        self.options = options or SpeakerOptions()
        self._items: list[_Item] = []
        self._voice_ids: dict[int, int] = {}  # segment id -> stable voice id
        self._next_voice = 0
        self._next_id = 0
        self._centroids: dict[int, np.ndarray] = {}
        self._roles_by_voice: dict[int, str | None] = {}
        self._voice_overrides: dict[int, str | None] = {}
        self._segment_overrides: dict[int, str | None] = {}
        self.assignment = Assignment()
        self._lock = threading.Lock()

    # -- input ----------------------------------------------------------------------------
    def add(self, segment: Segment, audio: np.ndarray, audio_start: float) -> tuple[list[Segment], dict[int, Label]]:
        """``audio`` (16 kHz float32) starts at session time ``audio_start`` and covers the
        segment. Returns the segment (or its parts, renumbered) with labels, and the earlier
        segments whose label changed."""
        with self._lock:
            parts = self._split(segment, audio, audio_start)
            out = []
            for part in parts:
                part = dataclasses.replace(part, id=self._next_id)
                self._next_id += 1
                emb, speech_s = self._embed(_clip(audio, audio_start, part.start, part.end))
                self._items.append(_Item(part, emb, speech_s))
                out.append(part)
            before = dict(self.assignment.labels)
            self._assign()
            labels = self.assignment.labels
            changed = {i: lab for i, lab in labels.items() if i in before and before[i] != lab}
            return [self._labelled(p) for p in out], changed

    def relabel(self, segment_id: int | None = None, voice_id: int | None = None, role: str | None = None) -> dict[int, Label]:
        """The clinician's correction: one segment, or every segment of a voice (now and
        later). Returns the segments whose label changed."""
        with self._lock:
            before = dict(self.assignment.labels)
            if voice_id is not None:
                self._voice_overrides[voice_id] = role
                for seg_id, v in self._voice_ids.items():
                    if v == voice_id:
                        self._segment_overrides.pop(seg_id, None)
            elif segment_id is not None:
                self._segment_overrides[segment_id] = role
            self._relabel_all()
            return {i: lab for i, lab in self.assignment.labels.items() if before.get(i) != lab}

    def labels(self) -> dict[int, Label]:
        with self._lock:
            return dict(self.assignment.labels)

    def wipe(self) -> None:
        with self._lock:
            for item in self._items:
                if item.embedding is not None:
                    item.embedding.fill(0.0)
            self._items.clear()
            self._voice_ids.clear()
            for c in self._centroids.values():
                c.fill(0.0)
            self._centroids.clear()
            self._roles_by_voice.clear()
            self._voice_overrides.clear()
            self._segment_overrides.clear()
            self.assignment = Assignment()

    @property
    def embeddings_held(self) -> int:
        return sum(item.embedding is not None for item in self._items) + len(self._centroids)

    # -- embedding and splitting --------------------------------------------------------------
    def _embed(self, audio: np.ndarray) -> tuple[np.ndarray | None, float]:
        speech = speech_only(audio)
        if len(speech) < self.options.min_embed_s * SAMPLE_RATE:
            speech = audio  # webrtcvad drops some real speech in short pieces
        seconds = len(speech) / SAMPLE_RATE
        if seconds < 0.4:
            return None, seconds
        return self.encoder.embed(speech), seconds

    def _references(self) -> list[tuple[int, np.ndarray]]:
        refs = list(self._centroids.items())
        if self.profile is not None and not refs:
            refs = [(-1, self.profile)]
        return refs

    def _split(self, segment: Segment, audio: np.ndarray, audio_start: float) -> list[Segment]:
        """Split at the word boundary where the two sides sound most like two different known
        voices (each side at least ``split_min_s``); the segment whole if none does."""
        words = segment.words
        refs = self._references()
        opts = self.options
        if len(words) < 2 or len(refs) < 2 or segment.end - segment.start < 2 * opts.split_min_s:
            return [segment]
        candidates = []
        for i in range(1, len(words)):
            left_s = words[i - 1].end - words[0].start
            right_s = words[-1].end - words[i].start
            if left_s < opts.split_min_s or right_s < opts.split_min_s:
                continue
            gap = words[i].start - words[i - 1].end
            punct = words[i - 1].word.strip()[-1:] in ".?!,"
            if gap >= opts.split_min_gap_s or punct:
                candidates.append((gap + (0.5 if punct else 0.0), i))
        if not candidates:
            return [segment]
        origin = segment.start
        windows = self.encoder.sliding(_clip(audio, audio_start, origin, segment.end), opts.split_window_s,
                                       opts.split_window_s / 4)
        if len(windows) < 2:
            return [segment]
        ids = [r[0] for r in refs]
        centroids = np.stack([r[1] for r in refs])
        best: tuple[float, int] | None = None
        for _, i in sorted(candidates, reverse=True)[:opts.split_max_candidates]:
            cut = (words[i - 1].end + words[i].start) / 2 - origin
            left = [w.embedding for w in windows if w.end <= cut + 0.1]
            right = [w.embedding for w in windows if w.start >= cut - 0.1]
            if not left or not right:
                continue
            lv, rv = mean_embedding(left), mean_embedding(right)
            if ids[int(np.argmax(centroids @ lv))] == ids[int(np.argmax(centroids @ rv))]:
                continue
            score = float(lv @ rv)
            if best is None or score < best[0]:
                best = (score, i)
        if best is None:
            return [segment]
        i = best[1]
        return [_part(segment, words[:i]), _part(segment, words[i:])]

    # -- clustering and naming ----------------------------------------------------------------
    def _assign(self) -> None:
        opts = self.options
        usable = [k for k, it in enumerate(self._items) if it.embedding is not None and it.weight >= opts.min_embed_s]
        if not usable:
            self._voice_ids = {}
            self._centroids = {}
            self._relabel_all()
            return
        x = np.stack([self._items[k].embedding for k in usable])  # type: ignore[misc]
        w = np.array([self._items[k].weight for k in usable])
        min_voice = max(opts.min_voice_s, opts.min_voice_share * float(w.sum()))
        labels = cluster(x, w, max_voices=opts.max_voices, min_voice_weight=min_voice).labels
        k = int(labels.max()) + 1
        stable = self._stable_ids([self._items[i].segment.id for i in usable], labels)
        centroids = {stable[c]: mean_embedding(x[labels == c]) for c in range(k)}
        voice_ids: dict[int, int] = {}
        for i, c in zip(usable, labels.tolist(), strict=True):
            voice_ids[self._items[i].segment.id] = stable[c]
        ids = list(centroids)
        mat = np.stack([centroids[v] for v in ids])
        for it in self._items:  # short segments: the nearest voice
            if it.segment.id not in voice_ids and it.embedding is not None:
                voice_ids[it.segment.id] = ids[int(np.argmax(mat @ it.embedding))]
        self._voice_ids = voice_ids
        self._centroids = centroids
        weights = [sum(it.weight for it in self._items if voice_ids.get(it.segment.id) == v) for v in ids]
        texts = [[it.segment.text for it in self._items if voice_ids.get(it.segment.id) == v] for v in ids]
        sims = (mat @ self.profile).tolist() if self.profile is not None else []
        naming = name_voices(weights, texts=texts, profile_sims=sims, main_other=opts.main_other)
        self._roles_by_voice = dict(zip(ids, naming.roles, strict=True))
        self.assignment.voices = len(ids)
        self.assignment.method = naming.method
        self.assignment.confidence = naming.confidence
        self._relabel_all()

    def _stable_ids(self, seg_ids: list[int], labels: np.ndarray) -> dict[int, int]:
        """Keep voice numbers across re-clusterings: each new cluster takes the old number
        most of its segments had (greedy, largest overlap first); a new voice a new number."""
        overlap: dict[tuple[int, int], int] = {}
        for seg_id, c in zip(seg_ids, labels.tolist(), strict=True):
            old = self._voice_ids.get(seg_id)
            if old is not None:
                overlap[(c, old)] = overlap.get((c, old), 0) + 1
        mapping: dict[int, int] = {}
        used: set[int] = set()
        for (c, old), _n in sorted(overlap.items(), key=lambda kv: -kv[1]):
            if c not in mapping and old not in used:
                mapping[c] = old
                used.add(old)
        for c in sorted(set(labels.tolist())):
            if c not in mapping:
                mapping[c] = self._next_voice
                self._next_voice += 1
            self._next_voice = max(self._next_voice, mapping[c] + 1)
        return mapping

    def _relabel_all(self) -> None:
        labels: dict[int, Label] = {}
        for it in self._items:
            seg_id = it.segment.id
            voice = self._voice_ids.get(seg_id)
            role = self._roles_by_voice.get(voice) if voice is not None else None
            if voice is not None and voice in self._voice_overrides:
                role = self._voice_overrides[voice]
            if seg_id in self._segment_overrides:
                role = self._segment_overrides[seg_id]
            labels[seg_id] = (role, voice)
        self.assignment.labels = labels

    def _labelled(self, segment: Segment) -> Segment:
        role, voice = self.assignment.labels.get(segment.id, (None, None))
        return dataclasses.replace(segment, speaker=role, speaker_id=voice)


def _clip(audio: np.ndarray, audio_start: float, start: float, end: float) -> np.ndarray:
    i = max(0, int(round((start - audio_start) * SAMPLE_RATE)))
    j = max(i, int(round((end - audio_start) * SAMPLE_RATE)))
    return audio[i:j]


def _part(segment: Segment, words: Sequence) -> Segment:
    return dataclasses.replace(segment, start=words[0].start, end=words[-1].end, text=words_text(list(words)),
                               words=tuple(words))
