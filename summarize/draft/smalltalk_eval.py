"""Scoring the small-talk filter on the labelled consultations: reading one (turns,
speakers, labels, times), and precision, recall and F1 of dropping."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import yaml

from summarize.errors import TranscriptInputError
from summarize.transcript_io import normalize_speaker
from summarize.types import FilteredTranscript, Utterance

logger = logging.getLogger(__name__)

SMALLTALK_LABEL = "smaprat"
"""The label of small-talk turns in the shared consultations (the positive class)."""


def evaluate(labels: Sequence[str], predicted_dropped: Sequence[bool]) -> dict[str, float | int]:
    """Precision, recall and F1 of dropping, with small talk (``smaprat``) as the positive
    class; also how many ``blandet``/``klinisk`` turns were dropped (should be 0)."""
    if len(labels) != len(predicted_dropped):
        raise ValueError(f"{len(labels)} labels but {len(predicted_dropped)} predictions")
    tp = fp = fn = tn = 0
    dropped_by_kind: dict[str, int] = {}
    for label, dropped in zip(labels, predicted_dropped, strict=True):
        positive = label == SMALLTALK_LABEL
        if dropped:
            dropped_by_kind[label] = dropped_by_kind.get(label, 0) + 1
        tp += positive and dropped
        fp += (not positive) and dropped
        fn += positive and not dropped
        tn += (not positive) and not dropped
    precision = tp / (tp + fp) if tp + fp else (1.0 if tp + fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(labels),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "blandet_dropped": dropped_by_kind.get("blandet", 0),
        "klinisk_dropped": dropped_by_kind.get("klinisk", 0),
    }


def predicted_dropped(result: FilteredTranscript) -> list[bool]:
    """Per utterance, in order: was it dropped? (the shape :func:`evaluate` wants)."""
    ids = {d.id for d in result.dropped}
    return [u.id in ids for u in result.utterances]


def load_consultation(path: str | Path) -> tuple[list[Utterance], list[str]]:
    """Utterances (id = turn index, speaker, text; start/end from the sibling
    ``*.turns.json`` when present) and the per-turn labels of one labelled consultation."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        turns = data["turns"]
        times = _turn_times(path)
        utts: list[Utterance] = []
        labels: list[str] = []
        for i, t in enumerate(turns):
            start, end = times.get(i, (None, None))
            utts.append(Utterance(i, str(t["text"]), start, end, normalize_speaker(t.get("speaker"))))
            labels.append(str(t["kind"]))
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise TranscriptInputError(f"cannot read consultation {path}: {exc}") from exc
    return utts, labels


def _turn_times(path: Path) -> dict[int, tuple[float | None, float | None]]:
    import json

    side = path.with_name(path.name.removesuffix(".yaml") + ".turns.json")
    if not side.exists():
        return {}
    try:
        rows = json.loads(side.read_text(encoding="utf-8"))
        return {int(r["turn"]): (float(r["start"]), float(r["end"])) for r in rows}
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("ignoring unreadable turn times %s", side.name)
        return {}
