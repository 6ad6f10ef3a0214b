"""Incremental drafting: kept text is drafted in a background thread while recording
goes on, so after Stop only the last part costs time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from summarize.draft import lines
from summarize.draft.drafter import NoteDrafter
from summarize.draft.extractive import empty_draft, extractive_draft
from summarize.draft.note_prompt import chunk_utterances
from summarize.errors import LlmError
from summarize.types import Flag, NoteDraft, Utterance


def _unit_key(unit: Any) -> tuple[Any, ...]:
    """What a unit's drafted lines depend on: the utterance (id, speaker, text) and its question."""
    u, q = unit.utterance, unit.question
    return u.id, u.speaker, u.text, q.text if q is not None else None


class IncrementalDrafter:
    """Drafts committed, kept text in the background while recording goes on.

    ``update(utterances)`` is called with the kept utterances so far (it may be called
    often; it never blocks). When the worker is idle and there is something new, a
    worker thread drafts it. ``finish(utterances)`` stops the worker after its current
    model call, drafts what is left and merges; only that last part costs time after Stop.

    * ``lines`` strategy: every utterance is drafted as soon as it is committed (also the
      last one: ``hold_back`` 0). Its lines are kept under what they were drafted from
      (the utterance's id, speaker and text, and its question); at ``finish`` only lines
      whose source is still in the transcript unchanged are used, and anything new or
      changed is drafted then. So an utterance the filter drops later, or the clinician
      edits or deletes (talk about another patient), never reaches the note, and a
      restored one costs one call. ``finish`` may be called again after such a change.
    * ``note`` strategy: chunks of ``chunk_tokens`` of stable text (all but the last
      ``hold_back`` utterances, default 1), drafted once each.
    """

    def __init__(self, drafter: NoteDrafter, *, chunk_tokens: int | None = None, hold_back: int | None = None) -> None:
        self.drafter = drafter
        self.lines = drafter.options.strategy == "lines"
        self.chunk_tokens = 1 if self.lines else (chunk_tokens or min(drafter.options.chunk_tokens, drafter.budget()))
        self.hold_back = hold_back if hold_back is not None else (0 if self.lines else 1)
        self._partials: list[tuple[int, dict[str, list[str]]]] = []  # note: (first utterance id, sections)
        self._done_ids: set[int] = set()  # note: utterance ids already drafted
        self._lines: dict[tuple[Any, ...], list[tuple[str, str]]] = {}  # lines: unit key → its lines
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: LlmError | None = None

    def _pending(self, utterances: Sequence[Utterance]) -> tuple[list[Utterance], Utterance | None]:
        """The first run of not yet drafted utterances, and the utterance before it."""
        start = next((i for i, u in enumerate(utterances) if u.id not in self._done_ids), len(utterances))
        run: list[Utterance] = []
        for u in utterances[start:]:
            if u.id in self._done_ids:
                break
            run.append(u)
        return run, utterances[start - 1] if start > 0 else None

    def _undrafted_units(self, utterances: Sequence[Utterance]) -> list[Any]:
        with self._lock:
            return [u for u in lines.units(utterances) if _unit_key(u) not in self._lines]

    def update(self, utterances: Sequence[Utterance]) -> None:
        if self.drafter.engine is None or self._failed or (self._thread and self._thread.is_alive()):
            return
        stable = list(utterances[: max(0, len(utterances) - self.hold_back)])
        if self.lines:
            todo = self._undrafted_units(stable)
            if todo:
                self._start(self._work_units, todo)
            return
        pending, before = self._pending(stable)
        if not pending or sum(self.drafter._count(u.text) + 8 for u in pending) < self.chunk_tokens:
            return
        self._start(self._work, chunk_utterances(pending, self.chunk_tokens, self.drafter._count)[0], before)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=target, args=args, name="incremental-draft", daemon=True)
        self._thread.start()

    def _work_units(self, todo: list[Any]) -> None:
        size = self.drafter.batch_size
        for start in range(0, len(todo), size):
            if self._stop.is_set():
                return
            batch = todo[start:start + size]
            try:
                parsed = self.drafter.draft_units(batch)
            except LlmError as exc:
                self._failed = exc
                return
            with self._lock:
                self._lines.update(zip(map(_unit_key, batch), parsed, strict=True))

    def _work(self, chunk: list[Utterance], before: Utterance | None) -> None:
        try:
            part = self.drafter.draft_partial(chunk, before)
        except LlmError as exc:
            self._failed = exc
            return
        with self._lock:
            self._partials.append((chunk[0].id, part))
            self._done_ids.update(u.id for u in chunk)

    @property
    def drafted_utterances(self) -> int:
        return len(self._lines) if self.lines else len(self._done_ids)

    def preview(self, utterances: Sequence[Utterance]) -> NoteDraft | None:
        """The note from the lines drafted so far (no model call; ``lines`` strategy
        only): what the window shows while recording continues."""
        if not self.lines or not utterances:
            return None
        with self._lock:
            parts = [self._lines[k] for k in map(_unit_key, lines.units(utterances)) if k in self._lines]
        if not parts:
            return None
        try:
            return self.drafter.merge([self.drafter.collect(parts)], list(utterances))
        except LlmError:  # only unusable answers so far
            return None

    def close(self) -> None:
        """The session ended: stop the worker after its current call, forget every line."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        with self._lock:
            self._lines.clear()
            self._partials.clear()
            self._done_ids.clear()

    def finish(self, utterances: Sequence[Utterance], dropped: int = 0) -> NoteDraft:
        """Stop the worker after its current call, draft the rest, merge (extractive on failure)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        utterances = list(utterances)
        if not utterances:
            return empty_draft(self.drafter.template, dropped)
        if self.drafter.engine is None or self._failed:
            return self.drafter.draft(utterances, dropped) if not self._failed else self._fallback(utterances)
        try:
            if self.lines:
                return self._finish_lines(utterances)
            order = {u.id: i for i, u in enumerate(utterances)}
            partials = [(order.get(first, -1), part) for first, part in self._partials]
            while True:  # every run of undrafted utterances (a restored one may sit between drafted ones)
                rest, before = self._pending(utterances)
                if not rest:
                    break
                for chunk in chunk_utterances(rest, self.drafter.budget(), self.drafter._count):
                    partials.append((order[chunk[0].id], self.drafter.draft_partial(chunk, before)))
                    before = chunk[-1]
                self._done_ids.update(u.id for u in rest)
            return self.drafter.merge([p for _, p in sorted(partials, key=lambda x: x[0])], utterances)
        except LlmError as exc:
            self._failed = exc
            return self._fallback(utterances)

    def _finish_lines(self, utterances: list[Utterance]) -> NoteDraft:
        todo = self._undrafted_units(utterances)
        self._lines.update(zip(map(_unit_key, todo), self.drafter.draft_units(todo), strict=True))
        units = lines.units(utterances)
        return self.drafter.merge([self.drafter.collect([self._lines[_unit_key(u)] for u in units])], utterances)

    def _fallback(self, utterances: list[Utterance]) -> NoteDraft:
        assert self._failed is not None
        draft = extractive_draft(self.drafter.template, utterances, str(self._failed))
        draft.flags.append(Flag("llm_error", str(self._failed)))
        return draft
