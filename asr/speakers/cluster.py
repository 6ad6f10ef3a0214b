"""Who spoke which segment, from voice embeddings alone: clustering with its own number of voices.

A consultation has one to four voices (clinician, patient, a relative, now and then an
interpreter or a nurse). The segments' embeddings (unit vectors, weighted by their speech
time) are clustered by weighted spherical k-means for each k (the best of a dozen k-means++
starts by k-means' own objective; choosing among the starts by silhouette instead was tried and
picked a tight minority group in one consultation: purity 0.57 instead of 0.95; average-linkage
agglomeration was tried first and chained the short, noisy segments into a cluster of their
own), a cluster with too little speech joins its nearest, and the
number of voices is the smallest whose partition has a weighted silhouette of at least
``min_silhouette`` and is not beaten by a partition with more voices by ``MORE_VOICES_GAIN``
(a spurious extra "voice" of mixed, short segments scores about as well); otherwise it is
one voice.

No absolute similarity threshold decides "same" or "different": the same-speaker similarity
of real voices varies with the microphone and the room (0.5–0.9 between 5 s pieces of one
real speaker here) and synthetic voices are closer to each other than that (0.87 between
two espeak voices), so only the structure of the consultation's own embeddings is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_VOICES = 4
MIN_SILHOUETTE = 0.2
MORE_VOICES_GAIN = 0.05


@dataclass(frozen=True, slots=True)
class Clustering:
    labels: np.ndarray  # one int per item, 0..k-1, numbered by first appearance
    centroids: np.ndarray  # (k, dim) unit vectors
    silhouette: float  # of the chosen partition (0 for one voice)


def cluster(embeddings: np.ndarray, weights: np.ndarray | None = None, *, max_voices: int = MAX_VOICES,
            min_silhouette: float = MIN_SILHOUETTE, min_voice_weight: float = 0.0) -> Clustering:
    """Cluster unit-vector ``embeddings`` (n, dim); ``weights`` (speech seconds) default to 1.
    A cluster whose total weight is below ``min_voice_weight`` is not accepted as a voice (a
    cough, a noisy piece, one odd segment): its items join the nearest accepted cluster."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n == 0:
        return Clustering(np.zeros(0, dtype=int), np.zeros((0, x.shape[1] if x.ndim == 2 else 0)), 0.0)
    best = Clustering(np.zeros(n, dtype=int), _centroids(x, w, np.zeros(n, dtype=int), 1), 0.0)
    if n < 3:
        return best
    sims = x @ x.T
    for labels in _partitions(x, w, min(max_voices, n - 1)):
        labels = _merge_small(x, w, labels, min_voice_weight)
        labels = _kmeans(x, w, labels, int(labels.max()) + 1)
        labels = _merge_small(x, w, labels, min_voice_weight)
        k = int(labels.max()) + 1
        if k < 2:
            continue
        s = _silhouette(sims, w, labels, k)
        # one more voice must earn its place: a better silhouette by MORE_VOICES_GAIN
        need = min_silhouette if best.silhouette == 0.0 else best.silhouette + MORE_VOICES_GAIN
        if s >= need:
            best = Clustering(labels, _centroids(x, w, labels, k), s)
    return best


def _partitions(x: np.ndarray, w: np.ndarray, max_k: int, restarts: int = 12) -> list[np.ndarray]:
    """For k = 2..max_k, the best of ``restarts`` weighted spherical k-means runs from
    k-means++ seeds (a fixed seed: the same input gives the same voices)."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(2, max_k + 1):
        best: tuple[float, np.ndarray] | None = None
        for _ in range(restarts):
            seeds = [int(rng.choice(len(x), p=w / w.sum()))]
            for _ in range(1, k):
                d = np.clip(1.0 - (x @ x[seeds].T).max(1), 0.0, None) * w
                if d.sum() <= 0:
                    break
                seeds.append(int(rng.choice(len(x), p=d / d.sum())))
            labels = _kmeans(x, w, _first_appearance(np.argmax(x @ x[seeds].T, axis=1)), len(seeds))
            kk = int(labels.max()) + 1
            objective = float((w * np.einsum("ij,ij->i", x, _centroids(x, w, labels, kk)[labels])).sum())
            if best is None or objective > best[0]:
                best = (objective, labels)
        if best is not None:
            out.append(best[1])
    return out


def _merge_small(x: np.ndarray, w: np.ndarray, labels: np.ndarray, min_weight: float) -> np.ndarray:
    k = int(labels.max()) + 1
    sizes = np.array([w[labels == c].sum() for c in range(k)])
    big = np.flatnonzero(sizes >= min_weight)
    if len(big) == k or len(big) == 0:
        return labels if len(big) else np.zeros_like(labels)
    cents = _centroids(x, w, labels, k)[big]
    out = labels.copy()
    small = ~np.isin(labels, big)
    out[small] = big[np.argmax(x[small] @ cents.T, axis=1)]
    return np.searchsorted(big, out)


def _centroids(x: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    c = np.stack([(x[labels == j] * w[labels == j, None]).sum(0) for j in range(k)])
    return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)


def _kmeans(x: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int, rounds: int = 8) -> np.ndarray:
    for _ in range(rounds):
        new = np.argmax(x @ _centroids(x, w, labels, k).T, axis=1)
        used = np.unique(new)
        new = np.searchsorted(used, new)  # drop emptied clusters
        if np.array_equal(new, labels):
            break
        labels, k = new, len(used)
    return _first_appearance(labels)


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    order: dict[int, int] = {}
    for v in labels.tolist():
        order.setdefault(v, len(order))
    return np.array([order[v] for v in labels.tolist()], dtype=int)


def _silhouette(sims: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Weighted mean silhouette on cosine distance (a singleton's own distance is 0)."""
    dist = 1.0 - sims
    per = np.zeros((len(w), k))
    for c in range(k):
        m = labels == c
        per[:, c] = (dist[:, m] * w[m]).sum(1) / w[m].sum()
    own = per[np.arange(len(w)), labels]
    # an item's own cluster mean includes itself (distance 0): correct for its weight
    own_w = np.array([w[labels == c].sum() for c in range(k)])[labels]
    own = np.where(own_w > w, own * own_w / np.maximum(own_w - w, 1e-12), 0.0)
    per[np.arange(len(w)), labels] = np.inf
    other = per.min(1)
    s = (other - own) / np.maximum(np.maximum(other, own), 1e-12)
    return float((s * w).sum() / w.sum())
