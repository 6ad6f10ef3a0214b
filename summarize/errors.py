"""User-facing errors of the note side (one line each, see :class:`asr.errors.ScribeError`)."""

from __future__ import annotations

from asr.errors import ScribeError


class TemplateError(ScribeError):
    """A note template is unknown, fails validation or cannot be rendered."""

    exit_code = 2


class TranscriptInputError(ScribeError):
    """A transcript file cannot be read or parsed."""

    exit_code = 2


class LlmError(ScribeError):
    """An LLM engine cannot be created or failed (model missing, server down, garbage)."""

    exit_code = 5
